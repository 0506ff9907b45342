package packager

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Kinds of input the packager refuses. Every refusal is a *ProbeError
// whose Kind is one of these; match with errors.Is.
var (
	// ErrUnsupportedFormat: the container or codec is not one we accept
	// (MP3, FLAC, WAV, AIFF, Ogg Vorbis/Opus, M4A with AAC or ALAC), the
	// file has a real video track, or it is not a regular file.
	ErrUnsupportedFormat = errors.New("unsupported format")
	// ErrNoAudio: the file has no audio stream.
	ErrNoAudio = errors.New("no audio stream")
	// ErrDuration: the duration is zero, unknown, or longer than
	// Config.MaxDuration.
	ErrDuration = errors.New("bad duration")
	// ErrUndecodable: ffprobe or ffmpeg cannot read or decode the file
	// (empty, truncated, corrupt, not media at all).
	ErrUndecodable = errors.New("undecodable input")
	// ErrTooSlow: decoding or encoding the file did not finish within its
	// time limit (Config.CheckTimeout, or Config.EncodeBudget per second
	// of the audio it really holds).
	ErrTooSlow = errors.New("too slow to decode")
)

// ProbeError explains why an input was refused.
type ProbeError struct {
	Kind   error  // ErrUnsupportedFormat, ErrNoAudio, ErrDuration, ErrUndecodable or ErrTooSlow
	Path   string // the input
	Reason string // what was wrong, for people
	Err    error  // underlying cause, if any (e.g. an *ExecError)
}

func (e *ProbeError) Error() string {
	msg := fmt.Sprintf("%s: %v", e.Path, e.Kind)
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap lets errors.Is match both the Kind and the cause.
func (e *ProbeError) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// Probe is what ffprobe tells us about an input.
type Probe struct {
	Container   string        // our name: mp3, flac, wav, aiff, ogg or mp4
	Demuxer     string        // ffmpeg input format passed to -f (e.g. "mov")
	Codec       string        // audio codec, e.g. "flac", "aac", "pcm_s16le"
	Duration    time.Duration // of the file as its container says; DecodeCheck measures the real one
	SampleRate  int           // Hz
	Channels    int
	Bitrate     int // bits/s, 0 if ffprobe did not say
	Tags        Tags
	Cover       *Cover // embedded picture, nil when there is none
	StreamIndex int    // ffprobe index of the audio stream we use (the first)
}

// Tags is the descriptive metadata we keep. Values are trimmed, valid
// UTF-8 without control characters, and at most maxTagLen bytes.
type Tags struct {
	Title  string `json:"title,omitempty"`
	Artist string `json:"artist,omitempty"`
	Album  string `json:"album,omitempty"`
	Genre  string `json:"genre,omitempty"`
	Track  int    `json:"track,omitempty"`
	Year   int    `json:"year,omitempty"`
	ISRC   string `json:"isrc,omitempty"`
}

// Cover describes an embedded picture (ID3 APIC, FLAC PICTURE, MP4 covr).
type Cover struct {
	Codec       string // mjpeg or png, usually
	Width       int
	Height      int
	StreamIndex int
}

// container is one accepted input container: its ffmpeg demuxer and the
// audio codecs we accept inside it.
type container struct {
	name    string
	demuxer string
	codecOK func(string) bool
}

func codecIn(names ...string) func(string) bool {
	return func(c string) bool {
		for _, n := range names {
			if c == n {
				return true
			}
		}
		return false
	}
}

func isPCM(c string) bool { return strings.HasPrefix(c, "pcm_") }

// lookupContainer is the input allowlist, keyed by the first name of
// ffprobe's format_name.
func lookupContainer(formatName string) (container, bool) {
	switch formatName {
	case "mp3":
		return container{"mp3", "mp3", codecIn("mp3")}, true
	case "flac":
		return container{"flac", "flac", codecIn("flac")}, true
	case "wav":
		return container{"wav", "wav", isPCM}, true
	case "aiff":
		return container{"aiff", "aiff", isPCM}, true
	case "ogg":
		return container{"ogg", "ogg", codecIn("vorbis", "opus")}, true
	case "mov":
		return container{"mp4", "mov", codecIn("aac", "alac")}, true
	}
	return container{}, false
}

// demuxerWhitelist is passed to ffprobe and ffmpeg as -format_whitelist,
// so no other demuxer ever touches untrusted bytes.
const demuxerWhitelist = "mp3,flac,wav,aiff,ogg,mov"

const (
	maxTagLen       = 1024
	maxProbeJSON    = 8 << 20
	minSampleRate   = 8000
	maxSampleRate   = 192000
	maxInputChannel = 8
)

// ffprobeOutput is the subset of `ffprobe -print_format json
// -show_format -show_streams` we read.
type ffprobeOutput struct {
	Streams []struct {
		Index       int               `json:"index"`
		CodecName   string            `json:"codec_name"`
		CodecType   string            `json:"codec_type"`
		SampleRate  string            `json:"sample_rate"`
		Channels    int               `json:"channels"`
		Width       int               `json:"width"`
		Height      int               `json:"height"`
		Duration    string            `json:"duration"`
		BitRate     string            `json:"bit_rate"`
		Disposition map[string]int    `json:"disposition"`
		Tags        map[string]string `json:"tags"`
	} `json:"streams"`
	Format struct {
		FormatName string            `json:"format_name"`
		Duration   string            `json:"duration"`
		BitRate    string            `json:"bit_rate"`
		Tags       map[string]string `json:"tags"`
	} `json:"format"`
}

// parseProbe turns ffprobe JSON into a Probe, refusing inputs we do not
// accept. It never panics, whatever the bytes.
func parseProbe(path string, data []byte, maxDuration time.Duration) (*Probe, error) {
	perr := func(kind error, format string, args ...any) error {
		return &ProbeError{Kind: kind, Path: path, Reason: fmt.Sprintf(format, args...)}
	}
	var out ffprobeOutput
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, &ProbeError{Kind: ErrUndecodable, Path: path, Reason: "unreadable ffprobe output", Err: err}
	}
	fmtName, _, _ := strings.Cut(out.Format.FormatName, ",")
	c, ok := lookupContainer(fmtName)
	if !ok {
		if fmtName == "" {
			return nil, perr(ErrUndecodable, "ffprobe found no container")
		}
		return nil, perr(ErrUnsupportedFormat, "container %q is not accepted", cleanTag(out.Format.FormatName))
	}
	p := &Probe{Container: c.name, Demuxer: c.demuxer, StreamIndex: -1}
	var realVideo string
	for _, s := range out.Streams {
		switch s.CodecType {
		case "audio":
			if p.StreamIndex >= 0 {
				continue // we use the first audio stream, as ffmpeg -map 0:a:0 does
			}
			p.StreamIndex = s.Index
			p.Codec = s.CodecName
			p.SampleRate, _ = strconv.Atoi(s.SampleRate)
			p.Channels = s.Channels
			p.Bitrate = parseBitrate(s.BitRate)
			if p.Duration == 0 {
				p.Duration = parseSeconds(s.Duration)
			}
			mergeTags(&p.Tags, s.Tags)
		case "video":
			if s.Disposition["attached_pic"] == 1 {
				if p.Cover == nil {
					p.Cover = &Cover{Codec: cleanTag(s.CodecName), Width: s.Width, Height: s.Height, StreamIndex: s.Index}
				}
				continue
			}
			realVideo = s.CodecName
		}
	}
	if d := parseSeconds(out.Format.Duration); d > 0 {
		p.Duration = d
	}
	if br := parseBitrate(out.Format.BitRate); p.Bitrate == 0 {
		p.Bitrate = br
	}
	// Container tags first (ID3, FLAC/Vorbis comments, MP4 ilst), then
	// stream tags fill what is missing (Ogg keeps them on the stream).
	var tags Tags
	mergeTags(&tags, out.Format.Tags)
	fillTags(&tags, p.Tags)
	p.Tags = tags

	switch {
	case p.StreamIndex < 0:
		return nil, perr(ErrNoAudio, "%s file has no audio stream", c.name)
	case realVideo != "":
		return nil, perr(ErrUnsupportedFormat, "file has a video track (%s); upload audio only", cleanTag(realVideo))
	case !c.codecOK(p.Codec):
		return nil, perr(ErrUnsupportedFormat, "codec %q is not accepted in %s", cleanTag(p.Codec), c.name)
	case p.SampleRate < minSampleRate || p.SampleRate > maxSampleRate:
		return nil, perr(ErrUnsupportedFormat, "sample rate %d Hz outside %d..%d", p.SampleRate, minSampleRate, maxSampleRate)
	case p.Channels < 1 || p.Channels > maxInputChannel:
		return nil, perr(ErrUnsupportedFormat, "%d channels outside 1..%d", p.Channels, maxInputChannel)
	case p.Duration <= 0:
		return nil, perr(ErrDuration, "zero or unknown duration")
	case maxDuration > 0 && p.Duration > maxDuration:
		return nil, perr(ErrDuration, "%v is longer than the %v limit", p.Duration.Round(time.Millisecond), maxDuration)
	}
	return p, nil
}

// check refuses a Probe that Probe would not have returned: one handed in
// from outside (PackageProbed), whose demuxer ends up on ffmpeg's command
// line.
func (pr *Probe) check(path string, maxDuration time.Duration) error {
	c, ok := lookupContainer(pr.Demuxer)
	switch {
	case !ok || c.name != pr.Container || !c.codecOK(pr.Codec):
		return &ProbeError{Kind: ErrUnsupportedFormat, Path: path, Reason: fmt.Sprintf("probe of container %q, demuxer %q, codec %q is not one we accept", cleanTag(pr.Container), cleanTag(pr.Demuxer), cleanTag(pr.Codec))}
	case pr.SampleRate < minSampleRate || pr.SampleRate > maxSampleRate || pr.Channels < 1 || pr.Channels > maxInputChannel:
		return &ProbeError{Kind: ErrUnsupportedFormat, Path: path, Reason: fmt.Sprintf("probe of %d Hz, %d channels is out of range", pr.SampleRate, pr.Channels)}
	case pr.Duration <= 0:
		return &ProbeError{Kind: ErrDuration, Path: path, Reason: "zero or unknown duration"}
	case maxDuration > 0 && pr.Duration > maxDuration:
		return &ProbeError{Kind: ErrDuration, Path: path, Reason: fmt.Sprintf("%v is longer than the %v limit", pr.Duration.Round(time.Millisecond), maxDuration)}
	}
	return nil
}

// parseSeconds parses ffprobe's "123.456000"; junk, NaN, negative or
// absurd (over a day) values are 0.
func parseSeconds(s string) time.Duration {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || f <= 0 || f > 86400 {
		return 0
	}
	return time.Duration(f * float64(time.Second))
}

func parseBitrate(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 100_000_000 {
		return 0
	}
	return n
}

// mergeTags sets the fields of t that are still empty from raw ffprobe
// tags. Keys are matched case-insensitively across ID3, Vorbis comment
// and iTunes spellings.
func mergeTags(t *Tags, raw map[string]string) {
	if len(raw) == 0 {
		return
	}
	get := func(keys ...string) string {
		for _, k := range keys {
			for rk, v := range raw {
				if strings.EqualFold(rk, k) {
					if v = cleanTag(v); v != "" {
						return v
					}
				}
			}
		}
		return ""
	}
	setIf := func(dst *string, v string) {
		if *dst == "" {
			*dst = v
		}
	}
	setIf(&t.Title, get("title", "TIT2"))
	setIf(&t.Artist, get("artist", "TPE1", "album_artist"))
	setIf(&t.Album, get("album", "TALB"))
	setIf(&t.Genre, get("genre", "TCON"))
	setIf(&t.ISRC, strings.ToUpper(strings.ReplaceAll(get("isrc", "TSRC"), "-", "")))
	if t.Track == 0 {
		t.Track = leadingInt(get("track", "tracknumber", "TRCK"), 4)
	}
	if t.Year == 0 {
		if y := leadingInt(get("date", "year", "originaldate", "TDRC", "TYER"), 4); y >= 1000 && y <= 9999 {
			t.Year = y
		}
	}
}

// fillTags copies into t what t lacks and s has.
func fillTags(t *Tags, s Tags) {
	if t.Title == "" {
		t.Title = s.Title
	}
	if t.Artist == "" {
		t.Artist = s.Artist
	}
	if t.Album == "" {
		t.Album = s.Album
	}
	if t.Genre == "" {
		t.Genre = s.Genre
	}
	if t.ISRC == "" {
		t.ISRC = s.ISRC
	}
	if t.Track == 0 {
		t.Track = s.Track
	}
	if t.Year == 0 {
		t.Year = s.Year
	}
}

// leadingInt parses the decimal digits at the start of s ("3/12" → 3,
// "2021-05-01" → 2021), at most maxDigits of them; 0 if there are none.
func leadingInt(s string, maxDigits int) int {
	n, i := 0, 0
	for i < len(s) && i < maxDigits && s[i] >= '0' && s[i] <= '9' {
		n = n*10 + int(s[i]-'0')
		i++
	}
	return n
}

// cleanTag makes an untrusted metadata string safe to store and show:
// valid UTF-8, no control characters, trimmed, at most maxTagLen bytes.
func cleanTag(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) > maxTagLen {
		cut := maxTagLen
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}

// Probe runs ffprobe on the file at path and checks that we accept it.
// Refusals are *ProbeError; a missing file is an fs.ErrNotExist error.
func (p *Packager) Probe(ctx context.Context, path string) (*Probe, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("probe %s: %w", path, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("probe: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, &ProbeError{Kind: ErrUnsupportedFormat, Path: path, Reason: "not a regular file"}
	}
	if fi.Size() == 0 {
		return nil, &ProbeError{Kind: ErrUndecodable, Path: path, Reason: "empty file"}
	}
	args := []string{
		"-v", "error", "-hide_banner",
		"-protocol_whitelist", "file",
		"-format_whitelist", demuxerWhitelist,
		"-print_format", "json", "-show_format", "-show_streams",
		"-i", "file:" + abs,
	}
	var stdout bytes.Buffer
	err = p.exec(ctx, p.cfg.ProbeTimeout, p.cfg.FFprobe, args, &limitedWriter{w: &stdout, n: maxProbeJSON})
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("probe %s: %w", path, ctx.Err())
		}
		var ee *ExecError
		if errors.As(err, &ee) && strings.Contains(ee.Stderr, "not on whitelist") {
			return nil, &ProbeError{Kind: ErrUnsupportedFormat, Path: path, Reason: "not an accepted audio container", Err: err}
		}
		return nil, &ProbeError{Kind: ErrUndecodable, Path: path, Reason: "ffprobe cannot read it", Err: err}
	}
	return parseProbe(path, stdout.Bytes(), p.cfg.MaxDuration)
}
