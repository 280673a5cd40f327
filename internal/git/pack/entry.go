// Package pack reads and writes the on-disk pack formats of
// gitformat-pack(5): pack files, their .idx (version 2) and .rev indexes,
// multi-pack-indexes, and the delta encoding used inside packs.
//
// Every length read from a pack is checked before it is used: entry
// sizes, delta sizes and offsets never drive an allocation or a copy
// without a bound supplied by the caller.
package pack

import (
	"errors"
	"fmt"
	"io"

	"gotd/internal/git/object"
)

// Signature is the 4-byte magic at the start of every pack file.
const Signature = "PACK"

// HeaderSize is the size of the pack header: signature, version, count.
const HeaderSize = 12

// MaxEntryHeaderSize is the longest entry header accepted: one byte of
// type and 4 size bits, then 9 bytes of 7 size bits each (a 64-bit size).
const MaxEntryHeaderSize = 10

// MaxOfsSize is the longest ofs-delta offset encoding accepted.
const MaxOfsSize = 10

// ErrCorrupt is wrapped by errors that report malformed pack data.
var ErrCorrupt = errors.New("pack: corrupt")

func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
}

// ParseHeader checks the 12-byte pack header (gitformat-pack(5), "pack-*.pack
// files have the following format") and returns the object count.
func ParseHeader(b []byte) (count uint32, err error) {
	if len(b) < HeaderSize {
		return 0, corruptf("short pack header")
	}
	if string(b[:4]) != Signature {
		return 0, corruptf("bad pack signature")
	}
	if v := be32(b[4:]); v != 2 && v != 3 {
		return 0, corruptf("unsupported pack version %d", v)
	}
	return be32(b[8:]), nil
}

// AppendHeader appends a version 2 pack header for count objects.
func AppendHeader(dst []byte, count uint32) []byte {
	dst = append(dst, Signature...)
	dst = appendBE32(dst, 2)
	return appendBE32(dst, count)
}

// ParseEntryHeader decodes the type-and-size header of a pack entry at the
// start of b and returns the header length.
func ParseEntryHeader(b []byte) (t object.Type, size uint64, n int, err error) {
	if len(b) == 0 {
		return 0, 0, 0, corruptf("truncated entry header")
	}
	c := b[0]
	t = object.Type((c >> 4) & 7)
	size = uint64(c & 15)
	shift := uint(4)
	n = 1
	for c&0x80 != 0 {
		if n >= len(b) {
			return 0, 0, 0, corruptf("truncated entry header")
		}
		if n >= MaxEntryHeaderSize {
			return 0, 0, 0, corruptf("entry header too long")
		}
		c = b[n]
		n++
		if shift > 57 && uint64(c&0x7f)>>(64-shift) != 0 {
			return 0, 0, 0, corruptf("entry size overflows")
		}
		size |= uint64(c&0x7f) << shift
		shift += 7
	}
	if !t.IsBase() && t != object.OfsDelta && t != object.RefDelta {
		return 0, 0, 0, corruptf("invalid entry type %d", t)
	}
	return t, size, n, nil
}

// ReadEntryHeader is ParseEntryHeader on a stream. It reads exactly the
// header bytes, appending them to raw (which may be nil) so callers can
// hash or copy them.
func ReadEntryHeader(r io.ByteReader, raw []byte) (t object.Type, size uint64, out []byte, err error) {
	start := len(raw)
	for {
		c, err := r.ReadByte()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, 0, raw, fmt.Errorf("read entry header: %w", err)
		}
		raw = append(raw, c)
		if c&0x80 == 0 {
			break
		}
		if len(raw)-start >= MaxEntryHeaderSize {
			return 0, 0, raw, corruptf("entry header too long")
		}
	}
	t, size, _, err = ParseEntryHeader(raw[start:])
	return t, size, raw, err
}

// AppendEntryHeader appends the header of an entry of type t whose
// inflated size (for deltas: the delta's size) is size.
func AppendEntryHeader(dst []byte, t object.Type, size uint64) []byte {
	c := byte(t)<<4 | byte(size&15)
	size >>= 4
	for size != 0 {
		dst = append(dst, c|0x80)
		c = byte(size & 0x7f)
		size >>= 7
	}
	return append(dst, c)
}

// ParseOfs decodes the negative offset that follows the header of an
// ofs-delta entry (gitformat-pack(5), "offset encoding") and returns it
// with the number of bytes it used.
func ParseOfs(b []byte) (ofs uint64, n int, err error) {
	if len(b) == 0 {
		return 0, 0, corruptf("truncated delta offset")
	}
	c := b[0]
	ofs = uint64(c & 0x7f)
	n = 1
	for c&0x80 != 0 {
		if n >= len(b) {
			return 0, 0, corruptf("truncated delta offset")
		}
		if n >= MaxOfsSize || ofs >= 1<<56 {
			return 0, 0, corruptf("delta offset overflows")
		}
		c = b[n]
		n++
		ofs = (ofs+1)<<7 | uint64(c&0x7f)
	}
	return ofs, n, nil
}

// ReadOfs is ParseOfs on a stream; the bytes read are appended to raw.
func ReadOfs(r io.ByteReader, raw []byte) (ofs uint64, out []byte, err error) {
	start := len(raw)
	for {
		c, err := r.ReadByte()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, raw, fmt.Errorf("read delta offset: %w", err)
		}
		raw = append(raw, c)
		if c&0x80 == 0 {
			break
		}
		if len(raw)-start >= MaxOfsSize {
			return 0, raw, corruptf("delta offset overflows")
		}
	}
	ofs, _, err = ParseOfs(raw[start:])
	return ofs, raw, err
}

// AppendOfs appends the encoding of an ofs-delta's negative offset.
func AppendOfs(dst []byte, ofs uint64) []byte {
	var buf [MaxOfsSize]byte
	i := len(buf) - 1
	buf[i] = byte(ofs & 0x7f)
	for ofs >>= 7; ofs != 0; ofs >>= 7 {
		ofs--
		i--
		buf[i] = 0x80 | byte(ofs&0x7f)
	}
	return append(dst, buf[i:]...)
}

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func be64(b []byte) uint64 { return uint64(be32(b))<<32 | uint64(be32(b[4:])) }

func appendBE32(dst []byte, v uint32) []byte {
	return append(dst, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

func appendBE64(dst []byte, v uint64) []byte {
	return appendBE32(appendBE32(dst, uint32(v>>32)), uint32(v))
}
