// Package cover turns an uploaded or embedded picture into album cover
// images: it sniffs the format from the bytes (JPEG, PNG, WebP; never the
// name or a declared type), checks the byte size and the pixel dimensions
// the header claims before anything is decoded, and re-encodes the image
// into square JPEGs of blobkey.CoverSizes.
//
// Decisions:
//
//   - Decompression bombs are refused from the header: image.DecodeConfig
//     reads only the header, and an image whose width, height or pixel count
//     is over the Limits is refused before a decoder allocates its pixels.
//     Go's decoders allocate by the header's dimensions, so what the header
//     passes bounds the memory a decode takes (about 4 bytes a pixel).
//   - The output is re-encoded from the decoded pixels: nothing of the
//     input file survives (EXIF, XMP, ICC profiles, PNG text chunks, WebP
//     chunks), so no location or camera data leaks. A JPEG's EXIF
//     orientation is applied to the pixels first (a phone photo of a
//     record sleeve is stored sideways with a tag saying so; browsers turn
//     it, and our re-encoded output drops the tag), read by a small parser
//     of the one tag (orient.go) rather than a general EXIF library.
//   - A non-square image is cropped to its centred square, then scaled
//     with Catmull-Rom (golang.org/x/image/draw) onto an opaque white
//     square (transparent parts become white, as JPEG has no alpha). The
//     largest size is scaled from the source, each smaller one from the
//     next larger, which costs far less and looks the same.
//   - The hash naming a cover is of the uploaded bytes, so the same file
//     sent twice names the same cover (no new keys, no purge).
//
// The functions are safe for concurrent use; each Render holds up to
// about 4 bytes per source pixel plus its outputs, so callers bound how
// many run at once.
package cover

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"

	"golang.org/x/image/draw"
	"golang.org/x/image/webp"

	"riff/internal/blobkey"
)

// Errors, wrapped by what Check and Render return.
var (
	ErrFormat    = errors.New("cover: not a JPEG, PNG or WebP image")
	ErrTooLarge  = errors.New("cover: file too large")
	ErrDimension = errors.New("cover: image dimensions out of bounds")
	ErrCorrupt   = errors.New("cover: image cannot be decoded")
)

// Format is an accepted input format.
type Format string

const (
	JPEG Format = "jpeg"
	PNG  Format = "png"
	WebP Format = "webp"
)

// codecs are the decoders of each Format: the header only, and whole. The
// format is decided by Sniff and its decoder called directly, never through
// image.Decode's registry (which any imported package may extend).
var codecs = map[Format]struct {
	config func(io.Reader) (image.Config, error)
	decode func(io.Reader) (image.Image, error)
}{
	JPEG: {jpeg.DecodeConfig, jpeg.Decode},
	PNG:  {png.DecodeConfig, png.Decode},
	WebP: {webp.DecodeConfig, webp.Decode},
}

// Limits bound what Check accepts.
type Limits struct {
	MaxBytes  int64 // file size
	MaxSide   int   // width and height each
	MaxPixels int64 // width × height
	MinSide   int   // width and height each
}

// DefaultLimits: 10 MiB, 8000 px a side, 25 megapixels (about 100 MB of
// pixels while decoding), at least 16 px a side.
var DefaultLimits = Limits{MaxBytes: 10 << 20, MaxSide: 8000, MaxPixels: 25_000_000, MinSide: 16}

// Quality is the JPEG quality of the outputs.
const Quality = 85

// Sniff returns the format the first bytes of b say, judged by magic
// numbers only.
func Sniff(b []byte) (Format, bool) {
	switch {
	case len(b) >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF:
		return JPEG, true
	case len(b) >= 8 && string(b[:8]) == "\x89PNG\r\n\x1a\n":
		return PNG, true
	case len(b) >= 16 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP" &&
		(string(b[12:16]) == "VP8 " || string(b[12:16]) == "VP8L" || string(b[12:16]) == "VP8X"):
		return WebP, true
	}
	return "", false
}

// Info is what the header of an accepted image says.
type Info struct {
	Format        Format
	Width, Height int
}

// Check sniffs b and reads its header's dimensions, and refuses (errors
// wrapping ErrTooLarge, ErrFormat, ErrCorrupt or ErrDimension) what breaks
// lim. It decodes no pixels.
func Check(b []byte, lim Limits) (Info, error) {
	if int64(len(b)) > lim.MaxBytes {
		return Info{}, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(b), lim.MaxBytes)
	}
	f, ok := Sniff(b)
	if !ok {
		return Info{}, ErrFormat
	}
	cfg, err := codecs[f].config(bytes.NewReader(b))
	if err != nil {
		return Info{}, fmt.Errorf("%w: %s header: %v", ErrCorrupt, f, err)
	}
	w, h := cfg.Width, cfg.Height
	if w < lim.MinSide || h < lim.MinSide || w > lim.MaxSide || h > lim.MaxSide || int64(w)*int64(h) > lim.MaxPixels {
		return Info{}, fmt.Errorf("%w: %d×%d (sides %d to %d px, at most %d pixels)", ErrDimension, w, h, lim.MinSide, lim.MaxSide, lim.MaxPixels)
	}
	return Info{Format: f, Width: w, Height: h}, nil
}

// Image is a rendered cover: its hash (blobkey.ValidCoverHash) and one
// JPEG per size of blobkey.CoverSizes, in that order.
type Image struct {
	Hash  string
	Info  Info
	Sizes [len(blobkey.CoverSizes)][]byte
}

// Hash returns the name of the cover made of the bytes b: the first
// blobkey.CoverHashLen hex digits of their SHA-256.
func Hash(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:blobkey.CoverHashLen]
}

// Render checks b against lim (Check), decodes it and re-encodes it into
// the square sizes of blobkey.CoverSizes.
func Render(b []byte, lim Limits) (*Image, error) {
	info, err := Check(b, lim)
	if err != nil {
		return nil, err
	}
	src, err := codecs[info.Format].decode(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, info.Format, err)
	}
	sb := src.Bounds()
	if sb.Dx() != info.Width || sb.Dy() != info.Height {
		return nil, fmt.Errorf("%w: decoded %v, header said %d×%d", ErrCorrupt, sb.Size(), info.Width, info.Height)
	}
	side := min(sb.Dx(), sb.Dy())
	x0 := sb.Min.X + (sb.Dx()-side)/2
	y0 := sb.Min.Y + (sb.Dy()-side)/2
	crop := image.Rect(x0, y0, x0+side, y0+side)

	o := 1
	if info.Format == JPEG {
		o = jpegOrientation(b)
	}
	img := &Image{Hash: Hash(b), Info: info}
	from, fromRect := src, crop
	for i := len(blobkey.CoverSizes) - 1; i >= 0; i-- {
		n := blobkey.CoverSizes[i]
		dst := image.NewRGBA(image.Rect(0, 0, n, n))
		draw.Draw(dst, dst.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
		draw.CatmullRom.Scale(dst, dst.Bounds(), from, fromRect, draw.Over, nil)
		if i == len(blobkey.CoverSizes)-1 {
			// The centred square of the turned picture is the turned centred
			// square, so the largest size is turned and the others scaled
			// from it.
			dst = orient(dst, o)
		}
		var out bytes.Buffer
		if err := jpeg.Encode(&out, dst, &jpeg.Options{Quality: Quality}); err != nil {
			return nil, fmt.Errorf("cover: encode %d px: %w", n, err)
		}
		img.Sizes[i] = out.Bytes()
		from, fromRect = dst, dst.Bounds()
	}
	return img, nil
}
