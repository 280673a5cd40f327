package bitmap

import (
	"encoding/binary"
	"fmt"
	"math/bits"
)

// Bitmap is an uncompressed set of bit positions (pack positions, for
// reachability bitmaps). The zero value is an empty set. A Bitmap grows
// as bits are set; its memory is one bit per position up to the highest
// set bit.
type Bitmap struct {
	words []uint64
}

// New returns an empty Bitmap with room for nbits bits, so that setting
// bits below nbits does not allocate.
func New(nbits int) Bitmap {
	if nbits < 0 {
		nbits = 0
	}
	return Bitmap{words: make([]uint64, 0, (nbits+63)/64)}
}

// Set adds bit i (i ≥ 0).
func (b *Bitmap) Set(i int) {
	w := i >> 6
	if w >= len(b.words) {
		b.grow(w + 1)
	}
	b.words[w] |= 1 << (uint(i) & 63)
}

// Clear removes bit i.
func (b *Bitmap) Clear(i int) {
	if w := i >> 6; i >= 0 && w < len(b.words) {
		b.words[w] &^= 1 << (uint(i) & 63)
	}
}

// Has reports whether bit i is set.
func (b Bitmap) Has(i int) bool {
	w := i >> 6
	return i >= 0 && w < len(b.words) && b.words[w]&(1<<(uint(i)&63)) != 0
}

func (b *Bitmap) grow(n int) {
	if n <= cap(b.words) {
		b.words = b.words[:n]
		return
	}
	nw := make([]uint64, n, n+n/4)
	copy(nw, b.words)
	b.words = nw
}

// Or adds every bit of o to b.
func (b *Bitmap) Or(o Bitmap) {
	if len(o.words) > len(b.words) {
		b.grow(len(o.words))
	}
	for i, w := range o.words {
		b.words[i] |= w
	}
}

// AndNot removes from b every bit of o.
func (b *Bitmap) AndNot(o Bitmap) {
	n := min(len(b.words), len(o.words))
	for i := 0; i < n; i++ {
		b.words[i] &^= o.words[i]
	}
}

// And keeps in b only the bits also in o.
func (b *Bitmap) And(o Bitmap) {
	n := min(len(b.words), len(o.words))
	for i := 0; i < n; i++ {
		b.words[i] &= o.words[i]
	}
	clear(b.words[n:])
}

// Xor toggles in b every bit of o.
func (b *Bitmap) Xor(o Bitmap) {
	if len(o.words) > len(b.words) {
		b.grow(len(o.words))
	}
	for i, w := range o.words {
		b.words[i] ^= w
	}
}

// HasFirst reports whether bits 0 to n-1 are all set.
func (b Bitmap) HasFirst(n int) bool {
	if n <= 0 {
		return true
	}
	full := n >> 6
	if full > len(b.words) || full == len(b.words) && n&63 != 0 {
		return false
	}
	for _, w := range b.words[:full] {
		if w != ^uint64(0) {
			return false
		}
	}
	if r := uint(n) & 63; r != 0 {
		mask := uint64(1)<<r - 1
		return b.words[full]&mask == mask
	}
	return true
}

// ClearFirst clears bits 0 to n-1.
func (b *Bitmap) ClearFirst(n int) {
	if n <= 0 {
		return
	}
	full := min(n>>6, len(b.words))
	clear(b.words[:full])
	if r := uint(n) & 63; r != 0 && full < len(b.words) {
		b.words[full] &^= uint64(1)<<r - 1
	}
}

// Count returns the number of bits set.
func (b Bitmap) Count() int {
	n := 0
	for _, w := range b.words {
		n += bits.OnesCount64(w)
	}
	return n
}

// Len returns one past the highest set bit (0 for an empty set).
func (b Bitmap) Len() int {
	for i := len(b.words) - 1; i >= 0; i-- {
		if w := b.words[i]; w != 0 {
			return i*64 + 64 - bits.LeadingZeros64(w)
		}
	}
	return 0
}

// ForEach calls fn for every set bit in increasing order until fn
// returns false.
func (b Bitmap) ForEach(fn func(i int) bool) {
	for wi, w := range b.words {
		for w != 0 {
			t := bits.TrailingZeros64(w)
			if !fn(wi*64 + t) {
				return
			}
			w &= w - 1
		}
	}
}

// OrRange sets, for each bit from+k (0 <= k < n) set in o, bit to+k of
// b: o's bits of that range moved to start at to, a word at a time,
// for a caller that renumbers runs of positions (bitmaps reused across
// packs whose objects keep their order). from, n and to must not be
// negative.
func (b *Bitmap) OrRange(o Bitmap, from, n, to int) {
	if n <= 0 {
		return
	}
	end := min(from+n, len(o.words)*64)
	if from >= end {
		return
	}
	if last := (to + end - from - 1) >> 6; last >= len(b.words) {
		b.grow(last + 1)
	}
	for pos := from; pos < end; {
		off := uint(pos) & 63
		k := min(64-int(off), end-pos) // bits taken from this word
		w := o.words[pos>>6] >> off
		if k < 64 {
			w &= 1<<uint(k) - 1
		}
		if w != 0 {
			d := to + pos - from
			dw, doff := d>>6, uint(d)&63
			b.words[dw] |= w << doff
			if doff != 0 && int(doff)+k > 64 {
				b.words[dw+1] |= w >> (64 - doff)
			}
		}
		pos += k
	}
}

// Intersects reports whether b and o have a set bit in common.
func (b Bitmap) Intersects(o Bitmap) bool {
	n := min(len(b.words), len(o.words))
	for i := 0; i < n; i++ {
		if b.words[i]&o.words[i] != 0 {
			return true
		}
	}
	return false
}

// Clone returns a copy of b that shares no memory with it.
func (b Bitmap) Clone() Bitmap {
	return Bitmap{words: append([]uint64(nil), b.words...)}
}

// Reset empties b, keeping its memory.
func (b *Bitmap) Reset() {
	clear(b.words)
	b.words = b.words[:0]
}

// Equal reports whether b and o hold the same bits.
func (b Bitmap) Equal(o Bitmap) bool {
	short, long := b.words, o.words
	if len(short) > len(long) {
		short, long = long, short
	}
	for i, w := range short {
		if w != long[i] {
			return false
		}
	}
	for _, w := range long[len(short):] {
		if w != 0 {
			return false
		}
	}
	return true
}

// EWAH (Enhanced Word-Aligned Hybrid) is the compression of Git's
// bitmaps (Documentation/technical/bitmap-format.adoc, "EWAH"): a 32-bit
// bit count, a 32-bit word count, that many 64-bit words, and the 32-bit
// index of the last marker word, all big-endian. The words are groups,
// each a marker (bit 0: the value of a run of clean words, bits 1–32:
// the run's length in words, bits 33–63: how many literal words follow)
// then its literal words. Bit i of the set is bit i%64 of expanded word
// i/64.
const (
	ewahHeaderSize  = 8
	ewahTrailerSize = 4
	maxRunLen       = 1<<32 - 1
	maxLiterals     = 1<<31 - 1
)

// ewahInfo is what scanEWAH learns about one encoded bitmap.
type ewahInfo struct {
	n      int // encoded length in bytes
	nwords int // 64-bit words once expanded
}

// scanEWAH checks the EWAH bitmap at the start of b without expanding it:
// every group must lie within the stated words, and no set bit may be at
// or beyond maxBits.
func scanEWAH(b []byte, maxBits int) (ewahInfo, error) {
	if len(b) < ewahHeaderSize+ewahTrailerSize {
		return ewahInfo{}, fmt.Errorf("bitmap: truncated ewah header")
	}
	bitSize := uint64(binary.BigEndian.Uint32(b))
	nw := uint64(binary.BigEndian.Uint32(b[4:]))
	// C Git rounds the stated size up to whole words, so it may pass
	// maxBits by up to 63; the bits actually set are checked below.
	if bitSize > (uint64(maxBits)+63)&^63 {
		return ewahInfo{}, fmt.Errorf("bitmap: ewah of %d bits exceeds %d", bitSize, maxBits)
	}
	total := ewahHeaderSize + nw*8 + ewahTrailerSize
	if total > uint64(len(b)) {
		return ewahInfo{}, fmt.Errorf("bitmap: ewah of %d words overruns the data", nw)
	}
	words := b[ewahHeaderSize : ewahHeaderSize+nw*8]
	if rlw := uint64(binary.BigEndian.Uint32(b[ewahHeaderSize+nw*8:])); rlw >= nw && nw > 0 {
		return ewahInfo{}, fmt.Errorf("bitmap: ewah marker position %d out of range", rlw)
	}
	limit := (uint64(maxBits) + 63) / 64
	var pos uint64  // expanded words so far
	var last uint64 // value of the last expanded word
	for i := uint64(0); i < nw; {
		m := binary.BigEndian.Uint64(words[i*8:])
		i++
		run := (m >> 1) & maxRunLen
		lits := m >> 33
		if run > 0 {
			pos += run
			if m&1 != 0 {
				last = ^uint64(0)
			} else {
				last = 0
			}
		}
		if lits > nw-i {
			return ewahInfo{}, fmt.Errorf("bitmap: ewah group of %d literal words overruns the data", lits)
		}
		if lits > 0 {
			last = binary.BigEndian.Uint64(words[(i+lits-1)*8:])
		}
		pos += lits
		i += lits
		if pos > limit {
			return ewahInfo{}, fmt.Errorf("bitmap: ewah expands past %d bits", maxBits)
		}
	}
	if r := uint(maxBits) & 63; pos == limit && r != 0 && last>>r != 0 {
		return ewahInfo{}, fmt.Errorf("bitmap: ewah sets a bit at or past %d", maxBits)
	}
	return ewahInfo{n: int(total), nwords: int(pos)}, nil
}

// DecodeEWAH decodes the EWAH bitmap at the start of b and returns it
// with the number of bytes it occupied. It fails, allocating nothing
// beyond the result, on any inconsistency: a count that overruns b, a
// group past the stated words, or a set bit at or beyond maxBits (the
// number of objects the bitmap may describe). The result's memory is at
// most maxBits/8 bytes.
func DecodeEWAH(b []byte, maxBits int) (Bitmap, int, error) {
	info, err := scanEWAH(b, maxBits)
	if err != nil {
		return Bitmap{}, 0, err
	}
	var out Bitmap
	out.words = make([]uint64, info.nwords)
	expandEWAH(out.words, b)
	return out, info.n, nil
}

// expandEWAH writes the words of the scanned EWAH bitmap b into dst,
// which holds exactly its expanded length.
func expandEWAH(dst []uint64, b []byte) {
	nw := int(binary.BigEndian.Uint32(b[4:]))
	words := b[ewahHeaderSize : ewahHeaderSize+nw*8]
	pos := 0
	for i := 0; i < nw; {
		m := binary.BigEndian.Uint64(words[i*8:])
		i++
		run := int((m >> 1) & maxRunLen)
		lits := int(m >> 33)
		if m&1 != 0 {
			for k := pos; k < pos+run; k++ {
				dst[k] = ^uint64(0)
			}
		} else {
			clear(dst[pos : pos+run])
		}
		pos += run
		for k := 0; k < lits; k++ {
			dst[pos+k] = binary.BigEndian.Uint64(words[(i+k)*8:])
		}
		pos += lits
		i += lits
	}
}

// AppendEWAH appends the EWAH encoding of b to dst, as C Git writes its
// type bitmaps: the bit count is one past the highest set bit and an
// empty set is one empty marker word.
func AppendEWAH(dst []byte, b Bitmap) []byte { return appendEWAH(dst, b, false) }

// appendEWAH is AppendEWAH; with wordSize, the bit count is rounded up
// to whole words, as C Git writes commit bitmaps (bitmap_to_ewah).
func appendEWAH(dst []byte, b Bitmap, wordSize bool) []byte {
	nbits := b.Len()
	words := b.words[:(nbits+63)/64]
	if wordSize {
		nbits = len(words) * 64
	}
	start := len(dst)
	dst = binary.BigEndian.AppendUint32(dst, uint32(nbits))
	dst = binary.BigEndian.AppendUint32(dst, 0) // word count, patched below
	count := 0
	lastMarker := 0
	if len(words) == 0 {
		dst = binary.BigEndian.AppendUint64(dst, 0)
		count = 1
	}
	for i := 0; i < len(words); {
		var run, bit uint64
		if w := words[i]; w == 0 || w == ^uint64(0) {
			if w != 0 {
				bit = 1
			}
			for i < len(words) && words[i] == w && run < maxRunLen {
				run++
				i++
			}
		}
		litStart := i
		for i < len(words) && words[i] != 0 && words[i] != ^uint64(0) && uint64(i-litStart) < maxLiterals {
			i++
		}
		lits := uint64(i - litStart)
		lastMarker = count
		dst = binary.BigEndian.AppendUint64(dst, bit|run<<1|lits<<33)
		for _, w := range words[litStart:i] {
			dst = binary.BigEndian.AppendUint64(dst, w)
		}
		count += 1 + int(lits)
	}
	binary.BigEndian.PutUint32(dst[start+4:], uint32(count))
	return binary.BigEndian.AppendUint32(dst, uint32(lastMarker))
}
