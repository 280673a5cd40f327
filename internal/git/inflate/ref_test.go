package inflate

import (
	"bytes"
	"compress/flate"
	"compress/zlib"
	"errors"
	"hash/adler32"
	"io"
	"testing"
)

// This file holds what the tests compare Inflate with: compress/zlib,
// turned into the result Inflate must give, and a writer for crafting
// DEFLATE streams bit by bit.

// zlibResult is what Inflate must return for src and size, worked out
// from what compress/zlib makes of src: the same content and length when
// compress/zlib inflates the first stream of src to exactly size bytes
// with a good checksum, else the error class.
func zlibResult(src []byte, size int) (out []byte, n int, err error) {
	return zlibDecode(src, size+1).expect(size)
}

// zlibDecoded is what compress/zlib made of a stream, reading at most
// limit bytes of output.
type zlibDecoded struct {
	out   []byte
	n     int   // bytes of src read
	err   error // nil, or the error that stopped it, as a class
	limit int
}

// zlibDecode inflates src with compress/zlib.
//
// The one deliberate difference is made here: a valid header with FDICT
// is corrupt for Inflate, while compress/zlib, given no dictionary,
// accepts a dictionary id of 1 (the Adler-32 of no bytes).
func zlibDecode(src []byte, limit int) zlibDecoded {
	if len(src) >= 2 && src[0]&0x0f == 8 && src[0]>>4 <= 7 && (uint(src[0])<<8|uint(src[1]))%31 == 0 && src[1]&0x20 != 0 {
		return zlibDecoded{err: ErrCorrupt, limit: limit}
	}
	// A bytes.Reader is an io.ByteReader, so compress/flate reads from
	// it directly, without a bufio.Reader reading ahead, and what it
	// left unread tells how much the stream took.
	br := bytes.NewReader(src)
	zr, err := zlib.NewReader(br)
	if err != nil {
		return zlibDecoded{err: zlibClass(err), limit: limit}
	}
	out, err := io.ReadAll(io.LimitReader(zr, int64(limit)))
	if err != nil {
		err = zlibClass(err)
	}
	return zlibDecoded{out, len(src) - br.Len(), err, limit}
}

// expect turns what compress/zlib made of a stream into what Inflate
// must return for size, which must be below the limit. compress/zlib
// returns what it inflated before failing, so output past size is ErrSize
// whatever comes after; a stream that ends short of size is ErrSize, and
// only one of exactly size bytes can be ErrChecksum.
func (z zlibDecoded) expect(size int) (out []byte, n int, err error) {
	switch {
	case size >= z.limit:
		panic("size beyond the limit")
	case len(z.out) > size:
		return nil, 0, ErrSize
	case z.err == nil && len(z.out) == size:
		// The limit hides EOF only once it has given limit bytes.
		return z.out, z.n, nil
	case z.err == nil, z.err == ErrChecksum && len(z.out) != size:
		return nil, 0, ErrSize
	}
	return nil, 0, z.err
}

func zlibClass(err error) error {
	var corrupt flate.CorruptInputError
	switch {
	case err == io.ErrUnexpectedEOF:
		return ErrShort
	case err == zlib.ErrChecksum:
		return ErrChecksum
	case err == zlib.ErrHeader, err == zlib.ErrDictionary, errors.As(err, &corrupt):
		return ErrCorrupt
	}
	panic("compress/zlib: unexpected error " + err.Error())
}

// class names the sentinel err is or wraps.
func class(err error) string {
	for _, c := range []struct {
		err  error
		name string
	}{{nil, "ok"}, {ErrShort, "ErrShort"}, {ErrSize, "ErrSize"}, {ErrChecksum, "ErrChecksum"}, {ErrCorrupt, "ErrCorrupt"}} {
		if errors.Is(err, c.err) {
			return c.name
		}
	}
	return "unexpected error " + err.Error()
}

// compare inflates src with a fresh Decoder and with d (which may hold
// tables from earlier calls) and checks both against zlibResult, and that
// nothing is written into dst past size. It returns Inflate's error.
func compare(t testing.TB, d *Decoder, src []byte, size int) error {
	t.Helper()
	return compareWith(t, d, src, size, zlibDecode(src, size+1))
}

// compareWith is compare with what compress/zlib made of src.
func compareWith(t testing.TB, d *Decoder, src []byte, size int, z zlibDecoded) error {
	t.Helper()
	want, wantN, wantErr := z.expect(size)
	for _, dec := range []*Decoder{d, new(Decoder)} {
		// A dst with room past size, filled with a marker that must
		// survive.
		dst := bytes.Repeat([]byte{0xa5}, size+64)
		got, n, err := dec.Inflate(dst[:0], src, size)
		if class(err) != class(wantErr) {
			t.Fatalf("size %d, src %x: got %v; want %s", size, clip(src), err, class(wantErr))
		}
		if !bytes.Equal(dst[size:], bytes.Repeat([]byte{0xa5}, 64)) {
			t.Fatalf("size %d, src %x: wrote past size", size, clip(src))
		}
		if err != nil {
			if len(got) != 0 || n != 0 {
				t.Fatalf("size %d, src %x: error %v with %d bytes and n %d", size, clip(src), err, len(got), n)
			}
			continue
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("size %d, src %x: content differs from compress/zlib's", size, clip(src))
		}
		if n != wantN {
			t.Fatalf("size %d, src %x: n = %d; want %d", size, clip(src), n, wantN)
		}
	}
	return wantErr
}

func clip(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

// bitWriter writes a DEFLATE bit stream (RFC 1951, section 3.1.1).
type bitWriter struct {
	buf []byte
	acc uint64
	n   uint
}

// bits writes the n low bits of v, least significant first.
func (w *bitWriter) bits(v uint64, n uint) *bitWriter {
	w.acc |= v << w.n
	w.n += n
	for w.n >= 8 {
		w.buf = append(w.buf, byte(w.acc))
		w.acc >>= 8
		w.n -= 8
	}
	return w
}

// code writes a Huffman code of n bits, most significant first.
func (w *bitWriter) code(c uint64, n uint) *bitWriter {
	for i := int(n) - 1; i >= 0; i-- {
		w.bits(c>>uint(i)&1, 1)
	}
	return w
}

// align pads to a byte boundary with zeros.
func (w *bitWriter) align() *bitWriter {
	if w.n > 0 {
		w.bits(0, 8-w.n)
	}
	return w
}

func (w *bitWriter) bytes(p []byte) *bitWriter {
	w.align()
	w.buf = append(w.buf, p...)
	return w
}

// stored writes a stored block (RFC 1951, section 3.2.4).
func (w *bitWriter) stored(final bool, p string) *bitWriter {
	f := uint64(0)
	if final {
		f = 1
	}
	n := len(p)
	return w.bits(f, 1).bits(0, 2).bytes([]byte{byte(n), byte(n >> 8), ^byte(n), ^byte(n >> 8)}).bytes([]byte(p))
}

func (w *bitWriter) done() []byte {
	w.align()
	return w.buf
}

// Fixed Huffman code (RFC 1951, section 3.2.6) writers.

func (w *bitWriter) fixedSym(s int) *bitWriter {
	switch {
	case s < 144:
		return w.code(uint64(0x30+s), 8)
	case s < 256:
		return w.code(uint64(0x190+s-144), 9)
	case s < 280:
		return w.code(uint64(s-256), 7)
	}
	return w.code(uint64(0xc0+s-280), 8)
}

func (w *bitWriter) fixedLit(p string) *bitWriter {
	for i := 0; i < len(p); i++ {
		w.fixedSym(int(p[i]))
	}
	return w
}

// lengthSym returns the length symbol, extra bits and their count for
// length (3-258), as a compressor picks them (258 is 285).
func lengthSym(length int) (sym int, extra uint64, n uint) {
	if length == 258 {
		return 285, 0, 0
	}
	base, nb := 3, uint(0)
	for s := 257; s < 285; s++ {
		if s >= 265 && (s-265)%4 == 0 {
			nb++
		}
		if length < base+1<<nb {
			return s, uint64(length - base), nb
		}
		base += 1 << nb
	}
	panic("bad length")
}

func distSym(dist int) (sym int, extra uint64, n uint) {
	base, nb := 1, uint(0)
	for s := 0; s < 30; s++ {
		if s >= 4 && s%2 == 0 {
			nb++
		}
		if dist < base+1<<nb {
			return s, uint64(dist - base), nb
		}
		base += 1 << nb
	}
	panic("bad distance")
}

func (w *bitWriter) fixedMatch(length, dist int) *bitWriter {
	s, x, n := lengthSym(length)
	w.fixedSym(s).bits(x, n)
	s, x, n = distSym(dist)
	return w.code(uint64(s), 5).bits(x, n)
}

// canonical returns the canonical Huffman codes for lens (RFC 1951,
// section 3.2.2).
func canonical(lens []uint8) []uint64 {
	var count [16]int
	for _, l := range lens {
		count[l]++
	}
	count[0] = 0
	var next [16]uint64
	code := uint64(0)
	for l := 1; l < 16; l++ {
		code = (code + uint64(count[l-1])) << 1
		next[l] = code
	}
	codes := make([]uint64, len(lens))
	for s, l := range lens {
		if l != 0 {
			codes[s] = next[l]
			next[l]++
		}
	}
	return codes
}

// dynamic writes a dynamic block header (RFC 1951, section 3.2.7) for
// the given literal/length and distance code lengths, each length written
// as itself with a code length code that gives all of 0-15 four bits. It
// returns the codes to write the block with.
func (w *bitWriter) dynamic(final bool, litLens, distLens []uint8) (lit, dist []uint64) {
	f := uint64(0)
	if final {
		f = 1
	}
	w.bits(f, 1).bits(2, 2)
	w.bits(uint64(len(litLens)-257), 5).bits(uint64(len(distLens)-1), 5).bits(19-4, 4)
	for _, s := range preOrder {
		if s < 16 {
			w.bits(4, 3)
		} else {
			w.bits(0, 3)
		}
	}
	for _, l := range append(append([]uint8(nil), litLens...), distLens...) {
		w.code(uint64(l), 4)
	}
	return canonical(litLens), canonical(distLens)
}

// zlibStream wraps a DEFLATE stream in a zlib header and the Adler-32 of
// content.
func zlibStream(deflate, content []byte) []byte {
	s := append([]byte{0x78, 0x9c}, deflate...)
	sum := adler32.Checksum(content)
	return append(s, byte(sum>>24), byte(sum>>16), byte(sum>>8), byte(sum))
}
