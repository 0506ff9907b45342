package cover

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"image/jpeg"
	"testing"

	"riff/internal/blobkey"
	"riff/internal/cover/covertest"
)

// Quadrant colours of the stored picture: top left, top right, bottom
// left, bottom right.
var (
	red    = color.RGBA{255, 0, 0, 255}
	green  = color.RGBA{0, 255, 0, 255}
	blue   = color.RGBA{0, 0, 255, 255}
	yellow = color.RGBA{255, 255, 0, 255}
)

// order is binary.LittleEndian or binary.BigEndian.
type order interface {
	binary.ByteOrder
	binary.AppendByteOrder
}

// quadrants returns a w×h JPEG whose quarters are red, green (top), blue,
// yellow (bottom), with an EXIF orientation tag o in byte order bo (o 0:
// no EXIF).
func quadrants(t *testing.T, w, h, o int, bo order) []byte {
	t.Helper()
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := [2][2]color.RGBA{{red, green}, {blue, yellow}}[y*2/h][x*2/w]
			m.SetRGBA(x, y, c)
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, m, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	if o == 0 {
		return b.Bytes()
	}
	return withOrientation(b.Bytes(), o, bo)
}

// withOrientation inserts an APP1 Exif segment whose IFD0 holds one
// Orientation entry after the JPEG's SOI.
func withOrientation(jpg []byte, o int, bo order) []byte {
	tiff := []byte("II")
	if bo == order(binary.BigEndian) {
		tiff = []byte("MM")
	}
	tiff = bo.AppendUint16(tiff, 42)
	tiff = bo.AppendUint32(tiff, 8)
	tiff = bo.AppendUint16(tiff, 2)         // entries
	tiff = bo.AppendUint16(tiff, 0x010F)    // Make, ASCII, skipped
	tiff = bo.AppendUint16(tiff, 2)         //
	tiff = bo.AppendUint32(tiff, 4)         //
	tiff = append(tiff, 'R', 'i', 'f', 0)   //
	tiff = bo.AppendUint16(tiff, 0x0112)    // Orientation
	tiff = bo.AppendUint16(tiff, 3)         // SHORT
	tiff = bo.AppendUint32(tiff, 1)         // one value
	tiff = bo.AppendUint16(tiff, uint16(o)) // in the first two bytes
	tiff = append(tiff, 0, 0, 0, 0, 0, 0)   // padding, next IFD: none
	payload := append([]byte("Exif\x00\x00"), tiff...)
	seg := []byte{0xFF, 0xE1}
	seg = binary.BigEndian.AppendUint16(seg, uint16(len(payload)+2))
	seg = append(seg, payload...)
	out := append([]byte{}, jpg[:2]...)
	out = append(out, 0xFF, 0xE0, 0, 4, 'J', 'F') // an APP0 before it, as cameras write
	out = append(out, seg...)
	return append(out, jpg[2:]...)
}

// TestRenderAppliesOrientation: for each EXIF orientation, in both byte
// orders and on a picture wider than tall, the rendered cover shows the
// quadrants where the orientation says they are seen.
func TestRenderAppliesOrientation(t *testing.T) {
	want := map[int][4]color.RGBA{ // top left, top right, bottom left, bottom right
		1: {red, green, blue, yellow},
		2: {green, red, yellow, blue},
		3: {yellow, blue, green, red},
		4: {blue, yellow, red, green},
		5: {red, blue, green, yellow},
		6: {blue, red, yellow, green},
		7: {yellow, green, blue, red},
		8: {green, yellow, red, blue},
	}
	for _, bo := range []order{binary.LittleEndian, binary.BigEndian} {
		for o := 1; o <= 8; o++ {
			b := quadrants(t, 400, 240, o, bo) // the centred square is 240×240
			if got := jpegOrientation(b); got != o {
				t.Fatalf("%v orientation %d: read %d", bo, o, got)
			}
			img, err := Render(b, DefaultLimits)
			if err != nil {
				t.Fatal(err)
			}
			for i, n := range blobkey.CoverSizes {
				out, err := jpeg.Decode(bytes.NewReader(img.Sizes[i]))
				if err != nil {
					t.Fatal(err)
				}
				q := [4]image.Point{{n / 4, n / 4}, {3 * n / 4, n / 4}, {n / 4, 3 * n / 4}, {3 * n / 4, 3 * n / 4}}
				for k, p := range q {
					if !near(out.At(p.X, p.Y), want[o][k]) {
						t.Errorf("%v orientation %d, %d px: quadrant %d is %v, want %v", bo, o, n, k, out.At(p.X, p.Y), want[o][k])
					}
				}
			}
		}
	}
}

func near(c color.Color, w color.RGBA) bool {
	r, g, b, _ := c.RGBA()
	d := func(a uint32, b uint8) bool { x := int(a>>8) - int(b); return x > -48 && x < 48 }
	return d(r, w.R) && d(g, w.G) && d(b, w.B)
}

// TestJPEGOrientationIgnoresMalformed: a missing, truncated or lying EXIF
// segment reads as orientation 1; so do other formats' bytes.
func TestJPEGOrientationIgnoresMalformed(t *testing.T) {
	good := quadrants(t, 32, 32, 6, binary.BigEndian)
	exif := bytes.Index(good, []byte("Exif\x00\x00"))
	cases := map[string][]byte{
		"no EXIF":         quadrants(t, 32, 32, 0, nil),
		"EXIF without it": covertest.JPEG(t, 32, 32),
		"truncated":       good[:exif+12],
		"value 9":         withOrientation(quadrants(t, 32, 32, 0, nil), 9, binary.LittleEndian),
		"value 0":         withOrientation(quadrants(t, 32, 32, 0, nil), 0, binary.LittleEndian),
		"IFD offset past": func() []byte {
			b := bytes.Clone(good)
			binary.BigEndian.PutUint32(b[exif+6+4:], 1<<30)
			return b
		}(),
		"entry count past, no tag": func() []byte { // reads stop at the end of the segment
			b := bytes.Clone(good)
			binary.BigEndian.PutUint16(b[exif+6+8:], 0xFFFF)
			binary.BigEndian.PutUint16(b[exif+6+10+12:], 0x0110) // the Orientation entry is now Model
			return b
		}(),
		"segment length past": func() []byte {
			b := bytes.Clone(good)
			binary.BigEndian.PutUint16(b[exif-2:], 0xFFFF)
			return b
		}(),
		"png": covertest.PNG(t, 32, 32),
	}
	for name, b := range cases {
		if o := jpegOrientation(b); o != 1 {
			t.Errorf("%s: orientation %d, want 1", name, o)
		}
	}
}

// FuzzJPEGOrientation: any bytes give an orientation of 1 to 8, without a
// panic.
func FuzzJPEGOrientation(f *testing.F) {
	f.Add([]byte{0xFF, 0xD8, 0xFF, 0xE1, 0, 8, 'E', 'x', 'i', 'f', 0, 0})
	var b bytes.Buffer
	jpeg.Encode(&b, image.NewGray(image.Rect(0, 0, 8, 8)), nil)
	f.Add(withOrientation(b.Bytes(), 6, binary.LittleEndian))
	f.Add(withOrientation(b.Bytes(), 8, binary.BigEndian))
	f.Fuzz(func(t *testing.T, b []byte) {
		if o := jpegOrientation(b); o < 1 || o > 8 {
			t.Fatalf("orientation %d", o)
		}
	})
}
