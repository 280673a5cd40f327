package inflate

import "encoding/binary"

// Adler-32 (RFC 1950, section 8.2): s1 is 1 plus the sum of the bytes,
// s2 the sum of the successive s1 values, both modulo 65521.
//
// hash/adler32 adds one byte at a time; this adds 32 at a time, each
// sum and the position-weighted sum s2 needs got with multiplies on 16-bit
// lanes of the words (SWAR), and reduces modulo 65521 once per chunk, as
// 64-bit sums cannot overflow before then.
const (
	adlerMod = 65521
	// With n bytes since the last reduction s2 stays below
	// 65521*(n+1) + 255*n*(n+1)/2, under 2^64 for n = 2^24.
	adlerChunk = 1 << 24
)

func adler(p []byte) uint32 {
	const (
		lo   = 0x00ff00ff00ff00ff // even bytes of a word, as 16-bit lanes
		ones = 0x0001000100010001 // sums the lanes into the top lane
		// Weights 8, 6, 4, 2 for the even bytes 0, 2, 4, 6 and 7, 5, 3, 1
		// for the odd bytes, in reverse lane order so that the top lane
		// of the product is the weighted sum. No lane sum reaches 2^16,
		// so nothing carries between lanes.
		evenWeights = 0x0008000600040002
		oddWeights  = 0x0007000500030001
	)
	s1, s2 := uint64(1), uint64(0)
	for len(p) > 0 {
		chunk := p[:min(len(p), adlerChunk)]
		p = p[len(chunk):]
		for len(chunk) >= 32 {
			w0 := binary.LittleEndian.Uint64(chunk)
			w1 := binary.LittleEndian.Uint64(chunk[8:])
			w2 := binary.LittleEndian.Uint64(chunk[16:])
			w3 := binary.LittleEndian.Uint64(chunk[24:])
			e0, o0 := w0&lo, w0>>8&lo
			e1, o1 := w1&lo, w1>>8&lo
			e2, o2 := w2&lo, w2>>8&lo
			e3, o3 := w3&lo, w3>>8&lo
			c0, c1, c2, c3 := e0+o0, e1+o1, e2+o2, e3+o3
			// Byte i of word j adds 8*(3-j) + (8-i) times itself to s2
			// beyond 32*s1: the words' sums weighted 3, 2, 1, 0, times
			// 8, plus each word's bytes weighted 8..1.
			before := (3*c0 + 2*c1 + c2) * ones >> 48
			weighted := ((e0+e1+e2+e3)*evenWeights + (o0+o1+o2+o3)*oddWeights) >> 48
			s2 += 32*s1 + 8*before + weighted
			s1 += (c0 + c1 + c2 + c3) * ones >> 48
			chunk = chunk[32:]
		}
		for len(chunk) >= 8 {
			// The same for one word, which short inputs (most pack
			// objects) end with.
			w := binary.LittleEndian.Uint64(chunk)
			e, o := w&lo, w>>8&lo
			s2 += 8*s1 + (e*evenWeights+o*oddWeights)>>48
			s1 += (e + o) * ones >> 48
			chunk = chunk[8:]
		}
		for _, c := range chunk {
			s1 += uint64(c)
			s2 += s1
		}
		s1 %= adlerMod
		s2 %= adlerMod
	}
	return uint32(s2<<16 | s1)
}
