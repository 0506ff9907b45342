package packager

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"riff/internal/blob"
)

const usageText = `usage: riff package [flags] INPUT OUTDIR

Probes INPUT, transcodes it to the AAC and Ogg Vorbis ladder, packages the
AAC renditions as single-file CMAF with HLS playlists and a DASH MPD, and
writes everything into the folder OUTDIR (used as a blob store) under
-prefix. OUTDIR/prefix must not already hold objects.
Use -- before an INPUT whose name starts with a dash.

Environment: RIFF_FFMPEG and RIFF_FFPROBE override the tool paths.

flags:
`

// Run is the `riff package` command. args are the arguments after
// "package"; flags may come before or after INPUT and OUTDIR. Progress goes
// to stderr, a summary table to stdout. It is parse → build → run:
// parseFlags checks everything and touches nothing, then Run opens OUTDIR
// and packages.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, getenv, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	p := New(cfg.packager)
	store, err := blob.NewFS(cfg.outDir)
	if err != nil {
		return fmt.Errorf("package: %w", err)
	}
	defer store.Close()

	disp := newProgressDisplay(stderr, time.Now)
	res, err := p.Package(ctx, cfg.input, store, cfg.prefix, disp.update)
	disp.finish()
	if err != nil {
		return fmt.Errorf("package %s: %w", cfg.input, err)
	}
	return writeSummary(stdout, res)
}

// runConfig is what Run's arguments say, checked.
type runConfig struct {
	packager      Config
	input, outDir string
	prefix        string
}

// parseFlags reads Run's flags and positional arguments and checks them
// (Config.validate, as New would) with no side effects. With -help it prints
// the usage to stdout and returns flag.ErrHelp; on a usage error it prints
// the short usage line to stderr.
func parseFlags(args []string, getenv func(string) string, stdout, stderr io.Writer) (runConfig, error) {
	fs := flag.NewFlagSet("package", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // we print usage ourselves
	var (
		ladder      = fs.String("ladder", "64,128,320", "bitrate ladder in kbps, comma-separated")
		formats     = fs.String("formats", "aac,ogg", "formats to produce: aac, ogg or both")
		segment     = fs.Duration("segment", DefaultSegmentDuration, "target fragment duration")
		maxDuration = fs.Duration("max-duration", DefaultMaxDuration, "refuse inputs longer than this")
		concurrency = fs.Int("concurrency", DefaultConcurrency, "ffmpeg encodes running at once")
		prefix      = fs.String("prefix", "", "key prefix inside OUTDIR, e.g. artists/1/albums/2/songs/3/v1/")
		timeout     = fs.Duration("timeout", DefaultTimeout, "kill an ffmpeg run after this long")
		tmpDir      = fs.String("tmp", "", "folder for intermediate files (default: system temp)")
	)
	usage := func(w io.Writer) {
		fmt.Fprint(w, usageText)
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	pos, err := parseInterleaved(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		usage(stdout)
		return runConfig{}, err
	}
	if err == nil && len(pos) != 2 {
		err = fmt.Errorf("want INPUT and OUTDIR, got %d arguments", len(pos))
	}
	if err != nil {
		fmt.Fprintln(stderr, "usage: riff package [flags] INPUT OUTDIR   (riff package --help lists the flags)")
		return runConfig{}, fmt.Errorf("package: %w", err)
	}
	lad, err := parseLadder(*ladder)
	if err != nil {
		return runConfig{}, fmt.Errorf("package: -ladder: %w", err)
	}
	cfg := Config{
		FFmpeg:          getenv("RIFF_FFMPEG"),
		FFprobe:         getenv("RIFF_FFPROBE"),
		Ladder:          lad,
		Formats:         splitList(*formats),
		SegmentDuration: *segment,
		MaxDuration:     *maxDuration,
		Concurrency:     *concurrency,
		Timeout:         *timeout,
		TempDir:         *tmpDir,
	}
	if err := cfg.withDefaults().validate(); err != nil {
		return runConfig{}, fmt.Errorf("package: %w", err)
	}
	return runConfig{packager: cfg, input: pos[0], outDir: pos[1], prefix: *prefix}, nil
}

// parseInterleaved parses flags that may appear before, between or after
// positional arguments. After "--" everything is positional.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func splitList(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, strings.ToLower(f))
		}
	}
	return out
}

func parseLadder(s string) ([]int, error) {
	var out []int
	for _, f := range splitList(s) {
		n, err := strconv.Atoi(strings.TrimSuffix(f, "k"))
		if err != nil {
			return nil, fmt.Errorf("%q is not a number of kbps", f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("empty")
	}
	slices.Sort(out)
	return out, nil
}

// progressDisplay renders Progress updates as one self-overwriting status
// line, at most every 200 ms.
type progressDisplay struct {
	w     io.Writer
	now   func() time.Time
	start time.Time
	last  time.Time
	order []string
	done  map[string]float64
	stage string
	drawn bool
}

func newProgressDisplay(w io.Writer, now func() time.Time) *progressDisplay {
	return &progressDisplay{w: w, now: now, start: now(), done: map[string]float64{}}
}

func (d *progressDisplay) update(pg Progress) {
	changed := pg.Stage != d.stage
	d.stage = pg.Stage
	if pg.Rendition != "" {
		if _, ok := d.done[pg.Rendition]; !ok {
			d.order = append(d.order, pg.Rendition)
		}
		if pg.Total > 0 {
			d.done[pg.Rendition] = min(1, float64(pg.Done)/float64(pg.Total))
		}
	}
	if !changed && d.now().Sub(d.last) < 200*time.Millisecond {
		return
	}
	d.last = d.now()
	var b strings.Builder
	fmt.Fprintf(&b, "\r%-9s %5.1fs", d.stage, d.now().Sub(d.start).Seconds())
	for _, r := range d.order {
		fmt.Fprintf(&b, "  %s %3.0f%%", r, 100*d.done[r])
	}
	fmt.Fprint(d.w, b.String())
	d.drawn = true
}

func (d *progressDisplay) finish() {
	if d.drawn {
		fmt.Fprintln(d.w)
	}
}

// writeSummary prints one row per rendition and the stage times.
func writeSummary(w io.Writer, res *Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "RENDITION\tSIZE\tDURATION\tAVG KBPS\tPEAK KBPS\tSEGMENTS\tENCODE\t")
	for _, r := range res.Renditions {
		peak, segs := "-", "-"
		if r.Format == FormatAAC {
			peak = fmt.Sprintf("%.1f", float64(r.PeakBitrate)/1000)
			segs = strconv.Itoa(r.Segments)
		}
		fmt.Fprintf(tw, "%s\t%s\t%.3fs\t%.1f\t%s\t%s\t%.2fs\t\n",
			r.Name, humanBytes(r.Size), r.Duration.Seconds(), float64(r.AvgBitrate)/1000, peak, segs, r.EncodeTime.Seconds())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	pct := 0.0
	if res.TranscodeTime > 0 {
		pct = 100 * res.PackageTime.Seconds() / res.TranscodeTime.Seconds()
	}
	_, err := fmt.Fprintf(w, "\n%d Hz, %d ch, %.3fs; transcode %.2fs, package %.3fs (%.1f%% of transcode), publish %.3fs; %d objects under %q\n",
		res.SampleRate, res.Channels, res.Duration.Seconds(), res.TranscodeTime.Seconds(), res.PackageTime.Seconds(), pct, res.PublishTime.Seconds(), len(res.Objects), res.Prefix)
	return err
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
