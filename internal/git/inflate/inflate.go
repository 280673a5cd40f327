// Package inflate decodes zlib streams (RFC 1950 around RFC 1951 deflate
// data) that are held whole in memory and whose inflated size is known
// before they are read, as a pack's entries are: in one call, into a
// buffer of that size, with no reader to reset and no window to copy out
// of. Most entries of a pack are a few hundred bytes, so what a stream
// costs to start (its Huffman tables) matters as much as the speed of
// the loop that decodes it.
//
// What it accepts is what compress/zlib accepts, with one exception: a
// preset dictionary (FDICT), which Git never writes, is refused. Its
// fuzz test compares the two on arbitrary input.
package inflate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/adler32"
	"math/bits"
)

// Errors callers branch on; other failures wrap ErrCorrupt.
var (
	// ErrShort: the stream goes on past the end of the bytes given; a
	// caller holding part of a stream may try again with more.
	ErrShort = errors.New("inflate: zlib stream truncated")
	// ErrSize: the stream inflates to more or to fewer bytes than the
	// size the caller gave.
	ErrSize = errors.New("inflate: zlib stream does not inflate to its declared size")
	// ErrChecksum: the Adler-32 after the deflate data does not match.
	ErrChecksum = errors.New("inflate: zlib checksum mismatch")
	// ErrCorrupt: the stream is not valid zlib and deflate data.
	ErrCorrupt = errors.New("inflate: corrupt zlib stream")
)

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// Decoder decodes zlib streams. Its zero value is ready; it is not safe
// for concurrent use. It keeps its Huffman tables (about 14 KiB) between
// calls, so reusing one allocates nothing but what a call returns.
type Decoder struct {
	lit  [litTableSize]uint32
	dist [distTableSize]uint32
	pre  [1 << preBits]uint32
	lens [maxLit + maxDist]uint8
}

// bitReader holds the state of the bit stream: bits are consumed from
// the low end of b, which holds nb valid bits, refilled from src at pos.
// Past the end of src it is fed zero bits, counted in pad, so that the
// decoding loops need not check for the end at every symbol; a stream
// that consumes any of them was truncated.
type bitReader struct {
	src []byte
	pos int
	b   uint64
	nb  uint
	pad uint
}

// refill makes at least 56 bits available.
func (r *bitReader) refill() {
	if r.nb >= 56 {
		return
	}
	if r.pos <= len(r.src)-8 {
		// A whole word: the bytes above the ones counted are the
		// stream's next bytes, which the next refill ORs in again.
		r.b |= binary.LittleEndian.Uint64(r.src[r.pos:]) << r.nb
		k := (63 - r.nb) >> 3
		r.pos += int(k)
		r.nb += k << 3
		return
	}
	for r.nb <= 56 {
		if r.pos < len(r.src) {
			r.b |= uint64(r.src[r.pos]) << r.nb
			r.pos++
		} else {
			r.pad += 8
		}
		r.nb += 8
	}
}

// overread reports whether bits past the end of src were consumed, or
// are among the next peek bits: the pad bits are the last ones in, so
// the first ones out are real.
func (r *bitReader) overread(peek uint) bool { return r.pad > 0 && r.pad+peek > r.nb }

// fail returns err, or ErrShort if the stream ran out of bytes first:
// the failure may be the doing of the zero bits past the end, consumed
// or among the next peek bits the failing symbol looked at.
func (r *bitReader) fail(err error, peek uint) error {
	if r.overread(peek) {
		return ErrShort
	}
	return err
}

// alignedPos drops the bits up to the next byte boundary and returns
// where in src the next byte is, the whole bytes the buffer holds given
// back: the buffer is empty after it.
func (r *bitReader) alignedPos() (int, error) {
	if r.overread(0) {
		return 0, ErrShort
	}
	r.nb &^= 7
	real := (r.nb - min(r.pad, r.nb)) >> 3
	pos := r.pos - int(real)
	r.b, r.nb, r.pad, r.pos = 0, 0, 0, pos
	return pos, nil
}

// Inflate decodes the zlib stream at the start of src, which must
// inflate to exactly size bytes and end with a good Adler-32. It appends
// the content to dst[:0], in dst's array when its capacity is at least
// size, else in one allocation of size bytes, and returns it with n, the
// bytes of src the stream took, its checksum included; bytes after it
// are not read. Nothing is written past size bytes of the result's
// array. On error the result is dst[:0]; the error is ErrShort (src
// ends first), ErrSize, ErrChecksum or wraps ErrCorrupt.
func (d *Decoder) Inflate(dst, src []byte, size int) (out []byte, n int, err error) {
	if size < 0 {
		return dst[:0], 0, ErrSize
	}
	if len(src) < 2 {
		return dst[:0], 0, ErrShort
	}
	// RFC 1950 section 2.2: deflate with a window of at most 32 KiB, a
	// header checksum, and no preset dictionary.
	cmf, flg := src[0], src[1]
	if cmf&0x0f != 8 || cmf>>4 > 7 || (uint16(cmf)<<8|uint16(flg))%31 != 0 {
		return dst[:0], 0, corrupt("bad zlib header")
	}
	if flg&0x20 != 0 {
		return dst[:0], 0, corrupt("zlib stream with a preset dictionary")
	}
	if cap(dst) >= size {
		out = dst[:size]
	} else {
		out = make([]byte, size)
	}
	r := bitReader{src: src, pos: 2}
	op := 0
	for final := false; !final; {
		r.refill()
		final = r.b&1 != 0
		typ := (r.b >> 1) & 3
		r.b >>= 3
		r.nb -= 3
		switch typ {
		case 0:
			op, err = d.stored(&r, out, op)
		case 1:
			op, err = d.huffman(&r, out, op, &fixedLit, &fixedDist)
		case 2:
			if err = d.dynamic(&r); err == nil {
				op, err = d.huffman(&r, out, op, &d.lit, &d.dist)
			}
		default:
			err = r.fail(corrupt("invalid block type"), 0)
		}
		if err != nil {
			return dst[:0], 0, err
		}
	}
	pos, err := r.alignedPos()
	if err != nil {
		return dst[:0], 0, err
	}
	if op != size {
		return dst[:0], 0, ErrSize
	}
	if len(src)-pos < 4 {
		return dst[:0], 0, ErrShort
	}
	if binary.BigEndian.Uint32(src[pos:]) != adler32.Checksum(out) {
		return dst[:0], 0, ErrChecksum
	}
	return out, pos + 4, nil
}

// stored copies a stored block (RFC 1951 section 3.2.4) to out at op.
func (d *Decoder) stored(r *bitReader, out []byte, op int) (int, error) {
	pos, err := r.alignedPos()
	if err != nil {
		return op, err
	}
	src := r.src
	if len(src)-pos < 4 {
		return op, ErrShort
	}
	length := int(binary.LittleEndian.Uint16(src[pos:]))
	if binary.LittleEndian.Uint16(src[pos+2:]) != ^uint16(length) {
		return op, corrupt("stored block length does not match its complement")
	}
	pos += 4
	if len(src)-pos < length {
		if len(out)-op < len(src)-pos {
			return op, ErrSize
		}
		return op, ErrShort
	}
	if len(out)-op < length {
		return op, ErrSize
	}
	copy(out[op:], src[pos:pos+length])
	r.pos = pos + length
	return op + length, nil
}

// Table entries. A table maps the next bits of the stream, low bit
// first, to an entry: bits 0-4 hold how many bits the code takes (0 for
// a link to a subtable), bits 5-7 its kind, bits 8-15 how many extra
// bits follow (a length's or a distance's; for a link, the subtable's
// index bits) and bits 16-31 its value (a literal byte, a length or
// distance base, a precode symbol, a subtable's start).
const (
	kindValue = 0      // a length, a distance or a precode symbol
	kindLit   = 1 << 5 // a literal byte
	kindEnd   = 2 << 5 // the end of the block
	kindLink  = 3 << 5 // a link to a subtable
	kindBad   = 4 << 5 // no symbol, or one deflate does not use
	kindMask  = 7 << 5

	litBits  = 10 // index bits of the literal/length table's first level
	distBits = 8
	preBits  = 7 // the precode's codes are at most 7 bits: no subtables

	// Subtables come after the first level. A complete code of at most
	// 288 symbols and 15 bits needs far less than this (each subtable
	// of 2^k entries holds at least k+1 codes); build checks anyway.
	litTableSize  = 1<<litBits + 4096
	distTableSize = 1<<distBits + 2048

	maxLit  = 288 // literal/length symbols of the fixed code
	maxDist = 32
	maxLen  = 15 // longest code
)

// Symbol values, without their code lengths.
var litVals, distVals, preVals [maxLit]uint32

// fixedLit and fixedDist are the tables of the fixed code (RFC 1951
// section 3.2.6).
var (
	fixedLit  [litTableSize]uint32
	fixedDist [distTableSize]uint32
)

func init() {
	for s := range 256 {
		litVals[s] = kindLit | uint32(s)<<16
	}
	litVals[256] = kindEnd
	// Lengths 3 to 258 (RFC 1951 section 3.2.5): symbols 257-264 have
	// no extra bits, then four symbols per extra bit up to 5; 285 is 258.
	base := uint32(3)
	for s := 257; s < 285; s++ {
		extra := uint32(0)
		if s >= 265 {
			extra = uint32(s-261) / 4
		}
		litVals[s] = kindValue | base<<16 | extra<<8
		base += 1 << extra
	}
	litVals[285] = kindValue | 258<<16
	litVals[286], litVals[287] = kindBad, kindBad
	for s := range 30 {
		extra, base := uint32(0), uint32(s+1)
		if s >= 4 {
			extra = uint32(s-2) >> 1
			base = 1<<(extra+1) + 1 + uint32(s&1)<<extra
		}
		distVals[s] = kindValue | base<<16 | extra<<8
	}
	distVals[30], distVals[31] = kindBad, kindBad
	for s := range 19 {
		preVals[s] = kindValue | uint32(s)<<16
	}
	var lens [maxLit]uint8
	for s := range lens {
		switch {
		case s < 144:
			lens[s] = 8
		case s < 256:
			lens[s] = 9
		case s < 280:
			lens[s] = 7
		default:
			lens[s] = 8
		}
	}
	if !build(fixedLit[:], litBits, lens[:], litVals[:]) {
		panic("inflate: fixed literal/length code")
	}
	for s := range maxDist {
		lens[s] = 5
	}
	if !build(fixedDist[:], distBits, lens[:maxDist], distVals[:]) {
		panic("inflate: fixed distance code")
	}
}

// build fills table, a first level of 2^root entries and its subtables,
// for the canonical Huffman code whose lengths by symbol are lens (0:
// unused), each symbol's entry being vals[symbol] with its length. It
// reports false for lengths compress/flate refuses: a code that is
// over-subscribed, or incomplete but for a single code of one bit. An
// empty code is accepted, all of its entries invalid, as compress/flate
// fails only when such a code is used.
func build(table []uint32, root uint, lens []uint8, vals []uint32) bool {
	var count [maxLen + 1]int
	for _, l := range lens {
		count[l]++
	}
	count[0] = 0
	maxl := 0
	left := 1
	for l := 1; l <= maxLen; l++ {
		left <<= 1
		left -= count[l]
		if left < 0 {
			return false // over-subscribed
		}
		if count[l] > 0 {
			maxl = l
		}
	}
	size := 1 << root
	if left != 0 && maxl != 0 && (maxl != 1 || count[1] != 1) {
		// Incomplete: allowed for one code of one bit only (and an
		// empty code), whose other entries are then invalid.
		return false
	}
	// Symbols sorted by length, then by symbol: canonical order.
	var offs [maxLen + 2]int
	for l := 1; l <= maxLen; l++ {
		offs[l+1] = offs[l] + count[l]
	}
	var sorted [maxLit]uint16
	for s, l := range lens {
		if l != 0 {
			sorted[offs[l]] = uint16(s)
			offs[l]++
		}
	}
	n := offs[maxLen] // every symbol with a code
	// next holds the next code of each length, most significant bit
	// first, as RFC 1951 section 3.2.2 assigns them.
	var next [maxLen + 1]uint32
	code := uint32(0)
	for l := 1; l <= maxLen; l++ {
		code = (code + uint32(count[l-1])) << 1
		next[l] = code
	}
	// The codes of at most root bits: table[:cur] is filled for the
	// codes shorter than l, then doubled by copying, which repeats
	// each shorter code's entry where the bit above it is set, and
	// the codes of l bits take their own entries. What no code
	// covers stays invalid.
	table[0] = kindBad
	cur := 1
	k := 0
	for l := uint(1); l <= root; l++ {
		copy(table[cur:2*cur], table[:cur])
		cur *= 2
		for ; k < n && uint(lens[sorted[k]]) == l; k++ {
			s := sorted[k]
			table[reverse(next[l], l)] = vals[s] | uint32(l)
			next[l]++
			count[l]--
		}
	}
	mask := uint32(size - 1)
	used := size
	subPrefix, subStart := ^uint32(0), 0
	// The longer codes, in subtables.
	for _, s := range sorted[k:n] {
		l := uint(lens[s])
		c := next[l]
		next[l]++
		// The stream holds the code's bits most significant first,
		// read here from the low end of a word: the index is the code
		// reversed.
		rc := reverse(c, l)
		e := vals[s] | uint32(l)
		if prefix := rc & mask; prefix != subPrefix {
			// A new subtable, as deep as the codes left need: the
			// codes sharing this prefix come one after the other.
			k := l - root
			room := 1 << k
			for k+root < uint(maxl) {
				room -= count[k+root]
				if room <= 0 {
					break
				}
				k++
				room <<= 1
			}
			if used+1<<k > len(table) {
				return false
			}
			subPrefix, subStart = prefix, used
			used += 1 << k
			table[prefix] = kindLink | uint32(subStart)<<16 | uint32(k)<<8
		}
		k := (table[subPrefix] >> 8) & 0xff
		for i := rc >> root; i < 1<<k; i += 1 << (l - root) {
			table[subStart+int(i)] = e
		}
		count[l]--
	}
	return true
}

// reverse returns the n low bits of c in reverse order.
func reverse(c uint32, n uint) uint32 {
	return bits.Reverse32(c) >> (32 - n)
}

// preOrder is the order of the precode's code lengths in a dynamic
// block's header (RFC 1951 section 3.2.7).
var preOrder = [19]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}

// dynamic reads the header of a dynamic block (RFC 1951 section 3.2.7)
// and builds its tables in d.lit and d.dist.
func (d *Decoder) dynamic(r *bitReader) error {
	r.refill()
	nlit := int(r.b&31) + 257
	ndist := int(r.b>>5&31) + 1
	npre := int(r.b>>10&15) + 4
	r.b >>= 14
	r.nb -= 14
	if nlit > 286 || ndist > 30 {
		return r.fail(corrupt("dynamic block declares %d literal/length and %d distance codes", nlit, ndist), 0)
	}
	var pre [19]uint8
	for i := range npre {
		if r.nb < 3 {
			r.refill()
		}
		pre[preOrder[i]] = uint8(r.b & 7)
		r.b >>= 3
		r.nb -= 3
	}
	if !build(d.pre[:], preBits, pre[:], preVals[:]) {
		return r.fail(corrupt("invalid code length code"), 0)
	}
	lens := d.lens[:nlit+ndist]
	for i := 0; i < len(lens); {
		if r.nb < 14 {
			r.refill()
		}
		e := d.pre[r.b&(1<<preBits-1)]
		if e&kindMask == kindBad {
			return r.fail(corrupt("invalid code length symbol"), preBits)
		}
		r.b >>= e & 31
		r.nb -= uint(e & 31)
		sym := e >> 16
		if sym < 16 {
			lens[i] = uint8(sym)
			i++
			continue
		}
		var rep int
		var v uint8
		switch sym {
		case 16:
			if i == 0 {
				return r.fail(corrupt("code length repeated at the start"), 0)
			}
			rep, v = 3+int(r.b&3), lens[i-1]
			r.b >>= 2
			r.nb -= 2
		case 17:
			rep = 3 + int(r.b&7)
			r.b >>= 3
			r.nb -= 3
		default:
			rep = 11 + int(r.b&127)
			r.b >>= 7
			r.nb -= 7
		}
		if rep > len(lens)-i {
			return r.fail(corrupt("code lengths repeated past their count"), 0)
		}
		for j := range rep {
			lens[i+j] = v
		}
		i += rep
	}
	if !build(d.lit[:], litBits, lens[:nlit], litVals[:]) || !build(d.dist[:], distBits, lens[nlit:], distVals[:]) {
		return r.fail(corrupt("invalid Huffman code"), 0)
	}
	return nil
}

// huffman decodes a block's compressed data with the tables lit and
// dist into out from op, up to and including its end of block, and
// returns where the output ends.
func (d *Decoder) huffman(r *bitReader, out []byte, op int, lit *[litTableSize]uint32, dist *[distTableSize]uint32) (int, error) {
	// The bit buffer lives in locals in the loop, where the compiler
	// keeps it in registers.
	src, pos, b, nb := r.src, r.pos, r.b, r.nb
	save := func() { r.pos, r.b, r.nb = pos, b, nb }
	for {
		if pos <= len(src)-8 {
			// Refill to 56 bits or more without a branch: the
			// bytes above the ones counted are the stream's next,
			// which the next refill ORs in again.
			b |= binary.LittleEndian.Uint64(src[pos:]) << (nb & 63)
			pos += int(7 - (nb>>3)&7)
			nb |= 56
		} else if nb < 56 {
			save()
			r.refill()
			pos, b, nb = r.pos, r.b, r.nb
		}
		// 56 bits: a length's code and extra bits, then a distance's,
		// take at most 15+5+15+13 = 48; three literals at most 45.
		e := lit[b&(1<<litBits-1)]
		if e&kindMask == kindLit {
			// Runs of literals are most of what deltas and blobs
			// hold: up to three at a refill.
			if len(out)-op < 3 {
				if op == len(out) {
					save()
					return op, r.fail(ErrSize, uint(e&31))
				}
				out[op] = byte(e >> 16)
				op++
				b >>= e & 31
				nb -= uint(e & 31)
				continue
			}
			out[op] = byte(e >> 16)
			op++
			b >>= e & 31
			nb -= uint(e & 31)
			e = lit[b&(1<<litBits-1)]
			if e&kindMask != kindLit {
				continue
			}
			out[op] = byte(e >> 16)
			op++
			b >>= e & 31
			nb -= uint(e & 31)
			e = lit[b&(1<<litBits-1)]
			if e&kindMask != kindLit {
				continue
			}
			out[op] = byte(e >> 16)
			op++
			b >>= e & 31
			nb -= uint(e & 31)
			continue
		}
		if e&kindMask == kindLink {
			e = lit[e>>16+uint32(b>>litBits)&(1<<(e>>8&0xff)-1)]
		}
		b >>= e & 31
		nb -= uint(e & 31)
		switch e & kindMask {
		case kindLit:
			if op == len(out) {
				save()
				return op, r.fail(ErrSize, 0)
			}
			out[op] = byte(e >> 16)
			op++
			continue
		case kindValue:
		case kindEnd:
			save()
			return op, nil
		default:
			save()
			return op, r.fail(corrupt("invalid literal/length symbol"), maxLen)
		}
		extra := e >> 8 & 0xff
		length := int(e>>16) + int(b&(1<<extra-1))
		b >>= extra
		nb -= uint(extra)
		e = dist[b&(1<<distBits-1)]
		if e&kindMask == kindLink {
			e = dist[e>>16+uint32(b>>distBits)&(1<<(e>>8&0xff)-1)]
		}
		b >>= e & 31
		nb -= uint(e & 31)
		if e&kindMask != kindValue {
			save()
			return op, r.fail(corrupt("invalid distance symbol"), maxLen)
		}
		extra = e >> 8 & 0xff
		distance := int(e>>16) + int(b&(1<<extra-1))
		b >>= extra
		nb -= uint(extra)
		if distance > op {
			save()
			return op, r.fail(corrupt("distance %d past the start of the output", distance), 0)
		}
		if length > len(out)-op {
			save()
			return op, r.fail(ErrSize, 0)
		}
		from := op - distance
		switch {
		case length >= 32 && distance >= length:
			copy(out[op:op+length], out[from:])
		case distance >= 8 && len(out)-op >= length+8:
			// Eight bytes at a time; what goes past the match is
			// overwritten by what follows it.
			for i := 0; i < length; i += 8 {
				binary.LittleEndian.PutUint64(out[op+i:], binary.LittleEndian.Uint64(out[from+i:]))
			}
		case distance >= length:
			copy(out[op:op+length], out[from:])
		default:
			// Overlapping: the match repeats its own start.
			for i := range length {
				out[op+i] = out[from+i]
			}
		}
		op += length
	}
}
