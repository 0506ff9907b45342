package packager

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/Eyevinn/mp4ff/aac"
	"github.com/Eyevinn/mp4ff/mp4"

	"riff/internal/blob"
)

// ffmpegRun runs ffmpeg with args (never via a shell) and fails the test
// on error.
func ffmpegRun(t testing.TB, args ...string) {
	t.Helper()
	cmd := exec.Command("ffmpeg", append([]string{"-nostdin", "-v", "error", "-y"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// chord returns a lavfi source: a chord (different on each channel) of
// the given length at rate Hz.
func chord(rate, channels int, seconds float64) string {
	left := "0.2*sin(2*PI*261.63*t)+0.15*sin(2*PI*329.63*t)+0.1*sin(2*PI*392*t)"
	right := "0.2*sin(2*PI*220*t)+0.15*sin(2*PI*277.18*t)+0.1*sin(2*PI*659.25*t)"
	expr := left
	if channels == 2 {
		expr = left + "|" + right
	}
	return fmt.Sprintf("aevalsrc='%s':s=%d:d=%g", expr, rate, seconds)
}

// genAudio writes a chord clip to dir/name, encoded with codecArgs.
func genAudio(t testing.TB, dir, name string, rate, channels int, seconds float64, codecArgs ...string) string {
	t.Helper()
	out := filepath.Join(dir, name)
	args := append([]string{"-f", "lavfi", "-i", chord(rate, channels, seconds)}, codecArgs...)
	ffmpegRun(t, append(args, "file:"+out)...)
	return out
}

// probeJSON runs ffprobe on target (a path or URL) and decodes its JSON.
func probeJSON(t testing.TB, target string) ffprobeOutput {
	t.Helper()
	cmd := exec.Command("ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", target)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", target, err, stderr.String())
	}
	if s := strings.TrimSpace(stderr.String()); s != "" {
		t.Errorf("ffprobe %s complained: %s", target, s)
	}
	var p ffprobeOutput
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("ffprobe %s: %v", target, err)
	}
	return p
}

// decodeSamples has ffmpeg, acting as a client, decode the first audio
// stream of target to PCM and returns the number of sample frames. Any
// message at level error fails the test.
func decodeSamples(t testing.TB, target string, channels int) int64 {
	t.Helper()
	cmd := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-xerror", "-i", target,
		"-map", "0:a:0", "-c:a", "pcm_s16le", "-f", "s16le", "pipe:1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cw := &countWriter{}
	cmd.Stdout = cw
	if err := cmd.Run(); err != nil {
		t.Fatalf("ffmpeg decode %s: %v\n%s", target, err, stderr.String())
	}
	if s := strings.TrimSpace(stderr.String()); s != "" {
		t.Errorf("ffmpeg decode %s reported errors: %s", target, s)
	}
	return cw.n / int64(2*channels)
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(b []byte) (int, error) { c.n += int64(len(b)); return len(b), nil }

// serveDir serves root over HTTP the way the edge does: under
// /t/{token}/, with Range support (http.FileServer honours Range).
func serveDir(t testing.TB, root string) (base string) {
	t.Helper()
	const token = "/t/eyJhbGciOiJFZERTQSJ9.test-token/"
	mux := http.NewServeMux()
	mux.Handle(token, http.StripPrefix(token, http.FileServer(http.Dir(root))))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL + token
}

func newFS(t testing.TB) (*blob.FS, string) {
	t.Helper()
	dir := t.TempDir()
	fs, err := blob.NewFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Close() })
	return fs, dir
}

// listKeys returns every key in the store.
func listKeys(t testing.TB, s blob.Store) []string {
	t.Helper()
	var keys []string
	for info, err := range s.List(context.Background(), "") {
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		keys = append(keys, info.Key)
	}
	return keys
}

// failingStore wraps a Store and fails the Put number failAt (1-based).
type failingStore struct {
	blob.Store
	mu     sync.Mutex
	puts   int
	failAt int
	keys   []string // keys Put successfully, in order
}

var errInjected = errors.New("injected failure")

func (f *failingStore) Put(ctx context.Context, key string, r io.Reader, opts blob.PutOptions) (blob.Info, error) {
	f.mu.Lock()
	f.puts++
	n := f.puts
	f.mu.Unlock()
	if n == f.failAt {
		return blob.Info{}, errInjected
	}
	info, err := f.Store.Put(ctx, key, r, opts)
	if err == nil {
		f.mu.Lock()
		f.keys = append(f.keys, key)
		f.mu.Unlock()
	}
	return info, err
}

func (f *failingStore) List(ctx context.Context, prefix string) iter.Seq2[blob.Info, error] {
	return f.Store.List(ctx, prefix)
}

// writeSyntheticAAC writes a progressive MP4 like the one ffmpeg produces
// for AAC-LC: presented samples after priming, frames of 1024 with a short
// last one, an edit list, and frame sizes from a deterministic generator
// averaging kbps. The payload is not real AAC; packaging never decodes it.
func writeSyntheticAAC(t testing.TB, path string, rate, channels int, presented, priming uint64, kbps int) {
	t.Helper()
	total := presented + priming
	n := int((total + aacFrameSamples - 1) / aacFrameSamples)
	avg := float64(kbps*1000) / 8 * aacFrameSamples / float64(rate)
	sizes := make([]uint32, n)
	seed := uint32(kbps)
	var payload []byte
	for i := range sizes {
		seed = seed*1664525 + 1013904223
		sizes[i] = uint32(avg*0.8) + seed>>16%uint32(avg*0.4+1)
		frame := make([]byte, sizes[i])
		binary.BigEndian.PutUint32(frame, uint32(i))
		payload = append(payload, frame...)
	}

	asc := &aac.AudioSpecificConfig{ObjectType: aac.AAClc, ChannelConfiguration: byte(channels), SamplingFrequency: rate}
	var ascBuf bytes.Buffer
	if err := asc.Encode(&ascBuf); err != nil {
		t.Fatal(err)
	}
	ftyp := mp4.NewFtyp("isom", 512, []string{"isom", "iso2", "mp41"})
	moov := mp4.NewMoovBox()
	mvhd := mp4.CreateMvhd()
	mvhd.Timescale = 1000
	moov.AddChild(mvhd)
	trak := mp4.CreateEmptyTrak(1, uint32(rate), "audio", "und")
	edts := &mp4.EdtsBox{}
	elst := &mp4.ElstBox{Entries: []mp4.ElstEntry{{SegmentDuration: presented * 1000 / uint64(rate), MediaTime: int64(priming), MediaRateInteger: 1}}}
	edts.AddChild(elst)
	edts.Elst = []*mp4.ElstBox{elst}
	trak.Children = append([]mp4.Box{trak.Children[0], edts}, trak.Children[1:]...)
	trak.Edts = edts
	moov.AddChild(trak)
	stbl := trak.Mdia.Minf.Stbl
	stbl.Stsd.AddChild(mp4.CreateAudioSampleEntryBox("mp4a", uint16(channels), 16, uint16(rate), mp4.CreateEsdsBox(ascBuf.Bytes())))
	last := uint32(total - uint64(n-1)*aacFrameSamples)
	if last == aacFrameSamples {
		stbl.Stts.SampleCount = []uint32{uint32(n)}
		stbl.Stts.SampleTimeDelta = []uint32{aacFrameSamples}
	} else {
		stbl.Stts.SampleCount = []uint32{uint32(n - 1), 1}
		stbl.Stts.SampleTimeDelta = []uint32{aacFrameSamples, last}
	}
	if err := stbl.Stsc.AddEntry(1, uint32(n), 1); err != nil {
		t.Fatal(err)
	}
	stbl.Stsz.SampleNumber = uint32(n)
	stbl.Stsz.SampleSize = sizes
	stbl.Stco.ChunkOffset = []uint32{0}
	trak.Mdia.Mdhd.Duration = total
	// The chunk offset is the mdat payload position, known once moov is sized.
	stbl.Stco.ChunkOffset[0] = uint32(ftyp.Size() + moov.Size() + 8)

	var buf bytes.Buffer
	for _, b := range []mp4.Box{ftyp, moov} {
		if err := b.Encode(&buf); err != nil {
			t.Fatal(err)
		}
	}
	mdat := &mp4.MdatBox{}
	mdat.SetData(payload)
	if err := mdat.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// fragInfo is one moof+mdat as found by decoding a packaged file.
type fragInfo struct {
	offset, size int64
	tfdt, dur    uint64
	samples      int
}

// inspectCMAF decodes a packaged rendition and checks its structure: one
// sidx right after the init, references that tile the rest of the file
// exactly and agree with the fragments, tfdt continuous from 0.
func inspectCMAF(t *testing.T, data []byte) (init *mp4.InitSegment, sidx *mp4.SidxBox, frags []fragInfo) {
	t.Helper()
	f, err := mp4.DecodeFile(bytes.NewReader(data), mp4.WithDecodeFlags(mp4.DecStartOnMoof))
	if err != nil {
		t.Fatalf("decode packaged file: %v", err)
	}
	if f.Init == nil || f.Sidx == nil || len(f.Sidxs) != 1 {
		t.Fatalf("want init and exactly one sidx, got init=%v sidxs=%d", f.Init != nil, len(f.Sidxs))
	}
	init, sidx = f.Init, f.Sidx
	if got, want := uint64(init.Size()), sidxStart(t, data); got != want {
		t.Errorf("sidx at %d, want right after the %d-byte init", want, got)
	}
	trex := init.Moov.Mvex.Trex
	for _, seg := range f.Segments {
		for _, fr := range seg.Fragments {
			fs, err := fr.GetFullSamples(trex)
			if err != nil {
				t.Fatal(err)
			}
			var dur uint64
			for _, s := range fs {
				dur += uint64(s.Dur)
			}
			frags = append(frags, fragInfo{
				offset: int64(fr.Moof.StartPos), size: int64(fr.Size()),
				tfdt: fr.Moof.Traf.Tfdt.BaseMediaDecodeTime(), dur: dur, samples: len(fs),
			})
		}
	}
	if len(frags) != len(sidx.SidxRefs) {
		t.Fatalf("%d fragments, %d sidx references", len(frags), len(sidx.SidxRefs))
	}
	if sidx.EarliestPresentationTime != 0 || sidx.FirstOffset != 0 {
		t.Errorf("sidx EPT=%d first_offset=%d, want 0 0", sidx.EarliestPresentationTime, sidx.FirstOffset)
	}
	pos := int64(sidx.AnchorPoint)
	var next uint64
	for i, r := range sidx.SidxRefs {
		fr := frags[i]
		if r.ReferenceType != 0 || r.StartsWithSAP != 1 || r.SAPType != 1 {
			t.Errorf("ref %d: type=%d sap=%d/%d, want media reference starting with SAP type 1", i, r.ReferenceType, r.StartsWithSAP, r.SAPType)
		}
		if fr.offset != pos || int64(r.ReferencedSize) != fr.size {
			t.Errorf("ref %d covers %d+%d, fragment is at %d+%d", i, pos, r.ReferencedSize, fr.offset, fr.size)
		}
		if uint64(r.SubSegmentDuration) != fr.dur {
			t.Errorf("ref %d duration %d, fragment lasts %d", i, r.SubSegmentDuration, fr.dur)
		}
		if fr.tfdt != next {
			t.Errorf("fragment %d tfdt=%d, want %d (continuous from 0)", i, fr.tfdt, next)
		}
		pos += int64(r.ReferencedSize)
		next += fr.dur
	}
	if pos != int64(len(data)) {
		t.Errorf("sidx references end at %d, file is %d bytes", pos, len(data))
	}
	return init, sidx, frags
}

// sidxStart finds the top-level sidx box by walking box headers.
func sidxStart(t *testing.T, data []byte) uint64 {
	t.Helper()
	var pos uint64
	for pos+8 <= uint64(len(data)) {
		size := uint64(binary.BigEndian.Uint32(data[pos:]))
		if string(data[pos+4:pos+8]) == "sidx" {
			return pos
		}
		if size < 8 {
			break
		}
		pos += size
	}
	t.Fatal("no top-level sidx")
	return 0
}

func atoi(t testing.TB, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("atoi %q: %v", s, err)
	}
	return n
}
