package packager

import (
	"fmt"
	"slices"
	"time"

	"riff/internal/blobkey"
)

// Output formats a Config may ask for (their file names are blobkey's).
const (
	FormatAAC = blobkey.FormatAAC // AAC-LC in single-file CMAF, with HLS and DASH manifests
	FormatOgg = blobkey.FormatOgg // Ogg Vorbis, for progressive byte-range play
)

// Defaults used when a Config field is zero.
const (
	DefaultSegmentDuration = 6 * time.Second
	DefaultMaxDuration     = 30 * time.Minute
	DefaultConcurrency     = 2
	DefaultTimeout         = 15 * time.Minute
	DefaultProbeTimeout    = 30 * time.Second
	DefaultCheckTimeout    = 2 * time.Minute
	DefaultEncodeBudget    = time.Second
	// encodeBase is the part of an encode's time limit that does not grow
	// with the audio (start-up, a loaded machine's first second).
	encodeBase = 30 * time.Second
)

// defaultLadder is the bitrate ladder in kbps (DESIGN.md: 64 mobile data
// saving, 128 standard, 320 premium).
func defaultLadder() []int { return []int{64, 128, 320} }

// Config configures a Packager. The zero value works when ffmpeg and
// ffprobe are on PATH.
type Config struct {
	FFmpeg  string // path or name of ffmpeg; default "ffmpeg"
	FFprobe string // path or name of ffprobe; default "ffprobe"

	// Ladder is the list of bitrates in kbps, one rendition per format
	// each; default 64, 128, 320. Renditions are named after it
	// (aac_128, ogg_128).
	Ladder []int
	// Formats is the subset of FormatAAC and FormatOgg to produce;
	// default both.
	Formats []string
	// SegmentDuration is the target fragment duration; default 6s.
	SegmentDuration time.Duration
	// MaxDuration refuses longer inputs (ErrDuration); default 30m.
	MaxDuration time.Duration
	// Concurrency is how many ffmpeg encodes run at once; default 2.
	Concurrency int
	// Timeout bounds each ffmpeg encode; the process is killed when it
	// expires. Default 15m. An encode's limit is the smaller of Timeout
	// and 30s + EncodeBudget per second of the input's duration.
	Timeout time.Duration
	// EncodeBudget is the wall time one encode may take per second of
	// audio (default 1s, real time: a 4-minute song may take 4m30s per
	// rendition; ffmpeg's encoders run far faster even on a loaded
	// machine, so only a file that makes them crawl hits it).
	// An encode over its limit is ErrTooSlow: the input's fault, not the
	// machine's, since the limit grows with what the file really holds.
	EncodeBudget time.Duration
	// CheckTimeout bounds DecodeCheck and RemuxADTS (default 2m); a
	// decode that runs out of it is ErrTooSlow.
	CheckTimeout time.Duration
	// ProbeTimeout bounds each ffprobe run; default 30s.
	ProbeTimeout time.Duration
	// TempDir holds intermediate files; default os.TempDir().
	TempDir string
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.FFmpeg == "" {
		c.FFmpeg = "ffmpeg"
	}
	if c.FFprobe == "" {
		c.FFprobe = "ffprobe"
	}
	if len(c.Ladder) == 0 {
		c.Ladder = defaultLadder()
	} else {
		c.Ladder = slices.Clone(c.Ladder)
		slices.Sort(c.Ladder) // variants and representations go low to high
	}
	if len(c.Formats) == 0 {
		c.Formats = []string{FormatAAC, FormatOgg}
	} else {
		c.Formats = slices.Clone(c.Formats)
	}
	if c.SegmentDuration <= 0 {
		c.SegmentDuration = DefaultSegmentDuration
	}
	if c.MaxDuration <= 0 {
		c.MaxDuration = DefaultMaxDuration
	}
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.ProbeTimeout <= 0 {
		c.ProbeTimeout = DefaultProbeTimeout
	}
	if c.CheckTimeout <= 0 {
		c.CheckTimeout = DefaultCheckTimeout
	}
	if c.EncodeBudget <= 0 {
		c.EncodeBudget = DefaultEncodeBudget
	}
	return c
}

// validate reports the first thing wrong with a defaulted Config.
func (c Config) validate() error {
	seen := map[int]bool{}
	for _, kbps := range c.Ladder {
		if kbps < 16 || kbps > 512 {
			return fmt.Errorf("ladder: %d kbps outside 16..512", kbps)
		}
		if seen[kbps] {
			return fmt.Errorf("ladder: %d kbps listed twice", kbps)
		}
		seen[kbps] = true
	}
	fs := map[string]bool{}
	for _, f := range c.Formats {
		if f != FormatAAC && f != FormatOgg {
			return fmt.Errorf("formats: unknown format %q (want %s or %s)", f, FormatAAC, FormatOgg)
		}
		if fs[f] {
			return fmt.Errorf("formats: %q listed twice", f)
		}
		fs[f] = true
	}
	if c.SegmentDuration < time.Second || c.SegmentDuration > time.Minute {
		return fmt.Errorf("segment duration %v outside 1s..1m", c.SegmentDuration)
	}
	return nil
}

// encodeLimit is the time limit of one encode of d of audio.
func (c Config) encodeLimit(d time.Duration) time.Duration {
	return min(c.Timeout, encodeBase+time.Duration(d.Seconds()*float64(c.EncodeBudget)))
}

func (c Config) hasFormat(f string) bool { return slices.Contains(c.Formats, f) }
