package inflate

import "encoding/binary"

// huffman decodes the symbols of one Huffman-coded block (RFC 1951,
// section 3.2.5) into out[pos:] with the given tables, up to and including
// its end-of-block code, and returns the new output position.
//
// need is the number of bits compress/flate reads before it decodes a
// literal/length symbol; see readDynamic.
//
// The fast loop runs while eight bytes of src remain past the read
// position: one refill then gives at least 56 bits of real input, enough
// for a length code with its extra bits (20) and a distance code with its
// extra bits (28), so nothing in it can run past the end of src. The
// careful loop that finishes the block decodes one symbol per refill and
// checks for padding before it uses what it decoded.
//
// Errors are checked in the order compress/flate checks them: the symbols
// it reads, then the distance against the output so far, and only then
// whether the output would pass size, so both report the same error. The
// distance check, uint(dist-1) >= uint(pos), also turns away a distance of
// 0, which no table entry holds but which copyMatch must never see.
func huffman(r *bitReader, out []byte, pos int, lt *litTable, lbits uint, dt *distTable, dbits uint, need uint) (int, error) {
	src := r.src
	b, nb, in := r.b, r.nb, r.in
	lmask := uint64(1)<<lbits - 1
	dmask := uint64(1)<<dbits - 1

	if in <= len(src)-8 {
		b |= leUint64(src, in) << (nb & 63)
		in += int((63 - nb) >> 3)
		nb |= 56
		// The next literal/length entry is looked up as soon as its
		// bits are in b, before the refill and the match copy that
		// precede its use, so that the load overlaps them.
		e := lt[b&lmask]
		for {
			if e&flagLit != 0 {
				b >>= e & 63
				nb -= uint(e & 63)
				if pos >= len(out) {
					return 0, ErrSize
				}
				out[pos] = byte(e >> 16)
				pos++
				// A primary literal takes at most 10 bits, so a second
				// one and the next lookup fit in what the refill gave.
				e = lt[b&lmask]
				if e&flagLit != 0 {
					b >>= e & 63
					nb -= uint(e & 63)
					if pos >= len(out) {
						return 0, ErrSize
					}
					out[pos] = byte(e >> 16)
					pos++
					e = lt[b&lmask]
				}
				if in > len(src)-8 {
					break
				}
				b |= leUint64(src, in) << (nb & 63)
				in += int((63 - nb) >> 3)
				nb |= 56
				continue
			}
			if e&flagExc != 0 {
				if e&flagSub == 0 {
					if e&flagEOB == 0 {
						return 0, errLitLenCode
					}
					b >>= e & 63
					nb -= uint(e & 63)
					r.b, r.nb, r.in = b, nb, in
					return pos, nil
				}
				b >>= e & 63
				nb -= uint(e & 63)
				e = lt[(uint(e>>16)+uint(b&(1<<(e>>8&0xf)-1)))&(litTableSize-1)]
				if e&flagLit != 0 {
					b >>= e & 63
					nb -= uint(e & 63)
					if pos >= len(out) {
						return 0, ErrSize
					}
					out[pos] = byte(e >> 16)
					pos++
					e = lt[b&lmask]
					if in > len(src)-8 {
						break
					}
					b |= leUint64(src, in) << (nb & 63)
					in += int((63 - nb) >> 3)
					nb |= 56
					continue
				}
				if e&flagExc != 0 {
					if e&flagEOB == 0 {
						return 0, errLitLenCode
					}
					b >>= e & 63
					nb -= uint(e & 63)
					r.b, r.nb, r.in = b, nb, in
					return pos, nil
				}
			}

			// A length, then its distance.
			length := int(e>>16) + int((b&(1<<(e&63)-1))>>(e>>8&0xf))
			b >>= e & 63
			nb -= uint(e & 63)
			e = dt[b&dmask]
			if e&flagExc != 0 {
				if e&flagSub == 0 {
					return 0, errDistCode
				}
				b >>= e & 63
				nb -= uint(e & 63)
				e = dt[(uint(e>>16)+uint(b&(1<<(e>>8&0xf)-1)))&(distTableSize-1)]
				if e&flagExc != 0 {
					return 0, errDistCode
				}
			}
			dist := int(e>>16) + int((b&(1<<(e&63)-1))>>(e>>8&0xf))
			b >>= e & 63
			nb -= uint(e & 63)
			if uint(dist-1) >= uint(pos) {
				return 0, errDistance
			}
			if length > len(out)-pos {
				return 0, ErrSize
			}
			if in > len(src)-8 {
				pos = copyMatch(out, pos, dist, length)
				break
			}
			b |= leUint64(src, in) << (nb & 63)
			in += int((63 - nb) >> 3)
			nb |= 56
			e = lt[b&lmask]
			if end := pos + length; dist >= 8 && end <= len(out)-16 {
				// The common case, inline: sixteen bytes at a time, as
				// two words each read from output already written.
				for pos < end {
					putUint64(out, pos, leUint64(out, pos-dist))
					putUint64(out, pos+8, leUint64(out, pos+8-dist))
					pos += 16
				}
				pos = end
				continue
			}
			pos = copyMatch(out, pos, dist, length)
		}
	}

	over := r.over
	for {
		for nb <= 56 {
			if in < len(src) {
				b |= uint64(src[in]) << (nb & 63)
				in++
			} else {
				over++
			}
			nb += 8
		}
		if int(nb)-8*over < int(need) {
			return 0, ErrShort
		}

		e := lt[b&lmask]
		if e&flagSub != 0 {
			b >>= e & 63
			nb -= uint(e & 63)
			e = lt[(uint(e>>16)+uint(b&(1<<(e>>8&0xf)-1)))&(litTableSize-1)]
		}
		length := int(e>>16) + int((b&(1<<(e&63)-1))>>(e>>8&0xf))
		b >>= e & 63
		nb -= uint(e & 63)
		if 8*over > int(nb) {
			return 0, ErrShort
		}
		if e&flagLit != 0 {
			if pos >= len(out) {
				return 0, ErrSize
			}
			out[pos] = byte(e >> 16)
			pos++
			continue
		}
		if e&flagExc != 0 {
			if e&flagEOB == 0 {
				return 0, errLitLenCode
			}
			r.b, r.nb, r.in, r.over = b, nb, in, over
			return pos, nil
		}

		e = dt[b&dmask]
		if e&flagSub != 0 {
			b >>= e & 63
			nb -= uint(e & 63)
			e = dt[(uint(e>>16)+uint(b&(1<<(e>>8&0xf)-1)))&(distTableSize-1)]
		}
		dist := int(e>>16) + int((b&(1<<(e&63)-1))>>(e>>8&0xf))
		b >>= e & 63
		nb -= uint(e & 63)
		if 8*over > int(nb) {
			return 0, ErrShort
		}
		if e&flagExc != 0 {
			return 0, errDistCode
		}
		if uint(dist-1) >= uint(pos) {
			return 0, errDistance
		}
		if length > len(out)-pos {
			return 0, ErrSize
		}
		pos = copyMatch(out, pos, dist, length)
	}
}

// copyMatch copies length bytes from dist bytes back to out[pos:] and
// returns pos+length; the caller has checked that 1 <= dist <= pos and
// that the copy fits in out. Overlapping copies (dist < length) repeat the
// last dist bytes, as RFC 1951 section 3.2.3 requires.
//
// When out has room past the match it copies eight bytes at a time and
// may write up to seven bytes past the match, which the next symbols
// overwrite; it never writes past len(out).
func copyMatch(out []byte, pos, dist, length int) int {
	end := pos + length
	from := pos - dist
	if len(out)-end >= 8 {
		if dist >= 8 {
			for pos < end {
				putUint64(out, pos, leUint64(out, from))
				pos += 8
				from += 8
			}
			return end
		}
		if dist == 1 {
			v := uint64(out[from]) * 0x0101010101010101
			for pos < end {
				putUint64(out, pos, v)
				pos += 8
			}
			return end
		}
		// Short period: write the first eight bytes one at a time, then
		// copy eight at a time from a multiple of dist at least 8 back.
		for i := range 8 {
			out[pos+i] = out[from+i]
		}
		back := dist * ((8 + dist - 1) / dist)
		for p := pos + 8; p < end; p += 8 {
			putUint64(out, p, leUint64(out, p-back))
		}
		return end
	}
	if dist >= length {
		copy(out[pos:end], out[from:])
		return end
	}
	for ; pos < end; pos++ {
		out[pos] = out[pos-dist]
	}
	return end
}

// putUint64 stores v little-endian at out[i:], which holds eight bytes.
func putUint64(out []byte, i int, v uint64) {
	binary.LittleEndian.PutUint64(out[i:], v)
}
