package cover

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"testing"

	"riff/internal/blobkey"
	"riff/internal/cover/covertest"
)

func TestRenderSizes(t *testing.T) {
	webp, err := os.ReadFile("testdata/blue-purple-pink.lossy.webp") // from golang.org/x/image's testdata
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		in     []byte
		format Format
	}{
		{"jpeg landscape with EXIF", covertest.JPEG(t, 900, 500), JPEG},
		{"png portrait with text chunks", covertest.PNG(t, 120, 400), PNG},
		{"webp", webp, WebP},
	} {
		t.Run(tt.name, func(t *testing.T) {
			img, err := Render(tt.in, DefaultLimits)
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			if img.Info.Format != tt.format {
				t.Errorf("format %q, want %q", img.Info.Format, tt.format)
			}
			if !blobkey.ValidCoverHash(img.Hash) || img.Hash != Hash(tt.in) {
				t.Errorf("hash %q", img.Hash)
			}
			for i, n := range blobkey.CoverSizes {
				out := img.Sizes[i]
				cfg, format, err := image.DecodeConfig(bytes.NewReader(out))
				if err != nil || format != "jpeg" || cfg.Width != n || cfg.Height != n {
					t.Errorf("size %d: %s %d×%d, %v; want jpeg %d×%d", n, format, cfg.Width, cfg.Height, err, n, n)
				}
				if _, err := jpeg.Decode(bytes.NewReader(out)); err != nil {
					t.Errorf("size %d does not decode: %v", n, err)
				}
				if bytes.Contains(out, []byte(covertest.Secret)) || bytes.Contains(out, []byte("Exif")) || hasAPPn(out) {
					t.Errorf("size %d keeps metadata", n)
				}
			}
		})
	}
}

// hasAPPn reports whether a JPEG has an APP1..APP15 segment (EXIF, XMP,
// ICC); Go's encoder writes none, not even JFIF's APP0.
func hasAPPn(b []byte) bool {
	for i := 2; i+4 <= len(b); {
		if b[i] != 0xFF {
			return false
		}
		m := b[i+1]
		if m == 0xDA { // start of scan: headers are over
			return false
		}
		if m >= 0xE1 && m <= 0xEF {
			return true
		}
		i += 2 + int(binary.BigEndian.Uint16(b[i+2:]))
	}
	return false
}

func TestRenderCropsCentre(t *testing.T) {
	// A wide image: red left third, green middle, blue right third. The
	// square crop is the middle: green.
	img := image.NewRGBA(image.Rect(0, 0, 300, 100))
	for x := range 300 {
		c := color.RGBA{255, 0, 0, 255}
		if x >= 100 && x < 200 {
			c = color.RGBA{0, 255, 0, 255}
		} else if x >= 200 {
			c = color.RGBA{0, 0, 255, 255}
		}
		for y := range 100 {
			img.Set(x, y, c)
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	out, err := Render(b.Bytes(), DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := jpeg.Decode(bytes.NewReader(out.Sizes[1]))
	if err != nil {
		t.Fatal(err)
	}
	r, g, bl, _ := dec.At(150, 150).RGBA()
	if g>>8 < 200 || r>>8 > 60 || bl>>8 > 60 {
		t.Errorf("centre pixel = %d,%d,%d, want green", r>>8, g>>8, bl>>8)
	}
}

func TestCheckRefuses(t *testing.T) {
	small := DefaultLimits
	small.MaxBytes = 1000
	for _, tt := range []struct {
		name string
		in   []byte
		lim  Limits
		want error
	}{
		{"png bomb 100000×100000", covertest.PNGHeader(100000, 100000), DefaultLimits, ErrDimension},
		{"png 9000 wide", covertest.PNGHeader(9000, 100), DefaultLimits, ErrDimension},
		{"png over the pixel count", covertest.PNGHeader(7000, 7000), DefaultLimits, ErrDimension},
		{"jpeg bomb 65000×65000", jpegHeader(65000, 65000), DefaultLimits, ErrDimension},
		{"tiny", covertest.PNGHeader(8, 8), DefaultLimits, ErrDimension},
		{"text", []byte("hello, this is not an image at all"), DefaultLimits, ErrFormat},
		{"gif", []byte("GIF89a\x10\x00\x10\x00\x00\x00\x00"), DefaultLimits, ErrFormat},
		{"empty", nil, DefaultLimits, ErrFormat},
		{"png signature only", []byte("\x89PNG\r\n\x1a\n"), DefaultLimits, ErrCorrupt},
		{"too many bytes", covertest.JPEG(t, 200, 200), small, ErrTooLarge},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Check(tt.in, tt.lim); !errors.Is(err, tt.want) {
				t.Errorf("Check = %v, want %v", err, tt.want)
			}
			if _, err := Render(tt.in, tt.lim); !errors.Is(err, tt.want) {
				t.Errorf("Render = %v, want %v", err, tt.want)
			}
		})
	}
}

// A header that passes but pixels that do not decode are ErrCorrupt.
func TestRenderTruncated(t *testing.T) {
	b := covertest.PNG(t, 200, 200)
	if _, err := Render(b[:len(b)/2], DefaultLimits); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Render(truncated) = %v, want ErrCorrupt", err)
	}
}

// jpegHeader is a real JPEG whose SOF0 header claims w×h.
func jpegHeader(w, h int) []byte {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, image.NewGray(image.Rect(0, 0, 16, 16)), nil); err != nil {
		panic(err)
	}
	out := b.Bytes()
	i := bytes.Index(out, []byte{0xFF, 0xC0})
	binary.BigEndian.PutUint16(out[i+5:], uint16(h))
	binary.BigEndian.PutUint16(out[i+7:], uint16(w))
	return out
}

func FuzzCheck(f *testing.F) {
	f.Add(covertest.PNGHeader(100, 100))
	f.Add(jpegHeader(100, 100))
	f.Add([]byte("RIFF\x00\x00\x00\x00WEBPVP8 "))
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := Check(b, DefaultLimits)
		if err != nil {
			return
		}
		if info.Width > DefaultLimits.MaxSide || info.Height > DefaultLimits.MaxSide ||
			int64(info.Width)*int64(info.Height) > DefaultLimits.MaxPixels {
			t.Fatalf("Check accepted %d×%d", info.Width, info.Height)
		}
	})
}

// FuzzRender decodes whatever passes Check (with small limits, so each run
// is quick): it must never panic, and what it renders has every size.
func FuzzRender(f *testing.F) {
	webp, err := os.ReadFile("testdata/blue-purple-pink.lossy.webp")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(webp)
	f.Add(covertest.PNG(f, 20, 30))
	f.Add(covertest.JPEG(f, 40, 20))
	lim := Limits{MaxBytes: 64 << 10, MaxSide: 200, MaxPixels: 20_000, MinSide: 1}
	f.Fuzz(func(t *testing.T, b []byte) {
		img, err := Render(b, lim)
		if err != nil {
			return
		}
		for i, out := range img.Sizes {
			if len(out) == 0 {
				t.Fatalf("size %d is empty", blobkey.CoverSizes[i])
			}
		}
	})
}
