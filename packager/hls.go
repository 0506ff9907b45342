package packager

import (
	"bytes"
	"fmt"
	"math"

	"github.com/grafov/m3u8"
)

// hlsVersion is the EXT-X-VERSION of every playlist we write. RFC 8216
// §4.3.2.5 requires 6 for EXT-X-MAP in a media playlist without
// EXT-X-I-FRAMES-ONLY; nothing we write needs 7 (it only adds SERVICE
// values for INSTREAM-ID). See doc.go.
const hlsVersion = 6

// aacCodecs is the RFC 6381 codecs string of AAC-LC.
const aacCodecs = "mp4a.40.2"

// segmentTiming is the presentation timing and measured bitrate of a
// rendition's fragments, shared by the HLS and DASH writers.
type segmentTiming struct {
	extinf      []float64 // seconds, rounded to ms without drift
	duration    float64   // presented seconds (sum of extinf)
	peakBitrate int       // bits/s: largest segment size / EXTINF
	avgBitrate  int       // bits/s: all segment bytes / duration
}

// timing computes EXTINF values from presentation spans. Each value is
// the difference of the rounded cumulative end times, so each is within
// 1 ms of the truth and the sum equals the rounded total exactly, however
// many segments there are (grafov/m3u8 prints three decimals).
func timing(lay *layout) segmentTiming {
	var st segmentTiming
	sr := float64(lay.SampleRate)
	var prevMS, bytesTotal int64
	var cum uint64
	for i, f := range lay.Fragments {
		_, dur := lay.presentationSpan(i)
		cum += dur
		endMS := int64(math.Round(float64(cum) * 1000 / sr))
		ext := float64(endMS-prevMS) / 1000
		prevMS = endMS
		st.extinf = append(st.extinf, ext)
		bytesTotal += f.Size
		if dur > 0 {
			br := int(math.Ceil(float64(f.Size*8) * sr / float64(dur)))
			st.peakBitrate = max(st.peakBitrate, br)
		}
	}
	st.duration = float64(prevMS) / 1000
	if cum > 0 {
		st.avgBitrate = int(math.Ceil(float64(bytesTotal*8) * sr / float64(cum)))
	}
	return st
}

// mediaPlaylist writes the VOD media playlist of one CMAF rendition whose
// file is mediaURI (relative, next to the playlist).
func mediaPlaylist(mediaURI string, lay *layout, st segmentTiming) ([]byte, error) {
	p, err := m3u8.NewMediaPlaylist(0, uint(len(lay.Fragments)))
	if err != nil {
		return nil, fmt.Errorf("media playlist: %w", err)
	}
	p.MediaType = m3u8.VOD
	p.SetDefaultMap(mediaURI, lay.InitSize, 0)
	var target float64
	for i, f := range lay.Fragments {
		if err := p.Append(mediaURI, st.extinf[i], ""); err != nil {
			return nil, fmt.Errorf("media playlist: %w", err)
		}
		if err := p.SetRange(f.Size, f.Offset); err != nil {
			return nil, fmt.Errorf("media playlist: %w", err)
		}
		target = max(target, st.extinf[i])
	}
	// grafov writes ceil(TargetDuration): every EXTINF rounded to the
	// nearest integer is then <= the target, as RFC 8216 §4.3.3.1 asks.
	p.TargetDuration = target
	p.SetVersion(hlsVersion)
	p.Close()
	// grafov/m3u8 v0.12.1 writes EXT-X-MAP's BYTERANGE unquoted, but RFC
	// 8216 §4.3.2.5 makes it a quoted-string (strict parsers, e.g. Apple's
	// validator, reject the bare form). Quote it; nothing else is touched.
	bad := fmt.Sprintf(`#EXT-X-MAP:URI=%q,BYTERANGE=%d@0`+"\n", mediaURI, lay.InitSize)
	good := fmt.Sprintf(`#EXT-X-MAP:URI=%q,BYTERANGE="%d@0"`+"\n", mediaURI, lay.InitSize)
	out := p.Encode().Bytes()
	if !bytes.Contains(out, []byte(bad)) {
		return nil, fmt.Errorf("media playlist: EXT-X-MAP not written as expected")
	}
	return bytes.Replace(out, []byte(bad), []byte(good), 1), nil
}

// variant is one line of the multivariant playlist.
type variant struct {
	uri       string
	peak, avg int
	codecs    string
}

// masterPlaylist writes the multivariant playlist.
func masterPlaylist(vs []variant) []byte {
	m := m3u8.NewMasterPlaylist()
	m.SetIndependentSegments(true)
	for _, v := range vs {
		m.Append(v.uri, nil, m3u8.VariantParams{
			Bandwidth:        uint32(v.peak),
			AverageBandwidth: uint32(v.avg),
			Codecs:           v.codecs,
		})
	}
	m.SetVersion(hlsVersion)
	// grafov/m3u8 always writes PROGRAM-ID, an attribute RFC 8216 §7
	// removed in protocol version 6. It cannot be switched off, so strip
	// it from the encoded text; nothing else is touched.
	return bytes.ReplaceAll(m.Encode().Bytes(), []byte("#EXT-X-STREAM-INF:PROGRAM-ID=0,"), []byte("#EXT-X-STREAM-INF:"))
}
