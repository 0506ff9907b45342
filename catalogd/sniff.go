package catalogd

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
)

// audioFormat is an upload's format as its bytes tell it.
type audioFormat struct {
	name string // flac, wav, aiff, mp3, adts, mp4, ogg
	ext  string // of the original's blob key
}

var (
	formatFLAC = audioFormat{"flac", "flac"}
	formatWAV  = audioFormat{"wav", "wav"}
	formatAIFF = audioFormat{"aiff", "aiff"}
	formatMP3  = audioFormat{"mp3", "mp3"}
	formatADTS = audioFormat{"adts", "aac"}
	formatMP4  = audioFormat{"mp4", "m4a"}
	formatOgg  = audioFormat{"ogg", "ogg"}
)

// errNotAudio: the bytes start like no audio format we know.
var errNotAudio = errors.New("not a known audio format")

// maxID3Skip bounds how far past ID3v2 tags (which may hold cover art)
// sniffUpload looks for the audio.
const maxID3Skip = 16 << 20

// sniffUpload tells the format of an upload of size bytes from its first
// bytes, never from its name or Content-Type. ID3v2 tags in front (MP3,
// also seen before FLAC and ADTS) are skipped. It reads at most a few
// dozen bytes at each of a few offsets.
func sniffUpload(r io.ReaderAt, size int64) (audioFormat, error) {
	var off int64
	for range 4 { // ID3 tags may be stacked; a few at most
		head := make([]byte, 16)
		n, err := r.ReadAt(head, off)
		if err != nil && !errors.Is(err, io.EOF) {
			return audioFormat{}, err
		}
		head = head[:n]
		if len(head) >= 10 && bytes.HasPrefix(head, []byte("ID3")) && head[3] < 5 && syncsafe(head[6:10]) {
			tag := int64(head[6])<<21 | int64(head[7])<<14 | int64(head[8])<<7 | int64(head[9])
			next := off + 10 + tag
			if head[5]&0x10 != 0 { // footer present
				next += 10
			}
			if next > maxID3Skip || next >= size {
				return audioFormat{}, errNotAudio
			}
			off = next
			continue
		}
		f, ok := sniffHead(head, off > 0)
		if !ok {
			return audioFormat{}, errNotAudio
		}
		return f, nil
	}
	return audioFormat{}, errNotAudio
}

// syncsafe reports whether b are ID3 synchsafe bytes (high bits clear).
func syncsafe(b []byte) bool {
	for _, c := range b {
		if c&0x80 != 0 {
			return false
		}
	}
	return true
}

// sniffHead recognises the start of an audio stream. afterID3 allows
// only what follows ID3 tags in practice (MP3, ADTS, FLAC).
func sniffHead(h []byte, afterID3 bool) (audioFormat, bool) {
	switch {
	case bytes.HasPrefix(h, []byte("fLaC")):
		return formatFLAC, true
	case afterID3:
	case len(h) >= 12 && (string(h[:4]) == "RIFF" || string(h[:4]) == "RF64") && string(h[8:12]) == "WAVE":
		return formatWAV, true
	case len(h) >= 12 && string(h[:4]) == "FORM" && (string(h[8:12]) == "AIFF" || string(h[8:12]) == "AIFC"):
		return formatAIFF, true
	case len(h) >= 12 && string(h[4:8]) == "ftyp" && binary.BigEndian.Uint32(h[:4]) >= 8:
		return formatMP4, true
	case len(h) >= 6 && string(h[:4]) == "OggS" && h[4] == 0:
		return formatOgg, true
	}
	if len(h) >= 4 && h[0] == 0xFF && h[1]&0xE0 == 0xE0 {
		layer := (h[1] >> 1) & 3
		if layer == 0 {
			// ADTS: 12-bit sync, layer 00; sampling index 0–12.
			if h[1]&0xF0 == 0xF0 && (h[2]>>2)&0x0F <= 12 {
				return formatADTS, true
			}
			return audioFormat{}, false
		}
		// MPEG audio frame: version not reserved (01), bitrate index not
		// 1111, sample-rate index not 11.
		if (h[1]>>3)&3 != 1 && h[2]>>4 != 0x0F && (h[2]>>2)&3 != 3 {
			return formatMP3, true
		}
	}
	return audioFormat{}, false
}
