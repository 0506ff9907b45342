package packager

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// checkTimeout bounds RemuxADTS and DecodeCheck.
const checkTimeout = 2 * time.Minute

// RemuxADTS rewraps raw AAC (ADTS) at src into an MP4 at dst, copying the
// AAC frames unchanged (no re-encode): the packager reads AAC in MP4 only.
// A stream ffmpeg cannot read is a *ProbeError of Kind ErrUndecodable; dst
// is removed on any failure.
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
	err = p.exec(ctx, checkTimeout, p.cfg.FFmpeg, args, nil)
	if err == nil {
		return nil
	}
	os.Remove(dstAbs)
	if err := timedOut(ctx, err); err != nil {
		return fmt.Errorf("remux: %w", err)
	}
	return &ProbeError{Kind: ErrUndecodable, Path: src, Reason: "the AAC stream cannot be read", Err: err}
}

// DecodeCheck decodes the audio stream of the file at path (as Probe
// described it) to the end, failing on the first decode error: a truncated
// file probes fine but would fail its encodes later. A decode error is a
// *ProbeError of Kind ErrUndecodable; running out of time or a cancelled
// ctx is an error wrapping context.DeadlineExceeded or context.Canceled.
func (p *Packager) DecodeCheck(ctx context.Context, path string, pr *Probe) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("decode check %s: %w", path, err)
	}
	args := []string{"-nostdin", "-hide_banner", "-v", "error", "-xerror",
		"-protocol_whitelist", "file", "-format_whitelist", demuxerWhitelist}
	if pr != nil && pr.Demuxer != "" {
		args = append(args, "-f", pr.Demuxer)
	}
	args = append(args, "-i", "file:"+abs, "-map", "0:a:0", "-f", "null", "-")
	err = p.exec(ctx, checkTimeout, p.cfg.FFmpeg, args, nil)
	if err == nil {
		return nil
	}
	if err := timedOut(ctx, err); err != nil {
		return fmt.Errorf("decode check: %w", err)
	}
	return &ProbeError{Kind: ErrUndecodable, Path: path, Reason: "it does not decode to the end", Err: err}
}

// timedOut returns the context error when a run failed because ctx ended
// or its deadline passed (the tool was killed), and nil when the tool
// itself failed.
func timedOut(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return context.DeadlineExceeded
	}
	return nil
}
