// Package inflate decodes zlib streams (RFC 1950 around the DEFLATE
// format of RFC 1951) that are held whole in memory and whose inflated size
// is known in advance, as every object in a pack is.
//
// It exists for speed: pack objects are mostly short streams (trees and
// commits of a few hundred bytes), where a general streaming inflater
// spends its time building Huffman tables and reading a byte at a time.
// Decoder reads from a 64-bit bit buffer refilled eight bytes at a time,
// sizes its tables to the codes each block actually uses, and writes
// straight into an output buffer of exactly the declared size.
//
// What it accepts is what compress/zlib accepts, and the output is the
// same, with one deliberate exception: a stream that declares a preset
// dictionary (FDICT) is rejected, as C Git's zlib rejects it, even when its
// dictionary id is that of the empty dictionary (compress/zlib, given no
// dictionary, accepts that).
package inflate

import (
	"encoding/binary"
	"errors"
	"math"
)

// Errors callers branch on. Inflate returns them as they are or wraps them
// (every corrupt-stream error wraps ErrCorrupt).
var (
	// ErrShort means src ended before the stream did: the same call with
	// more of the stream may succeed. It is returned whenever decoding
	// would need a byte past len(src), unless what was read before it is
	// already known to be corrupt.
	ErrShort = errors.New("inflate: stream truncated")
	// ErrSize means the stream inflates to more than the declared size
	// (found before anything is written past it) or ends having produced
	// fewer bytes; a negative size is also reported with it.
	ErrSize = errors.New("inflate: inflated size differs from the declared size")
	// ErrChecksum means the Adler-32 trailer does not match the content.
	ErrChecksum = errors.New("inflate: checksum mismatch")
	// ErrCorrupt is wrapped by the errors for streams that are not valid
	// zlib: a bad header, a reserved block type, a stored block whose
	// length check fails, an invalid Huffman code, or a symbol or distance
	// that the code or the output so far cannot give.
	ErrCorrupt = errors.New("inflate: corrupt stream")
)

// corruptError is a fixed corrupt-stream error; declaring them as values
// keeps a failing call from allocating.
type corruptError string

func (e corruptError) Error() string { return "inflate: corrupt stream: " + string(e) }
func (e corruptError) Unwrap() error { return ErrCorrupt }

var (
	errHeader       error = corruptError("bad zlib header")
	errDictionary   error = corruptError("preset dictionary")
	errBlockType    error = corruptError("reserved block type")
	errStoredLength error = corruptError("stored block length check")
	errCodeLengths  error = corruptError("bad code lengths")
	errLitLenCode   error = corruptError("invalid literal/length code")
	errDistCode     error = corruptError("invalid distance code")
	errDistance     error = corruptError("distance beyond the output")
	errNegativeSize error = &sizeError{"inflate: negative size"}
)

type sizeError struct{ msg string }

func (e *sizeError) Error() string { return e.msg }
func (e *sizeError) Unwrap() error { return ErrSize }

// maxRatio bounds how many bytes DEFLATE can produce from one byte of
// input: a match of 258 bytes coded in two bits (a one-bit length code and
// a one-bit distance code) gives 1032 per byte. Inflate uses it to not
// allocate a declared size that src could never fill.
const maxRatio = 1032

// Decoder decodes zlib streams held whole in memory. Its zero value is
// ready to use. It holds the tables of the last dynamic block it decoded
// (about 23 KB in all), so reusing one Decoder makes Inflate allocate
// nothing but the output, and nothing at all when dst has room. A Decoder
// is not safe for concurrent use.
type Decoder struct {
	lit  litTable
	dist distTable
	pre  preTable
	// lens holds a dynamic block's code lengths, literal/length codes then
	// distance codes, and room for readDynamic's eight-byte writes.
	lens [maxLitSyms + maxDistSyms + 8]uint8
	sc   buildScratch
	// tail holds the end of src, padded with zeros, while readDynamic
	// reads a header that src may end inside; the slack past the longest
	// header is for its eight-byte loads.
	tail [maxDynamicHeader + 32]byte
}

// Inflate decodes the zlib stream at the start of src, which must inflate
// to exactly size bytes and end with a good Adler-32 checksum. Bytes after
// the stream are ignored.
//
// The content is appended to dst[:0]: in dst's array when cap(dst) >=
// size, else in a new array of exactly size bytes, allocated once (or, if
// src is too short to inflate to size bytes, of only what it could
// inflate to, 1032 bytes per byte of src, as the call will fail). Nothing
// is written past size bytes. n is the number of bytes of src the stream
// took, its trailer included.
//
// On error out is dst[:0] and n is 0; the bytes of dst's array up to size
// may have been overwritten. The error is ErrShort, ErrSize, ErrChecksum,
// or one that wraps ErrCorrupt; a negative size is an ErrSize. A stream
// that uses a preset dictionary is corrupt.
func (d *Decoder) Inflate(dst, src []byte, size int) (out []byte, n int, err error) {
	if size < 0 {
		return dst[:0], 0, errNegativeSize
	}
	out, n, err = d.inflate(dst, src, size)
	if err != nil {
		return dst[:0], 0, err
	}
	return out, n, nil
}

func (d *Decoder) inflate(dst, src []byte, size int) ([]byte, int, error) {
	// RFC 1950, section 2.2: CMF (method 8, window 2^(CINFO+8) with
	// CINFO <= 7) and FLG, whose check bits make CMF*256+FLG a multiple
	// of 31. compress/zlib needs both bytes before judging either.
	if len(src) < 2 {
		return nil, 0, ErrShort
	}
	cmf, flg := src[0], src[1]
	if cmf&0x0f != 8 || cmf>>4 > 7 || (uint(cmf)<<8|uint(flg))%31 != 0 {
		return nil, 0, errHeader
	}
	if flg&0x20 != 0 {
		return nil, 0, errDictionary
	}

	out := dst[:0]
	if cap(out) >= size {
		out = out[:size]
	} else {
		// A hostile size should not cost memory the stream could never
		// fill: src bounds the output to maxRatio times its length.
		alloc := size
		if len(src) < math.MaxInt/maxRatio && alloc > len(src)*maxRatio {
			alloc = len(src) * maxRatio
		}
		out = make([]byte, alloc)
	}

	r := bitReader{src: src, in: 2}
	pos := 0
	for {
		// Block header, RFC 1951 section 3.2.3: BFINAL, then BTYPE.
		r.refill()
		hdr := r.b & 7
		r.consume(3)
		if r.short() {
			return nil, 0, ErrShort
		}
		var err error
		switch hdr >> 1 {
		case 0:
			pos, err = r.stored(out, pos)
		case 1:
			pos, err = huffman(&r, out, pos, &fixed.lit, fixedLitBits, &fixed.dist, fixedDistBits, fixedLitNeed)
		case 2:
			var lbits, dbits, need uint
			lbits, dbits, need, err = d.readDynamic(&r)
			if err == nil {
				pos, err = huffman(&r, out, pos, &d.lit, lbits, &d.dist, dbits, need)
			}
		default:
			err = errBlockType
		}
		if err != nil {
			return nil, 0, err
		}
		if hdr&1 != 0 {
			break
		}
	}

	// The Adler-32 trailer (RFC 1950) starts at the next byte boundary.
	end := r.bytePos()
	if len(src)-end < 4 {
		return nil, 0, ErrShort
	}
	if pos != size {
		return nil, 0, ErrSize
	}
	out = out[:pos]
	if adler(out) != binary.BigEndian.Uint32(src[end:]) {
		return nil, 0, ErrChecksum
	}
	return out, end + 4, nil
}

// stored copies a stored block (RFC 1951, section 3.2.4) to out[pos:] and
// returns the new position. Like compress/flate, it copies what src holds
// of the block before reporting that src ends inside it, so a block that
// overflows out is ErrSize whenever the bytes present already do.
func (r *bitReader) stored(out []byte, pos int) (int, error) {
	p := r.bytePos()
	r.b, r.nb, r.over = 0, 0, 0
	if len(r.src)-p < 4 {
		return 0, ErrShort
	}
	n := int(binary.LittleEndian.Uint16(r.src[p:]))
	if uint16(n) != ^binary.LittleEndian.Uint16(r.src[p+2:]) {
		return 0, errStoredLength
	}
	p += 4
	avail := min(n, len(r.src)-p)
	if avail > len(out)-pos {
		return 0, ErrSize
	}
	if avail < n {
		return 0, ErrShort
	}
	copy(out[pos:], r.src[p:p+n])
	r.in = p + n
	return pos + n, nil
}
