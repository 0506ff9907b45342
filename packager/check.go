package packager

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"
)

// RemuxADTS rewraps raw AAC (ADTS) at src into an MP4 at dst, copying the
// AAC frames unchanged (no re-encode): the packager reads AAC in MP4 only.
// A stream ffmpeg cannot read is a *ProbeError of Kind ErrUndecodable, one
// that takes longer than Config.CheckTimeout ErrTooSlow; dst is removed on
// any failure.
func (p *Packager) RemuxADTS(ctx context.Context, src, dst string) error {
	srcAbs, err := filepath.Abs(src)
	if err != nil {
		return fmt.Errorf("remux %s: %w", src, err)
	}
	dstAbs, err := filepath.Abs(dst)
	if err != nil {
		return fmt.Errorf("remux %s: %w", src, err)
	}
	args := []string{"-nostdin", "-hide_banner", "-v", "error", "-xerror",
		"-protocol_whitelist", "file", "-format_whitelist", "aac", "-f", "aac", "-i", "file:" + srcAbs,
		"-map", "0:a:0", "-c:a", "copy", "-f", "mp4", "-y", "file:" + dstAbs}
	err = p.exec(ctx, p.cfg.CheckTimeout, p.cfg.FFmpeg, args, nil)
	if err == nil {
		return nil
	}
	os.Remove(dstAbs)
	if ctx.Err() != nil {
		return fmt.Errorf("remux: %w", ctx.Err())
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &ProbeError{Kind: ErrTooSlow, Path: src, Reason: fmt.Sprintf("rewrapping the AAC stream took longer than %v", p.cfg.CheckTimeout), Err: err}
	}
	return &ProbeError{Kind: ErrUndecodable, Path: src, Reason: "the AAC stream cannot be read", Err: err}
}

// DecodeCheck decodes the audio stream of the file at path (as Probe
// described it) to the end and returns how long it really is, counted in
// decoded samples: a file's header may claim anything (a FLAC whose
// STREAMINFO says 60 s can hold an hour). It stops as soon as more than
// Config.MaxDuration has been decoded, so a long file costs no more CPU
// than a file of the limit.
//
// Refusals are *ProbeError: ErrUndecodable on the first decode error (a
// truncated file probes fine), ErrDuration past MaxDuration or with no
// audio at all, ErrTooSlow when the decode runs out of Config.CheckTimeout.
// A cancelled ctx is ctx's error.
func (p *Packager) DecodeCheck(ctx context.Context, path string, pr *Probe) (time.Duration, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return 0, fmt.Errorf("decode check %s: %w", path, err)
	}
	if pr == nil || pr.SampleRate <= 0 {
		return 0, fmt.Errorf("decode check %s: no probe", path)
	}
	// One byte per sample: mono, unsigned 8-bit, at the source rate.
	// Counting bytes counts samples exactly; downmixing and the 8-bit
	// conversion cost little next to the decode.
	args := []string{"-nostdin", "-hide_banner", "-v", "error", "-xerror",
		"-protocol_whitelist", "file,pipe", "-format_whitelist", demuxerWhitelist,
		"-f", pr.Demuxer, "-i", "file:" + abs, "-map", "0:a:0", "-vn", "-sn", "-dn",
		"-ac", "1", "-ar", strconv.Itoa(pr.SampleRate), "-c:a", "pcm_u8", "-f", "u8", "pipe:1"}
	limit := int64(p.cfg.MaxDuration.Seconds() * float64(pr.SampleRate))
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c := &sampleCounter{limit: limit, over: cancel}
	err = p.exec(dctx, p.cfg.CheckTimeout, p.cfg.FFmpeg, args, c)
	n := c.n.Load()
	held := time.Duration(float64(n) / float64(pr.SampleRate) * float64(time.Second))
	switch {
	case n > limit:
		return 0, &ProbeError{Kind: ErrDuration, Path: path, Reason: fmt.Sprintf("it holds more than the %v limit of audio (decoding stopped there; its header claims %v)",
			p.cfg.MaxDuration, pr.Duration.Round(time.Millisecond))}
	case ctx.Err() != nil:
		return 0, fmt.Errorf("decode check: %w", ctx.Err())
	case errors.Is(err, context.DeadlineExceeded):
		return 0, &ProbeError{Kind: ErrTooSlow, Path: path, Reason: fmt.Sprintf("decoding it took longer than %v (%v of audio decoded by then)",
			p.cfg.CheckTimeout, held.Round(time.Millisecond)), Err: err}
	case err != nil:
		return 0, &ProbeError{Kind: ErrUndecodable, Path: path, Reason: "it does not decode to the end", Err: err}
	case n == 0:
		return 0, &ProbeError{Kind: ErrDuration, Path: path, Reason: "no audio decoded"}
	}
	return held, nil
}

// sampleCounter counts the bytes ffmpeg writes and calls over once they
// pass limit (it goes on counting, and discards them).
type sampleCounter struct {
	n     atomic.Int64
	limit int64
	over  func()
}

func (c *sampleCounter) Write(b []byte) (int, error) {
	if c.n.Add(int64(len(b))) > c.limit {
		c.over()
	}
	return len(b), nil
}
