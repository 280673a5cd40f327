package inflate

import "encoding/binary"

// bitReader holds the bit-level read position in src. DEFLATE packs its
// fields starting at the least significant bit of each byte (RFC 1951,
// section 3.1.1), so b holds the next unread bits of the stream from bit 0
// up, nb of them valid.
//
// Near the end of src, refill pads with zero bytes instead of stopping,
// and over counts them: decoding goes on as if the stream continued with
// zeros, and short reports when the bits consumed include padding. A
// decoder checks short before it acts on what it decoded, so padding never
// becomes output, and a stream cut short is always reported as ErrShort
// rather than as whatever the zeros decode to.
type bitReader struct {
	src  []byte
	in   int    // next byte of src to load into b
	b    uint64 // unread bits; any bits above nb are the stream's next bits or zero
	nb   uint   // number of valid bits in b, at most 63
	over int    // zero bytes loaded past the end of src
}

// refill loads bytes into b until it holds at least 56 bits.
func (r *bitReader) refill() {
	if r.in <= len(r.src)-8 {
		// Load eight bytes and keep the whole ones that fit: the bits
		// that land above the new nb are the next byte's own low bits,
		// so the next refill ORs the same values in again.
		r.b |= binary.LittleEndian.Uint64(r.src[r.in:]) << (r.nb & 63)
		r.in += int((63 - r.nb) >> 3)
		r.nb |= 56
		return
	}
	for r.nb <= 56 {
		if r.in < len(r.src) {
			r.b |= uint64(r.src[r.in]) << (r.nb & 63)
			r.in++
		} else {
			r.over++
		}
		r.nb += 8
	}
}

// consume drops n bits; the caller has made sure b holds them.
func (r *bitReader) consume(n uint) {
	r.b >>= n & 63
	r.nb -= n
}

// short reports whether the bits consumed so far run past the end of src.
func (r *bitReader) short() bool {
	return 8*r.over > int(r.nb)
}

// bytePos drops the bits left in the current byte and returns the index in
// src of the next byte; the caller has checked short. It leaves b empty so
// that the caller can read bytes at that index directly.
func (r *bitReader) bytePos() int {
	p := r.in + r.over - int(r.nb>>3)
	r.b, r.nb, r.over, r.in = 0, 0, 0, p
	return p
}

// setBitPos moves the read position to bit bp of src, which is before
// the end of src, leaving nothing padded.
func (r *bitReader) setBitPos(bp uint) {
	r.in = int(bp >> 3)
	r.b, r.nb, r.over = 0, 0, 0
	if k := bp & 7; k != 0 {
		r.b = uint64(r.src[r.in]) >> k
		r.nb = 8 - k
		r.in++
	}
}
