package catalogd

import (
	"bytes"
	"os"
	"testing"

	"riff/internal/testrun"
)

func TestSniffUploadRealFiles(t *testing.T) {
	testrun.RequireFFmpeg(t)
	dir := t.TempDir()
	cases := []struct {
		name string
		tags []string
		want audioFormat
	}{
		{"a.flac", nil, formatFLAC},
		{"a.wav", nil, formatWAV},
		{"a.aiff", nil, formatAIFF},
		{"a.mp3", []string{"title=With ID3 tags"}, formatMP3},
		{"a.m4a", nil, formatMP4},
		{"a.ogg", nil, formatOgg},
		{"a.aac", nil, formatADTS},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data, err := os.ReadFile(synth(t, dir, tc.name, 440, 1, tc.tags...))
			if err != nil {
				t.Fatal(err)
			}
			got, err := sniffUpload(bytes.NewReader(data), int64(len(data)))
			if err != nil || got != tc.want {
				t.Errorf("sniffUpload(%s) = %v, %v; want %v", tc.name, got, err, tc.want)
			}
		})
	}
}

func TestSniffUploadRefuses(t *testing.T) {
	id3 := func(size int, rest string) []byte {
		return append([]byte{'I', 'D', '3', 4, 0, 0, byte(size >> 21 & 0x7f), byte(size >> 14 & 0x7f), byte(size >> 7 & 0x7f), byte(size & 0x7f)},
			append(make([]byte, size), rest...)...)
	}
	cases := []struct {
		name string
		in   []byte
		want audioFormat
		ok   bool
	}{
		{"empty", nil, audioFormat{}, false},
		{"text", []byte("hello, these are lyrics\n"), audioFormat{}, false},
		{"png", []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), audioFormat{}, false},
		{"pdf", []byte("%PDF-1.7\n"), audioFormat{}, false},
		{"riff but avi", []byte("RIFF\x00\x00\x00\x00AVI LIST"), audioFormat{}, false},
		{"id3 then mp3 frame", id3(20, "\xff\xfb\x90\x64"), formatMP3, true},
		{"id3 then flac", id3(5, "fLaC\x00\x00\x00\x22"), formatFLAC, true},
		{"id3 then text", id3(5, "hello world"), audioFormat{}, false},
		{"id3 then wav (not seen in practice)", id3(5, "RIFF\x00\x00\x00\x00WAVEfmt "), audioFormat{}, false},
		{"id3 claiming more than the file", id3(5, "")[:10], audioFormat{}, false},
		{"mpeg frame with reserved version", []byte("\xff\xeb\x90\x64"), audioFormat{}, false},
		{"mpeg frame with bad bitrate", []byte("\xff\xfb\xf0\x64"), audioFormat{}, false},
		{"ogg", []byte("OggS\x00\x02\x00\x00"), formatOgg, true},
		{"mp4", []byte("\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00"), formatMP4, true},
	}
	for _, tc := range cases {
		got, err := sniffUpload(bytes.NewReader(tc.in), int64(len(tc.in)))
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("%s: sniffUpload = %v, %v; want %v (ok %v)", tc.name, got, err, tc.want, tc.ok)
		}
	}
}

// FuzzSniffUpload: any bytes are either refused or named as one known
// format, without panics, and the answer depends on the bytes only.
func FuzzSniffUpload(f *testing.F) {
	for _, seed := range []string{"fLaC\x00\x00\x00\x22", "RIFF\x24\x00\x00\x00WAVEfmt ", "FORM\x00\x00\x00\x00AIFFCOMM",
		"ID3\x04\x00\x00\x00\x00\x00\x05\x00\x00\x00\x00\x00\xff\xfb\x90\x64", "\x00\x00\x00\x20ftypM4A ", "OggS\x00\x02",
		"\xff\xf1\x50\x80", "\xff\xfb\x90\x64", "ID3\x04\x00\x10\x7f\x7f\x7f\x7f", "hello"} {
		f.Add([]byte(seed))
	}
	known := map[audioFormat]bool{formatFLAC: true, formatWAV: true, formatAIFF: true, formatMP3: true, formatADTS: true, formatMP4: true, formatOgg: true}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := sniffUpload(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			if got != (audioFormat{}) {
				t.Fatalf("refused with a format: %v", got)
			}
			return
		}
		if !known[got] {
			t.Fatalf("unknown format %v", got)
		}
		again, err2 := sniffUpload(bytes.NewReader(data), int64(len(data)))
		if again != got || err2 != nil {
			t.Fatalf("not deterministic: %v then %v, %v", got, again, err2)
		}
	})
}
