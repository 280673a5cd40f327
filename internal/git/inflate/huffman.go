package inflate

import (
	"encoding/binary"
	"math/bits"
)

// Huffman decoding tables (RFC 1951, sections 3.2.2 and 3.2.5-3.2.7).
//
// A table is indexed by the next tbits bits of the stream, tbits being
// the longest code length capped at a per-alphabet maximum, so a block
// whose codes are short gets a small table that is quick to fill. Codes
// longer than tbits go through a subtable, placed after the primary
// table, that the primary entry for their first tbits bits points to.
//
// Each entry is a uint32 that tells the decoder everything about the
// symbol with one lookup:
//
//	bits  0-7   bits to consume: code length plus extra bits (for a
//	            subtable pointer: tbits)
//	bits  8-11  code length, so extra bits = (b & (1<<total - 1)) >> len
//	            (for a subtable pointer: the subtable's index bits)
//	bit  15     literal
//	bit  14     not a literal or length: end of block, subtable pointer,
//	            or invalid code
//	bit  13     subtable pointer
//	bit  12     end of block
//	bits 16-31  the literal, the length or distance base, or the
//	            subtable's start index
//
// An invalid entry (bit 14 alone) stands for a code the stream cannot
// use: symbols 286, 287, 30 and 31 of the fixed code, and the bit patterns
// an incomplete code leaves unassigned. Its bit count is what it takes to
// know the code is invalid, so that a stream cut short there is ErrShort.
const (
	flagLit = 1 << 15
	flagExc = 1 << 14
	flagSub = 1 << 13
	flagEOB = 1 << 12

	entryInvalid = flagExc

	// flagPrev marks code length symbol 16, in the code length code's
	// table, which has no subtables.
	flagPrev = flagSub
)

const (
	maxLitSyms  = 286 // literal/length symbols a dynamic block may give lengths for
	maxDistSyms = 30  // distance symbols a dynamic block may give lengths for
	numPreSyms  = 19  // code length symbols
	maxCodeLen  = 15

	// Primary table bits caps: a longer literal/length table means fewer
	// subtable lookups in long streams, a shorter one less to fill for the
	// short streams most pack objects are.
	maxLitBits  = 10
	maxDistBits = 8

	// Table sizes are powers of two so that subtable indexes masked with
	// size-1 need no bounds check (primary ones are checked, off the
	// critical path). Each must hold 2^maxBits primary entries plus
	// the subtables of any complete code: a subtable of k index bits holds
	// at least k+1 codes, all of them longer than maxBits, so with at most
	// 32 entries for 6 codes (literal/length) or 128 for 8 (distance) the
	// subtables take under 286*32/6 = 1526 and 30*128/8 = 480 entries.
	litTableSize  = 4096
	distTableSize = 1024
	preTableSize  = 1 << 7
)

type (
	litTable  [litTableSize]uint32
	distTable [distTableSize]uint32
	preTable  [preTableSize]uint32
)

// Entry templates per symbol: everything but the code length, which
// build adds as len*0x101 (into the bit count and the length field).
var (
	litTemplates  [288]uint32
	distTemplates [32]uint32
	preTemplates  [numPreSyms]uint32

	// preOrder is the order of the code length code's lengths in a
	// dynamic block header.
	preOrder = [numPreSyms]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}
)

// Fixed Huffman codes, RFC 1951 section 3.2.6, built once at init.
var fixed struct {
	lit  litTable
	dist distTable
}

const (
	fixedLitBits  = 9
	fixedDistBits = 5
	fixedLitNeed  = 7 // shortest fixed literal/length code, that of end of block
)

func init() {
	for i := range 256 {
		litTemplates[i] = flagLit | uint32(i)<<16
	}
	litTemplates[256] = flagExc | flagEOB
	// Lengths, RFC 1951 section 3.2.5: symbols 257-264 are lengths 3-10;
	// from 265, each run of four symbols has one more extra bit than the
	// last; 285 is 258 with no extra bits.
	base, extra := uint32(3), uint32(0)
	for s := 257; s < 285; s++ {
		if s >= 265 && (s-265)%4 == 0 {
			extra++
		}
		litTemplates[s] = base<<16 | extra
		base += 1 << extra
	}
	litTemplates[285] = 258 << 16
	litTemplates[286] = entryInvalid
	litTemplates[287] = entryInvalid

	// Distances: 1-4 with no extra bits, then pairs of symbols with one
	// more extra bit each, up to 29 (24577 plus 13 bits, 32768 at most).
	base, extra = 1, 0
	for s := range 30 {
		if s >= 4 && s%2 == 0 {
			extra++
		}
		distTemplates[s] = base<<16 | extra
		base += 1 << extra
	}
	distTemplates[30] = entryInvalid
	distTemplates[31] = entryInvalid

	// Code length symbols: 0-15 are lengths; 16 repeats the last length
	// 3-6 times (2 extra bits), 17 and 18 repeat zero 3-10 (3 bits) and
	// 11-138 (7 bits) times. Their entries hold the length to write in
	// bits 16-23 (flagPrev for "the last one") and the repeat count base
	// in bits 24-31, so that readDynamic treats all 19 alike.
	for s := range 16 {
		preTemplates[s] = uint32(s)<<16 | 1<<24
	}
	preTemplates[16] = flagPrev | 3<<24 | 2
	preTemplates[17] = 3<<24 | 3
	preTemplates[18] = 11<<24 | 7

	var lens [288]uint8
	for i := range lens {
		switch {
		case i < 144:
			lens[i] = 8
		case i < 256:
			lens[i] = 9
		case i < 280:
			lens[i] = 7
		default:
			lens[i] = 8
		}
	}
	var sc buildScratch
	if tb, _, ok := sc.buildLens(fixed.lit[:], lens[:], litTemplates[:], maxLitBits); !ok || tb != fixedLitBits {
		panic("inflate: fixed literal/length table")
	}
	for i := range 32 {
		lens[i] = 5
	}
	if tb, _, ok := sc.buildLens(fixed.dist[:], lens[:32], distTemplates[:], maxDistBits); !ok || tb != fixedDistBits {
		panic("inflate: fixed distance table")
	}
}

// buildScratch is the memory build works in: the symbols that have a
// code, and the same sorted by code length.
type buildScratch struct {
	syms   [maxLitSyms + maxDistSyms + 6]uint16 // with room for readDynamic's runs
	sorted [maxLitSyms + maxDistSyms]uint16
}

// buildLens is build for a code given only by its lengths.
func (sc *buildScratch) buildLens(t []uint32, lens []uint8, tmpl []uint32, maxBits uint) (tbits, minLen uint, ok bool) {
	var count [maxCodeLen + 1]int32
	n := 0
	for s, l := range lens {
		if l != 0 {
			sc.syms[n] = uint16(s)
			n++
			count[l&maxCodeLen]++
		}
	}
	return sc.build(t, lens, sc.syms[:n], 0, &count, tmpl, maxBits)
}

// build fills t with the decoding table for the canonical Huffman code
// (RFC 1951, section 3.2.2) in which symbol s-base has code length
// lens[s] for each s in syms, the increasing list of the symbols whose
// length is not zero; count[l] is how many of them have length l.
// Symbol s-base has entry template tmpl[s-base].
//
// Taking the symbols and counts rather than finding them lets readDynamic
// gather both as it decodes the lengths, where runs of zeros cost one
// step, instead of in passes over all 316 lengths here.
//
// It returns the primary table's index bits and the shortest code length.
// ok is false for codes compress/flate rejects: over-subscribed ones, and
// incomplete ones other than a single code of length 1. Like compress/flate
// it accepts a code with no lengths at all (tbits 0): every lookup in that
// table is invalid, which only an unused distance code survives.
func (sc *buildScratch) build(t []uint32, lens []uint8, syms []uint16, base int, count *[maxCodeLen + 1]int32, tmpl []uint32, maxBits uint) (tbits, minLen uint, ok bool) {
	// Kraft: left is the number of unused codes of length l.
	left := int32(1)
	maxLen := uint(0)
	for l := uint(1); l <= maxCodeLen; l++ {
		left = left<<1 - count[l]
		if left < 0 {
			return 0, 0, false
		}
		if count[l] != 0 {
			maxLen = l
			if minLen == 0 {
				minLen = l
			}
		}
	}
	if left != 0 {
		switch {
		case maxLen == 0:
			t[0] = entryInvalid
			return 0, 0, true
		case maxLen == 1 && count[1] == 1:
			// The one code is 0; reading a 1 is invalid after one bit.
			t[0] = tmpl[int(syms[0])-base] + 0x101
			t[1] = entryInvalid + 0x101
			return 1, 1, true
		}
		return 0, 0, false
	}

	// Order the symbols by code length, then by symbol: that is the order
	// in which the canonical code assigns codes.
	var offs [maxCodeLen + 1]int32
	o := int32(0)
	for l := 1; l <= maxCodeLen; l++ {
		offs[l] = o
		o += count[l]
	}
	sorted := sc.sorted[:len(syms)]
	for _, s := range syms {
		l := lens[s] & maxCodeLen
		sorted[offs[l]] = s - uint16(base)
		offs[l]++
	}
	next := 0

	// Fill the primary table a length at a time: with the codes of length
	// l placed in a table of 2^l entries, doubling it copies each code
	// into the entries whose extra high index bit it does not read. The
	// stream is read from the low bit up, so an entry's index is its code
	// with the bits reversed. Codes of one length are consecutive
	// numbers from code; each is reversed on its own, with no chain of
	// dependent steps from one symbol to the next.
	tbits = min(maxLen, maxBits)
	code := uint(0)
	l := minLen
	size := 1 << l
	for {
		c := uint(count[l])
		for k, s := range sorted[next : next+int(c)] {
			t[reverse(code+uint(k), l)] = tmpl[s] + uint32(l)*0x101
		}
		next += int(c)
		code += c
		if l == tbits {
			break
		}
		copy(t[size:size<<1], t[:size])
		size <<= 1
		l++
		code <<= 1
	}
	if maxLen == tbits {
		return tbits, minLen, true
	}

	// Codes longer than tbits: the codes sharing their first tbits bits
	// are consecutive in canonical order, so each run of them gets one
	// subtable, sized (as zlib's inflate_table does) to the shortest
	// length at which the remaining codes fill it.
	end := size
	pmask := uint(1)<<tbits - 1
	prefix := ^uint(0)
	var sub, subBits uint
	for l := tbits + 1; l <= maxLen; l++ {
		code <<= 1
		for k := count[l]; k > 0; k-- {
			rev := reverse(code, l)
			code++
			if rev&pmask != prefix {
				prefix = rev & pmask
				subBits = l - tbits
				room := 1<<subBits - int(k)
				for room > 0 && tbits+subBits < maxLen {
					subBits++
					room = room<<1 - int(count[tbits+subBits])
				}
				sub = uint(end)
				end += 1 << subBits
				if end > len(t) {
					// Not reachable for a complete code (see
					// litTableSize); kept so that a mistake there fails
					// closed.
					return 0, 0, false
				}
				t[prefix] = flagExc | flagSub | uint32(sub)<<16 | uint32(subBits)<<8 | uint32(tbits)
			}
			e := tmpl[sorted[next]] + uint32(l-tbits)*0x101
			next++
			for i := rev >> tbits; i < 1<<subBits; i += 1 << (l - tbits) {
				t[sub+i] = e
			}
		}
	}
	return tbits, minLen, true
}

// reverse returns the l-bit code with its bits in reverse order.
func reverse(code, l uint) uint {
	return uint(bits.Reverse16(uint16(code))) >> (16 - l)
}

// lengthsError is readDynamic's error for code lengths it cannot take:
// ErrShort if the bits read so far, in bytes up to in with nb of them
// unread, run past end, the bits src holds; else errCodeLengths.
func lengthsError(in int, nb uint, end int) error {
	if 8*in-int(nb) > end {
		return ErrShort
	}
	return errCodeLengths
}

// maxDynamicHeader bounds the bytes a dynamic block header can take: 14
// bits of counts, 19 code length code lengths of 3 bits, and 316 code
// lengths of at most 7+7 bits, 4495 bits in all.
const maxDynamicHeader = (14 + 19*3 + 316*14 + 7) / 8

// readDynamic reads the code lengths of a dynamic block (RFC 1951, section
// 3.2.7) and builds its tables. It returns the index bits of the
// literal/length and distance tables and the number of bits compress/flate
// insists on having before it decodes a literal/length symbol (the
// shortest code, or end of block if longer), which decides whether a
// stream cut short inside the block is short or corrupt.
//
// The checks run in compress/flate's order, so the two agree on which
// error a stream that is both truncated and corrupt gets.
func (d *Decoder) readDynamic(r *bitReader) (lbits, dbits, need uint, err error) {
	// The header is read with eight-byte loads only. When src may end
	// within it, the rest of src is copied to d.tail, which is padded
	// with zeros. Reading past the real bytes (the bit position
	// 8*in-nb passing end) is ErrShort, checked where the header turns
	// out to be corrupt and after it: zeros read past the end can only
	// lead to one of those. (Refills and checks are spelled out: Go
	// keeps variables that closures capture out of registers.)
	src, in := r.src, r.in
	b, nb := r.b, r.nb
	end := 8 * len(src)
	copied := len(src)-in < len(d.tail)
	if copied {
		n := copy(d.tail[:], src[in:])
		clear(d.tail[n:])
		src, in = d.tail[:], 0
		// The bits in b, of which over bytes are zeros, come before
		// tail[0].
		end = 8 * (n - r.over)
	}

	b |= leUint64(src, in) << (nb & 63)
	in += int((63 - nb) >> 3)
	nb |= 56
	nlit := uint(b&0x1f) + 257
	ndist := uint(b>>5&0x1f) + 1
	npre := uint(b>>10&0xf) + 4
	b >>= 14
	nb -= 14
	if 8*in-int(nb) > end {
		return 0, 0, 0, ErrShort
	}
	if nlit > maxLitSyms || ndist > maxDistSyms {
		return 0, 0, 0, errCodeLengths
	}

	// Code length code lengths, 3 bits each in this order.
	var preLens [numPreSyms]uint8
	for i := range npre {
		if nb < 3 {
			b |= leUint64(src, in) << (nb & 63)
			in += int((63 - nb) >> 3)
			nb |= 56
		}
		preLens[preOrder[i]] = uint8(b & 7)
		b >>= 3
		nb -= 3
	}
	if 8*in-int(nb) > end {
		return 0, 0, 0, ErrShort
	}
	pbits, _, ok := d.sc.buildLens(d.pre[:], preLens[:], preTemplates[:], 7)
	if !ok {
		return 0, 0, 0, errCodeLengths
	}
	// Index the table with 7 bits whatever the longest code, so that the
	// loop below needs no mask variable.
	for size := 1 << pbits; size < preTableSize; size <<= 1 {
		copy(d.pre[size:size<<1], d.pre[:size])
	}

	// The literal/length and distance code lengths, as one sequence (a
	// repeat may run from one into the other). Alongside, the symbols
	// with a code go to syms and their lengths are counted, per code.
	//
	// The loop keeps little state, so that it stays in registers, and
	// branches little on the symbols, whose order no predictor guesses.
	// Only lengths that are not zero are kept in lens (build reads no
	// others), so a run of zeros costs one store; a symbol is listed in
	// syms whether or not its length is zero, nsyms moving past it only
	// if it is not; zeros are counted too, in counts[0], which build
	// ignores.
	n := nlit + ndist
	nsyms := uint(0)
	var counts [2 * (maxCodeLen + 1)]int32
	prev := uint(0)
	for i := uint(0); i < n; {
		if nb < 14 {
			// A code length symbol takes at most 7 bits plus 7 extra.
			b |= leUint64(src, in) << (nb & 63)
			in += int((63 - nb) >> 3)
			nb |= 56
		}
		// The current code's counts: counts[16:] once i reaches nlit.
		co := (nlit - 1 - i) >> 59 & (maxCodeLen + 1)
		e := d.pre[b&(preTableSize-1)]
		if e&(flagExc|flagPrev) != 0 {
			// compress/flate rejects an invalid code and a 16 with no
			// length before it on reading the code, before its extra
			// bits.
			if e&flagExc != 0 || i == 0 {
				nb -= uint(e >> 8 & 0xf)
				return 0, 0, 0, lengthsError(in, nb, end)
			}
			// 16: the previous length 3-6 times.
			rep := 3 + uint(b>>(e>>8&0xf)&3)
			b >>= e & 63
			nb -= uint(e & 63)
			if rep > n-i {
				return 0, 0, 0, lengthsError(in, nb, end)
			}
			// As below, write and list as if the run were not of zeros
			// (at most 6, so without a loop), and count only as far.
			binary.LittleEndian.PutUint64(d.lens[i:], uint64(prev)*0x0101010101010101)
			syms := d.sc.syms[nsyms : nsyms+6]
			syms[0] = uint16(i)
			syms[1] = uint16(i + 1)
			syms[2] = uint16(i + 2)
			syms[3] = uint16(i + 3)
			syms[4] = uint16(i + 4)
			syms[5] = uint16(i + 5)
			nsyms += rep * ((prev + 0xf) >> 4)
			if i < nlit && i+rep > nlit {
				// The run crosses into the distance lengths.
				counts[prev] += int32(nlit - i)
				counts[maxCodeLen+1+prev] += int32(i + rep - nlit)
			} else {
				counts[(co+prev)&31] += int32(rep)
			}
			i += rep
			continue
		}
		// A length, or 17 or 18: a run of zeros.
		rep := uint(e>>24) + uint((b&(1<<(e&63)-1))>>(e>>8&0xf))
		b >>= e & 63
		nb -= uint(e & 63)
		if rep > n-i {
			return 0, 0, 0, lengthsError(in, nb, end)
		}
		v := uint(e >> 16 & 0xf)
		prev = v
		d.lens[i] = uint8(v)
		counts[(co+v)&31]++
		d.sc.syms[nsyms] = uint16(i)
		nsyms += (v + 0xf) >> 4 // 1 unless v is 0
		i += rep
	}
	if 8*in-int(nb) > end {
		return 0, 0, 0, ErrShort
	}
	r.b, r.nb = b, nb
	if copied {
		// Back to src's terms: the bytes read from the tail are src's,
		// then zeros past its end, which over counts.
		if rest := len(r.src) - r.in; in <= rest {
			r.in += in
		} else {
			r.in = len(r.src)
			r.over += in - rest
		}
	} else {
		r.in = in
	}
	lens := d.lens[:]
	syms := d.sc.syms[:]

	nlitSyms := 0
	for _, c := range counts[1 : maxCodeLen+1] {
		nlitSyms += int(c)
	}
	var minLen uint
	lbits, minLen, ok = d.sc.build(d.lit[:], lens, syms[:nlitSyms], 0, (*[maxCodeLen + 1]int32)(counts[:]), litTemplates[:], maxLitBits)
	if !ok {
		return 0, 0, 0, errCodeLengths
	}
	dbits, _, ok = d.sc.build(d.dist[:], lens, syms[nlitSyms:nsyms], int(nlit), (*[maxCodeLen + 1]int32)(counts[maxCodeLen+1:]), distTemplates[:], maxDistBits)
	if !ok {
		return 0, 0, 0, errCodeLengths
	}
	// compress/flate reads at least the length of the end-of-block code
	// before each literal/length symbol. lens[256] holds it only if it
	// is not zero, which syms tells.
	need = minLen
	for j := nlitSyms - 1; j >= 0 && syms[j] >= 256; j-- {
		if syms[j] == 256 {
			need = max(need, uint(lens[256]))
		}
	}
	return lbits, dbits, need, nil
}

// leUint64 loads the eight bytes at src[i:], little-endian; the caller has
// checked i <= len(src)-8.
func leUint64(src []byte, i int) uint64 {
	return binary.LittleEndian.Uint64(src[i:])
}
