package pack

// Delta data (gitformat-pack(5), "Deltified representation"): the base
// size and result size as little-endian base-128 varints, then a list of
// instructions, each either "copy <size> bytes from <offset> of the base"
// (high bit set) or "insert the next 1..127 literal bytes".

// MaxDeltaSizeVarint is the longest size varint accepted in a delta header.
const MaxDeltaSizeVarint = 10

// DeltaSizes returns the base and result sizes declared at the start of a
// delta and the number of header bytes they used.
func DeltaSizes(delta []byte) (base, result uint64, n int, err error) {
	base, n1, err := deltaVarint(delta)
	if err != nil {
		return 0, 0, 0, err
	}
	result, n2, err := deltaVarint(delta[n1:])
	if err != nil {
		return 0, 0, 0, err
	}
	return base, result, n1 + n2, nil
}

func deltaVarint(b []byte) (v uint64, n int, err error) {
	var shift uint
	for {
		if n >= len(b) {
			return 0, 0, corruptf("truncated delta header")
		}
		if n >= MaxDeltaSizeVarint {
			return 0, 0, corruptf("delta size overflows")
		}
		c := b[n]
		n++
		if shift == 63 && c&0x7e != 0 {
			return 0, 0, corruptf("delta size overflows")
		}
		v |= uint64(c&0x7f) << shift
		shift += 7
		if c&0x80 == 0 {
			return v, n, nil
		}
	}
}

// AppendDeltaSize appends a delta header size varint.
func AppendDeltaSize(dst []byte, v uint64) []byte {
	for v >= 0x80 {
		dst = append(dst, byte(v)|0x80)
		v >>= 7
	}
	return append(dst, byte(v))
}

// ApplyDelta applies delta to base and appends the result to dst, which
// it grows at most once. The result may not exceed maxResult bytes: a
// delta that declares more is rejected before anything is allocated, so a
// hostile delta cannot make the caller allocate more than it allowed.
// Every copy instruction is checked against the base, every insert
// against the delta, and the result must have exactly the declared size.
func ApplyDelta(dst, base, delta []byte, maxResult uint64) ([]byte, error) {
	baseSize, resultSize, n, err := DeltaSizes(delta)
	if err != nil {
		return dst, err
	}
	if baseSize != uint64(len(base)) {
		return dst, corruptf("delta base size %d does not match base of %d bytes", baseSize, len(base))
	}
	if resultSize > maxResult {
		return dst, corruptf("delta result of %d bytes exceeds the limit of %d", resultSize, maxResult)
	}
	start := len(dst)
	if cap(dst)-start < int(resultSize) {
		grown := make([]byte, start, start+int(resultSize))
		copy(grown, dst)
		dst = grown
	}
	limit := start + int(resultSize)
	d := delta[n:]
	for i := 0; i < len(d); {
		op := d[i]
		i++
		switch {
		case op&0x80 != 0:
			// Copy from base: bits 0-3 say which offset bytes follow, bits
			// 4-6 which size bytes.
			var off, size uint64
			for bit := uint(0); bit < 4; bit++ {
				if op&(1<<bit) != 0 {
					if i >= len(d) {
						return dst[:start], corruptf("truncated delta copy instruction")
					}
					off |= uint64(d[i]) << (8 * bit)
					i++
				}
			}
			for bit := uint(0); bit < 3; bit++ {
				if op&(0x10<<bit) != 0 {
					if i >= len(d) {
						return dst[:start], corruptf("truncated delta copy instruction")
					}
					size |= uint64(d[i]) << (8 * bit)
					i++
				}
			}
			if size == 0 {
				size = 0x10000
			}
			if off+size > uint64(len(base)) {
				return dst[:start], corruptf("delta copies past the end of its base")
			}
			if uint64(len(dst))+size > uint64(limit) {
				return dst[:start], corruptf("delta result exceeds its declared size")
			}
			dst = append(dst, base[off:off+size]...)
		case op != 0:
			size := int(op)
			if i+size > len(d) {
				return dst[:start], corruptf("truncated delta insert instruction")
			}
			if len(dst)+size > limit {
				return dst[:start], corruptf("delta result exceeds its declared size")
			}
			dst = append(dst, d[i:i+size]...)
			i += size
		default:
			return dst[:start], corruptf("delta has reserved instruction 0")
		}
	}
	if len(dst) != limit {
		return dst[:start], corruptf("delta result of %d bytes is not the declared %d", len(dst)-start, resultSize)
	}
	return dst, nil
}
