package packager

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"riff/internal/blob"
	"riff/internal/blobkey"
)

// ErrPrefixInUse is returned by Package when the store already holds
// objects under the prefix. Published versions are immutable: pick a new
// v{N} instead of overwriting one that players may be reading.
var ErrPrefixInUse = errors.New("prefix already holds objects")

// Packager turns uploaded songs into the objects the edge serves. It holds
// only its configuration, so it is safe for concurrent use; New has no side
// effects.
type Packager struct {
	cfg Config
	err error // configuration error, reported by Probe and Package
}

// New returns a Packager for cfg, with defaults for zero fields. An
// invalid cfg is reported by the first Package call.
func New(cfg Config) *Packager {
	cfg = cfg.withDefaults()
	return &Packager{cfg: cfg, err: cfg.validate()}
}

// Config returns the effective configuration (defaults filled in).
func (p *Packager) Config() Config { return p.cfg }

// Stages reported through Progress, in order.
const (
	StageProbe     = "probe"
	StageTranscode = "transcode"
	StagePackage   = "package"
	StagePublish   = "publish"
	StageDone      = "done"
)

// Progress is a snapshot passed to the progress callback of Package.
type Progress struct {
	Stage     string        // one of the Stage constants
	Rendition string        // during transcode: which one, e.g. "aac_128"
	Done      time.Duration // media encoded so far for Rendition
	Total     time.Duration // the input duration
}

// Rendition describes one produced audio object.
type Rendition struct {
	Name        string        // e.g. "aac_128", "ogg_64"
	Format      string        // FormatAAC or FormatOgg
	Kbps        int           // nominal ladder bitrate
	Key         string        // the media object
	Playlist    string        // HLS media playlist key (AAC only)
	Size        int64         // bytes of the media object
	Duration    time.Duration // presented duration
	AvgBitrate  int           // measured, bits/s (HLS AVERAGE-BANDWIDTH for AAC)
	PeakBitrate int           // measured peak segment bitrate, bits/s (AAC only)
	Segments    int           // fragments (AAC only)
	EncodeTime  time.Duration // ffmpeg wall time
}

// Object is one object written to the store.
type Object struct {
	Key         string
	Size        int64
	ContentType string
}

// Result is what Package wrote, for catalogd to record.
type Result struct {
	Prefix     string
	Probe      *Probe
	SampleRate int           // of every rendition
	Channels   int           // of every rendition
	Duration   time.Duration // presented duration of the AAC ladder (else the probe's)
	Renditions []Rendition
	Objects    []Object // in write order; the last is master.m3u8 when AAC was produced
	// Wall times of the stages. PackageTime is mp4ff packaging plus the
	// playlists and MPD; it excludes ffmpeg and the store.
	TranscodeTime, PackageTime, PublishTime time.Duration
}

// Package probes inputPath, transcodes the ladder, packages it and writes
// every object under prefix in store ("" or a key prefix ending in "/",
// e.g. "artists/1/albums/2/songs/3/v1/"). Media objects are written first,
// then media playlists and the MPD, and master.m3u8 last, so a reader never
// finds a playlist naming a missing object. On any error everything this
// call wrote is deleted again.
//
// progress, if not nil, is called from one goroutine at a time.
func (p *Packager) Package(ctx context.Context, inputPath string, store blob.Store, prefix string, progress func(Progress)) (res *Result, err error) {
	return p.PackageProbed(ctx, inputPath, nil, store, prefix, progress)
}

// PackageProbed is Package for an input that was probed already (by Probe,
// on this file): pr is used instead of probing again, so a caller that
// checked an upload when it arrived does not pay for ffprobe twice. With pr
// nil it probes, as Package does. A pr whose container is not one Probe
// accepts is refused (ErrUnsupportedFormat).
func (p *Packager) PackageProbed(ctx context.Context, inputPath string, pr *Probe, store blob.Store, prefix string, progress func(Progress)) (res *Result, err error) {
	if p.err != nil {
		return nil, fmt.Errorf("packager config: %w", p.err)
	}
	if prefix != "" {
		if err := blob.ValidatePrefix(prefix); err != nil {
			return nil, fmt.Errorf("package: %w", err)
		}
		if prefix[len(prefix)-1] != '/' {
			prefix += "/"
		}
	}
	report := serialize(progress)
	report(Progress{Stage: StageProbe})
	if pr == nil {
		if pr, err = p.Probe(ctx, inputPath); err != nil {
			return nil, err
		}
	} else if err := pr.check(inputPath, p.cfg.MaxDuration); err != nil {
		return nil, err
	}
	if err := checkEmpty(ctx, store, prefix); err != nil {
		return nil, err
	}

	tmp, err := os.MkdirTemp(p.cfg.TempDir, "riff-package-")
	if err != nil {
		return nil, fmt.Errorf("package: %w", err)
	}
	defer os.RemoveAll(tmp)

	res = &Result{Prefix: prefix, Probe: pr}
	jobs := p.plan(pr, tmp)
	res.SampleRate, res.Channels = jobs[0].sampleRate, jobs[0].channels

	start := time.Now()
	if err := p.transcodeAll(ctx, inputPath, pr, jobs, report); err != nil {
		return nil, err
	}
	res.TranscodeTime = time.Since(start)

	report(Progress{Stage: StagePackage, Total: pr.Duration})
	start = time.Now()
	files, err := p.packageJobs(jobs, tmp, res)
	if err != nil {
		return nil, err
	}
	res.PackageTime = time.Since(start)

	report(Progress{Stage: StagePublish, Total: pr.Duration})
	start = time.Now()
	if err := publish(ctx, store, prefix, files, res); err != nil {
		return nil, err
	}
	res.PublishTime = time.Since(start)
	report(Progress{Stage: StageDone, Total: pr.Duration})
	return res, nil
}

// serialize wraps a progress callback so that it is never called
// concurrently (and is a no-op when nil).
func serialize(f func(Progress)) func(Progress) {
	if f == nil {
		return func(Progress) {}
	}
	var mu sync.Mutex
	return func(pg Progress) {
		mu.Lock()
		defer mu.Unlock()
		f(pg)
	}
}

// checkEmpty refuses a prefix that already holds objects.
func checkEmpty(ctx context.Context, store blob.Store, prefix string) error {
	for info, err := range store.List(ctx, prefix) {
		if err != nil {
			return fmt.Errorf("package: list %q: %w", prefix, err)
		}
		return fmt.Errorf("package: %w: %q has %s", ErrPrefixInUse, prefix, info.Key)
	}
	return nil
}

// job is one rendition to encode.
type job struct {
	name       string // aac_128
	format     string
	kbps       int // nominal
	bitrate    int // what we ask the encoder for, bits/s
	sampleRate int
	channels   int
	out        string // ffmpeg output in the temp dir
	encodeTime time.Duration
}

// rendition is what j makes; its file names are the object names under the
// prefix (blobkey, DESIGN.md "Blob keys").
func (j *job) rendition() blobkey.Rendition {
	return blobkey.Rendition{Format: j.format, Kbps: j.kbps}
}

// ladderRate picks the one sample rate of the whole ladder: 44.1 kHz for
// sources of the 44.1 kHz family (CD, most music), 48 kHz otherwise.
func ladderRate(src int) int {
	if src > 0 && (44100%src == 0 || src%44100 == 0) {
		return 44100
	}
	return 48000
}

// Encoder ceilings. AAC-LC carries at most 6144 bits per channel per
// 1024-sample frame; libvorbis refuses more than about 240 kbps mono.
func maxBitrate(format string, sampleRate, channels int) int {
	if format == FormatAAC {
		return 6144 * channels * sampleRate / aacFrameSamples * 98 / 100
	}
	if channels == 1 {
		return 240_000
	}
	return 500_000
}

func (p *Packager) plan(pr *Probe, tmp string) []*job {
	sr := ladderRate(pr.SampleRate)
	ch := 2
	if pr.Channels == 1 {
		ch = 1
	}
	var jobs []*job
	for _, f := range []string{FormatAAC, FormatOgg} {
		if !p.cfg.hasFormat(f) {
			continue
		}
		for _, kbps := range p.cfg.Ladder {
			r := blobkey.Rendition{Format: f, Kbps: kbps}
			jobs = append(jobs, &job{
				name:       r.Name(),
				format:     f,
				kbps:       kbps,
				bitrate:    min(kbps*1000, maxBitrate(f, sr, ch)),
				sampleRate: sr,
				channels:   ch,
				out:        filepath.Join(tmp, "enc-"+r.Media()),
			})
		}
	}
	return jobs
}

// ffmpegArgs builds the locked-down command line of one encode: no stdin,
// local files only, only our demuxer, the input named with file: so that
// no file name can be read as an option or a protocol.
func (p *Packager) ffmpegArgs(inputAbs string, pr *Probe, j *job) []string {
	args := []string{
		"-nostdin", "-hide_banner", "-v", "error", "-nostats",
		"-xerror", // a decode error fails the encode instead of leaving a gap
		"-progress", "pipe:1",
		"-protocol_whitelist", "file,pipe",
		"-format_whitelist", demuxerWhitelist,
		"-f", pr.Demuxer,
		"-i", "file:" + inputAbs,
		"-map", "0:a:0", "-vn", "-sn", "-dn",
		"-map_metadata", "-1", "-map_chapters", "-1",
		"-ac", strconv.Itoa(j.channels),
		"-ar", strconv.Itoa(j.sampleRate),
		"-b:a", strconv.Itoa(j.bitrate),
		"-fflags", "+bitexact", "-flags:a", "+bitexact",
	}
	switch j.format {
	case FormatAAC:
		// A progressive MP4 rather than ADTS: its edit list tells us the
		// encoder priming and its sample table the exact end.
		args = append(args, "-c:a", "aac", "-profile:a", "aac_low", "-f", "mp4")
	case FormatOgg:
		args = append(args, "-c:a", "libvorbis", "-f", "ogg")
	}
	return append(args, "-y", "file:"+j.out)
}

// transcodeAll runs the encodes, at most Concurrency at a time. The first
// failure cancels the others.
func (p *Packager) transcodeAll(ctx context.Context, input string, pr *Probe, jobs []*job, report func(Progress)) error {
	abs, err := filepath.Abs(input)
	if err != nil {
		return fmt.Errorf("transcode: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, j := range jobs { // announce the ladder in order
		report(Progress{Stage: StageTranscode, Rendition: j.name, Total: pr.Duration})
	}
	// Start the most expensive encodes first (AAC before Vorbis, high
	// bitrates before low): the slowest one then overlaps the others
	// instead of running alone at the end.
	order := make([]int, len(jobs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		ja, jb := jobs[a], jobs[b]
		if ja.format != jb.format {
			if ja.format == FormatAAC {
				return -1
			}
			return 1
		}
		return jb.kbps - ja.kbps
	})
	sem := make(chan struct{}, p.cfg.Concurrency)
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
dispatch:
	for _, i := range order {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			errs[i] = ctx.Err()
			break dispatch
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := p.transcode(ctx, input, abs, pr, jobs[i], report); err != nil {
				errs[i] = err
				cancel()
			}
		}()
	}
	wg.Wait()
	// Report the root cause, not the cancellations it caused.
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (p *Packager) transcode(ctx context.Context, input, inputAbs string, pr *Probe, j *job, report func(Progress)) error {
	pw := newProgressWriter(func(d time.Duration) {
		report(Progress{Stage: StageTranscode, Rendition: j.name, Done: min(d, pr.Duration), Total: pr.Duration})
	})
	start := time.Now()
	limit := p.cfg.encodeLimit(pr.Duration)
	err := p.exec(ctx, limit, p.cfg.FFmpeg, p.ffmpegArgs(inputAbs, pr, j), pw)
	_ = pw.Close()
	j.encodeTime = time.Since(start)
	if err != nil {
		var ee *ExecError
		if errors.Is(err, context.DeadlineExceeded) {
			// The limit grows with the audio the file holds (measured by
			// DecodeCheck when the caller did): running out of it is the
			// input's doing — also when a sibling encode that ran out of
			// its own limit first has cancelled ctx meanwhile (exec
			// reports the first cause, our deadline).
			return fmt.Errorf("transcode %s: %w", j.name, &ProbeError{Kind: ErrTooSlow, Path: input,
				Reason: fmt.Sprintf("encoding %v of audio took longer than %v", pr.Duration.Round(time.Millisecond), limit), Err: err})
		}
		if ctx.Err() == nil && errors.As(err, &ee) {
			// The probe accepted the file, so a failing encode means
			// ffmpeg could not decode it (truncated, corrupt).
			return fmt.Errorf("transcode %s: %w", j.name, &ProbeError{Kind: ErrUndecodable, Path: input, Reason: "ffmpeg failed to decode it", Err: err})
		}
		return fmt.Errorf("transcode %s: %w", j.name, err)
	}
	return nil
}

// outFile is one object to publish: its name under the prefix and where
// its bytes are (a temp file, or in memory for playlists).
type outFile struct {
	name string
	path string
	data []byte
}

// packageJobs turns the AAC encodes into CMAF files with one shared
// fragment plan, writes the playlists and MPD, and returns the objects to
// publish in write order.
func (p *Packager) packageJobs(jobs []*job, tmp string, res *Result) ([]outFile, error) {
	var media, lists []outFile
	var aacJobs []*job
	var tracks []*aacTrack
	for _, j := range jobs {
		if j.format != FormatAAC {
			continue
		}
		tr, err := readAACFile(j.out)
		if err != nil {
			return nil, fmt.Errorf("package %s: %w", j.name, err)
		}
		aacJobs = append(aacJobs, j)
		tracks = append(tracks, tr)
	}
	if len(tracks) > 0 {
		ref := tracks[0]
		for i, tr := range tracks[1:] {
			if len(tr.frames) != len(ref.frames) || tr.total != ref.total || tr.priming != ref.priming || tr.sampleRate != ref.sampleRate {
				return nil, fmt.Errorf("package: %s (%d frames, %d samples, priming %d) does not line up with %s (%d frames, %d samples, priming %d)",
					aacJobs[i+1].name, len(tr.frames), tr.total, tr.priming, aacJobs[0].name, len(ref.frames), ref.total, ref.priming)
			}
		}
		// One plan for every rendition: identical cuts, by construction.
		target := int(math.Round(p.cfg.SegmentDuration.Seconds() * float64(ref.sampleRate) / aacFrameSamples))
		starts := fragmentPlan(len(ref.frames), int(ref.priming/aacFrameSamples), target)

		var variants []variant
		var reps []dashRep
		var maxSeg float64
		var duration float64
		for i, j := range aacJobs {
			r := j.rendition()
			dst := filepath.Join(tmp, r.Media())
			lay, err := packageTrack(j.out, dst, tracks[i], starts)
			if err != nil {
				return nil, fmt.Errorf("package %s: %w", j.name, err)
			}
			st := timing(lay)
			pl, err := mediaPlaylist(r.Media(), lay, st)
			if err != nil {
				return nil, fmt.Errorf("package %s: %w", j.name, err)
			}
			media = append(media, outFile{name: r.Media(), path: dst})
			lists = append(lists, outFile{name: r.Playlist(), data: pl})
			variants = append(variants, variant{uri: r.Playlist(), peak: st.peakBitrate, avg: st.avgBitrate, codecs: aacCodecs})
			reps = append(reps, dashRep{id: j.name, uri: r.Media(), bandwidth: st.peakBitrate, lay: lay})
			for _, e := range st.extinf {
				maxSeg = max(maxSeg, e)
			}
			duration = float64(lay.Presented) / float64(lay.SampleRate)
			res.Renditions = append(res.Renditions, Rendition{
				Name: j.name, Format: j.format, Kbps: j.kbps,
				Key:         res.Prefix + r.Media(),
				Playlist:    res.Prefix + r.Playlist(),
				Size:        lay.FileSize,
				Duration:    samplesToDuration(lay.Presented, lay.SampleRate),
				AvgBitrate:  st.avgBitrate,
				PeakBitrate: st.peakBitrate,
				Segments:    len(lay.Fragments),
				EncodeTime:  j.encodeTime,
			})
		}
		mpdData, err := buildMPD(reps, duration, maxSeg)
		if err != nil {
			return nil, fmt.Errorf("package: %w", err)
		}
		lists = append(lists, outFile{name: blobkey.ManifestName, data: mpdData})
		lists = append(lists, outFile{name: blobkey.MasterName, data: masterPlaylist(variants)})
		res.Duration = samplesToDuration(ref.presented(), ref.sampleRate)
	} else {
		res.Duration = res.Probe.Duration
	}
	for _, j := range jobs {
		if j.format != FormatOgg {
			continue
		}
		fi, err := os.Stat(j.out)
		if err != nil {
			return nil, fmt.Errorf("package %s: %w", j.name, err)
		}
		media = append(media, outFile{name: j.rendition().Media(), path: j.out})
		d := res.Duration
		res.Renditions = append(res.Renditions, Rendition{
			Name: j.name, Format: j.format, Kbps: j.kbps,
			Key:        res.Prefix + j.rendition().Media(),
			Size:       fi.Size(),
			Duration:   d,
			AvgBitrate: int(math.Round(float64(fi.Size()*8) / d.Seconds())),
			EncodeTime: j.encodeTime,
		})
	}
	return append(media, lists...), nil
}

func samplesToDuration(samples uint64, rate uint32) time.Duration {
	return time.Duration(math.Round(float64(samples) * float64(time.Second) / float64(rate)))
}

func readAACFile(path string) (*aacTrack, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readAACTrack(f)
}

// packageTrack writes src (read from srcPath) as CMAF to dstPath.
func packageTrack(srcPath, dstPath string, src *aacTrack, starts []int) (*layout, error) {
	in, err := os.Open(srcPath)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	out, err := os.OpenFile(dstPath, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	lay, err := writeCMAF(out, in, src, starts)
	if cerr := out.Close(); err == nil && cerr != nil {
		err = cerr
	}
	return lay, err
}

// publish writes files under prefix in order. On error it deletes what it
// wrote, with a fresh deadline so that a cancelled ctx still cleans up.
func publish(ctx context.Context, store blob.Store, prefix string, files []outFile, res *Result) (err error) {
	defer func() {
		if err == nil {
			return
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		for i := len(res.Objects) - 1; i >= 0; i-- {
			if derr := store.Delete(cctx, res.Objects[i].Key); derr != nil {
				err = errors.Join(err, fmt.Errorf("clean up %s: %w", res.Objects[i].Key, derr))
			}
		}
		res.Objects = nil
	}()
	for _, f := range files {
		key := prefix + f.name
		ct := blob.ContentTypeFor(key)
		var r io.Reader
		if f.data != nil {
			r = bytes.NewReader(f.data)
		} else {
			fh, err := os.Open(f.path)
			if err != nil {
				return fmt.Errorf("publish %s: %w", key, err)
			}
			defer fh.Close()
			r = fh
		}
		info, err := store.Put(ctx, key, r, blob.PutOptions{ContentType: ct})
		if err != nil {
			return fmt.Errorf("publish %s: %w", key, err)
		}
		res.Objects = append(res.Objects, Object{Key: key, Size: info.Size, ContentType: ct})
	}
	return nil
}
