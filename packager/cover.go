package packager

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
)

// ErrCoverTooLarge is returned by ExtractCover for a picture over its
// byte limit.
var ErrCoverTooLarge = errors.New("packager: embedded picture too large")

// ExtractCover returns the bytes of the picture embedded in the file at
// path (ID3 APIC, FLAC PICTURE, MP4 covr), which Probe described as
// pr.Cover, copied out unchanged (no decode: the caller checks and
// re-encodes it, see package cover). It returns nil and no error when pr
// has no cover, and ErrCoverTooLarge when the picture is over maxBytes.
// It runs ffmpeg under Config.ProbeTimeout, with the input confined to
// the demuxer Probe chose.
func (p *Packager) ExtractCover(ctx context.Context, path string, pr *Probe, maxBytes int64) ([]byte, error) {
	if pr == nil || pr.Cover == nil {
		return nil, nil
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("extract cover %s: %w", path, err)
	}
	args := []string{"-nostdin", "-hide_banner", "-v", "error",
		"-protocol_whitelist", "file,pipe", "-format_whitelist", demuxerWhitelist,
		"-f", pr.Demuxer, "-i", "file:" + abs,
		"-map", "0:" + strconv.Itoa(pr.Cover.StreamIndex), "-an", "-sn", "-dn",
		"-c", "copy", "-frames:v", "1", "-f", "image2pipe", "pipe:1"}
	var out bytes.Buffer
	err = p.exec(ctx, p.cfg.ProbeTimeout, p.cfg.FFmpeg, args, &limitedWriter{w: &out, n: maxBytes})
	switch {
	case errors.Is(err, errTooMuchOutput):
		return nil, fmt.Errorf("extract cover %s: %w (limit %d bytes)", path, ErrCoverTooLarge, maxBytes)
	case err != nil:
		return nil, fmt.Errorf("extract cover %s: %w", path, err)
	case out.Len() == 0:
		return nil, fmt.Errorf("extract cover %s: ffmpeg wrote no picture", path)
	}
	return out.Bytes(), nil
}
