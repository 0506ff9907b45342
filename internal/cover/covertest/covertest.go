// Package covertest makes test images for the tests of package cover and its
// users: they carry metadata that must not survive cover.Render.
package covertest

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"testing"
)

// Secret is in the metadata of JPEG's and PNG's images.
const Secret = "GPS-52.3676N-4.9041E-SECRET"

// testPattern is a w×h gradient, so scaled outputs are not flat.
func testPattern(w, h int) image.Image {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.NRGBA{uint8(x * 255 / w), uint8(y * 255 / h), 128, 255})
		}
	}
	return img
}

// JPEG returns a w×h JPEG with an EXIF (APP1) segment holding
// Secret.
func JPEG(t testing.TB, w, h int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, testPattern(w, h), &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	payload := append([]byte("Exif\x00\x00"), Secret...)
	app1 := []byte{0xFF, 0xE1}
	app1 = binary.BigEndian.AppendUint16(app1, uint16(len(payload)+2))
	app1 = append(app1, payload...)
	out := append([]byte{}, b.Bytes()[:2]...) // SOI
	out = append(out, app1...)
	return append(out, b.Bytes()[2:]...)
}

// PNG returns a w×h PNG with tEXt and iTXt chunks holding Secret.
func PNG(t testing.TB, w, h int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, testPattern(w, h)); err != nil {
		t.Fatal(err)
	}
	raw := b.Bytes()
	// After the signature (8) and IHDR (8 + 13 + 4).
	cut := 8 + 25
	out := append([]byte{}, raw[:cut]...)
	out = appendChunk(out, "tEXt", []byte("Comment\x00"+Secret))
	out = appendChunk(out, "iTXt", []byte("XML:com.adobe.xmp\x00\x00\x00\x00\x00"+Secret))
	return append(out, raw[cut:]...)
}

// PNGHeader returns a PNG signature and an IHDR chunk claiming w×h (8-bit
// RGBA), and nothing else: a decompression bomb's header.
func PNGHeader(w, h int) []byte {
	ihdr := binary.BigEndian.AppendUint32(nil, uint32(w))
	ihdr = binary.BigEndian.AppendUint32(ihdr, uint32(h))
	ihdr = append(ihdr, 8, 6, 0, 0, 0)
	return appendChunk([]byte("\x89PNG\r\n\x1a\n"), "IHDR", ihdr)
}

func appendChunk(b []byte, typ string, data []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	start := len(b)
	b = append(b, typ...)
	b = append(b, data...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b[start:]))
}
