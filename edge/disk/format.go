package disk

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash/crc32"
)

// HeaderBytes is the size of a slice file's header: the data starts there,
// page aligned.
const HeaderBytes = 4096

// magic starts every slice file (format version 1).
const magic = "RIFFSLC1"

// fixedBytes is the header's fixed part: magic, header CRC, generation,
// index, object size, data length, data CRC, slice size and four string
// lengths.
const fixedBytes = 8 + 4 + 8 + 8 + 8 + 4 + 4 + 4 + 4*2

// maxStrings bounds the header's strings together.
const maxStrings = HeaderBytes - fixedBytes

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Meta describes the object a slice belongs to, as its origin did.
type Meta struct {
	Size         int64
	ETag         string
	ContentType  string
	LastModified string
}

// header is a slice file's header.
type header struct {
	key        string
	gen        uint64
	idx        int64
	meta       Meta
	dataLen    uint32
	dataCRC    uint32
	sliceBytes uint32 // the slice size the index counts in
}

var (
	errShort   = errors.New("disk: header too short")
	errMagic   = errors.New("disk: not a slice file")
	errHdrCRC  = errors.New("disk: header checksum mismatch")
	errHdrBad  = errors.New("disk: header fields out of range")
	errTooLong = errors.New("disk: key and validators do not fit in a header")
)

// encodeHeader writes h into b, which must be HeaderBytes long.
func encodeHeader(b []byte, h *header) error {
	strs := [4]string{h.key, h.meta.ETag, h.meta.ContentType, h.meta.LastModified}
	n := 0
	for _, s := range strs {
		if len(s) > 0xffff {
			return errTooLong
		}
		n += len(s)
	}
	if n > maxStrings {
		return errTooLong
	}
	clear(b[:HeaderBytes])
	copy(b, magic)
	le := binary.LittleEndian
	le.PutUint64(b[12:], h.gen)
	le.PutUint64(b[20:], uint64(h.idx))
	le.PutUint64(b[28:], uint64(h.meta.Size))
	le.PutUint32(b[36:], h.dataLen)
	le.PutUint32(b[40:], h.dataCRC)
	le.PutUint32(b[44:], h.sliceBytes)
	off := fixedBytes
	for i, s := range strs {
		le.PutUint16(b[48+2*i:], uint16(len(s)))
		off += copy(b[off:], s)
	}
	le.PutUint32(b[8:], crc32.Checksum(b[12:HeaderBytes], castagnoli))
	return nil
}

// decodeHeader parses a header from b (at least HeaderBytes long). It
// checks the magic, the header's checksum and that the fields are in
// range; it does not check the data.
func decodeHeader(b []byte) (header, error) {
	if len(b) < HeaderBytes {
		return header{}, errShort
	}
	if string(b[:8]) != magic {
		return header{}, errMagic
	}
	le := binary.LittleEndian
	if le.Uint32(b[8:]) != crc32.Checksum(b[12:HeaderBytes], castagnoli) {
		return header{}, errHdrCRC
	}
	h := header{
		gen:        le.Uint64(b[12:]),
		idx:        int64(le.Uint64(b[20:])),
		dataLen:    le.Uint32(b[36:]),
		dataCRC:    le.Uint32(b[40:]),
		sliceBytes: le.Uint32(b[44:]),
	}
	h.meta.Size = int64(le.Uint64(b[28:]))
	var strs [4]string
	off := fixedBytes
	for i := range strs {
		n := int(le.Uint16(b[48+2*i:]))
		if n > HeaderBytes-off {
			return header{}, errHdrBad
		}
		strs[i] = string(b[off : off+n])
		off += n
	}
	h.key, h.meta.ETag, h.meta.ContentType, h.meta.LastModified = strs[0], strs[1], strs[2], strs[3]
	if h.key == "" || h.dataLen == 0 || h.dataLen > h.sliceBytes || h.idx < 0 || h.meta.Size <= 0 || int64(h.dataLen) > h.meta.Size || h.idx > h.meta.Size/max(int64(h.dataLen), 1) {
		return header{}, errHdrBad
	}
	return h, nil
}

// ID names a slice: a hash of its object key, generation and index, also
// its file name. IDs are stable across restarts.
type ID [16]byte

// SliceID returns the ID of slice idx of key at generation gen.
func SliceID(key string, gen uint64, idx int64) ID {
	var buf [512]byte
	b := binary.LittleEndian.AppendUint64(buf[:0], gen)
	b = binary.LittleEndian.AppendUint64(b, uint64(idx))
	b = append(b, key...)
	sum := sha256.Sum256(b)
	return ID(sum[:16])
}

func (id ID) String() string { return hex.EncodeToString(id[:]) }

// parseID reads a file name written by fileName (without its folder).
func parseID(name string) (ID, bool) {
	const ext = ".slice"
	var id ID
	if len(name) != 32+len(ext) || name[32:] != ext {
		return id, false
	}
	if _, err := hex.Decode(id[:], []byte(name[:32])); err != nil {
		return id, false
	}
	return id, true
}
