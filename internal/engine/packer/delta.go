package packer

import (
	"encoding/binary"
	"math/bits"

	"gotd/internal/git/pack"
)

// The delta encoder. It writes the delta data of gitformat-pack(5),
// "Deltified representation": the base and result sizes, then copy and
// insert instructions. Like C Git's diff-delta.c it indexes the base by
// fingerprints of fixed-size blocks, rolls a fingerprint over the target,
// and at every position where a base block with the same fingerprint
// exists takes the longest match, extended forward and then backward into
// the literal bytes not yet emitted. The search is greedy: a match is
// taken as soon as it is found.

const (
	// deltaBlock is the size of the base blocks indexed and of the
	// window rolled over the target. A match shorter than a block is
	// never found, which is no loss: a copy instruction costs up to
	// eight bytes.
	deltaBlock = 16

	// maxChain bounds the number of base blocks compared at one target
	// position, so that highly repetitive bases cannot make the search
	// quadratic.
	maxChain = 64

	// goodMatch is a match length long enough that looking at further
	// candidates is not worth the time.
	goodMatch = 4096

	// maxCopy is the longest copy one instruction carries. The format
	// allows 24-bit sizes, but C Git writes at most 64 KiB per copy and
	// some readers expect no more.
	maxCopy = 0x10000

	// maxInsert is the longest literal run one instruction carries.
	maxInsert = 0x7f

	// MaxDeltaBase is the largest base ComputeDelta accepts: copy
	// instructions address the base with 32-bit offsets.
	MaxDeltaBase = 1<<32 - 1
)

// The fingerprint is a polynomial hash of deltaBlock bytes modulo 2^64,
// so it can be rolled by one byte in constant time; buckets are taken
// from its high bits, which depend on every byte of the window.
const (
	fpMul = 0x100000001b3 // odd multiplier (the FNV-64 prime)
)

// fpOut is fpMul^deltaBlock modulo 2^64, the weight of the byte that
// leaves the window.
var fpOut = func() uint64 {
	w := uint64(1)
	for range deltaBlock {
		w *= fpMul
	}
	return w
}()

// fpMid is fpMul^(deltaBlock/2).
var fpMid = func() uint64 {
	w := uint64(1)
	for range deltaBlock / 2 {
		w *= fpMul
	}
	return w
}()

// fingerprint returns the hash of the block at the start of b: the
// polynomial sum of its bytes, computed as two halves so that the two
// chains of multiplications run in parallel.
func fingerprint(b []byte) uint64 {
	b = b[:deltaBlock]
	var h1, h2 uint64
	for i := 0; i < deltaBlock/2; i++ {
		h1 = h1*fpMul + uint64(b[i])
		h2 = h2*fpMul + uint64(b[i+deltaBlock/2])
	}
	return h1*fpMid + h2
}

func roll(h uint64, out, in byte) uint64 {
	return h*fpMul + uint64(in) - uint64(out)*fpOut
}

// DeltaIndex is an index over one delta base, built once and used to
// compute deltas of several targets against that base. It holds the base
// slice (the caller must not modify it while the index is in use) and
// about one byte of table per byte of base. A DeltaIndex is not safe
// for concurrent use; its zero value is an index over an empty base.
type DeltaIndex struct {
	base  []byte
	shift uint   // 64 - log2(len(heads))
	heads []link // per bucket: its newest block
	next  []link // per block: the next older block in its bucket
}

// link names a block of the base and carries bits of its fingerprint
// other than the bucket's, so that most candidates that cannot match are
// rejected without touching the base.
type link struct {
	tag uint32
	blk int32 // 1 + block number; 0 for none
}

func tagOf(h uint64) uint32 { return uint32(h >> 16) }

// NewDeltaIndex returns an index over base.
func NewDeltaIndex(base []byte) *DeltaIndex {
	x := new(DeltaIndex)
	x.Reset(base)
	return x
}

// Reset makes x an index over base, reusing x's tables when they are
// large enough. Bases larger than MaxDeltaBase are indexed as empty, so
// no delta against them is found.
func (x *DeltaIndex) Reset(base []byte) {
	x.base = base
	if uint64(len(base)) > MaxDeltaBase {
		x.base = nil
	}
	nblocks := len(x.base) / deltaBlock
	size := 16
	for size < nblocks {
		size <<= 1
	}
	x.shift = uint(64 - bits.TrailingZeros(uint(size)))
	if cap(x.heads) >= size {
		x.heads = x.heads[:size]
		clear(x.heads)
	} else {
		x.heads = make([]link, size)
	}
	if cap(x.next) >= nblocks {
		x.next = x.next[:nblocks]
	} else {
		x.next = make([]link, nblocks)
	}
	var prev uint64
	for k := 0; k < nblocks; k++ {
		pos := k * deltaBlock
		h := fingerprint(x.base[pos:])
		// Runs of identical blocks (zero padding, repeated lines) would
		// fill the chains with useless candidates: keep the first of a
		// run, from which a forward match covers the rest.
		if k > 0 && h == prev && string(x.base[pos:pos+deltaBlock]) == string(x.base[pos-deltaBlock:pos]) {
			x.next[k] = link{}
			continue
		}
		prev = h
		b := h >> x.shift
		x.next[k] = x.heads[b]
		x.heads[b] = link{tag: tagOf(h), blk: int32(k + 1)}
	}
}

// Size returns the memory held by the index tables, not counting the
// base itself.
func (x *DeltaIndex) Size() int { return 8 * (cap(x.heads) + cap(x.next)) }

// Base returns the base the index was built over.
func (x *DeltaIndex) Base() []byte { return x.base }

// ComputeDelta appends to dst a delta that turns base into target and
// returns it with true, or returns dst unchanged with false when the delta
// data would exceed maxDelta bytes. The result applies with
// pack.ApplyDelta. To compare one base against several targets, build a
// DeltaIndex once and call its Delta method instead.
func ComputeDelta(dst, base, target []byte, maxDelta int) ([]byte, bool) {
	var x DeltaIndex
	x.Reset(base)
	if x.base == nil && len(base) > 0 {
		return dst, false
	}
	return x.Delta(dst, target, maxDelta)
}

// Delta is ComputeDelta against the indexed base. It allocates only to
// grow dst; pass a buffer with room for maxDelta bytes to avoid that.
func (x *DeltaIndex) Delta(dst, target []byte, maxDelta int) ([]byte, bool) {
	start := len(dst)
	limit := start + maxDelta
	base := x.base
	dst = pack.AppendDeltaSize(dst, uint64(len(base)))
	dst = pack.AppendDeltaSize(dst, uint64(len(target)))
	if len(dst) > limit {
		return dst[:start], false
	}

	lit := 0 // start of the literal bytes not yet emitted
	i := 0
	if len(x.next) > 0 && len(target) >= deltaBlock {
		h := fingerprint(target)
		for {
			// Literals cost at least one byte each: give up as soon as
			// the pending ones alone overflow the limit.
			if len(dst)+(i-lit) > limit {
				return dst[:start], false
			}
			bestLen, bestPos := 0, 0
			walked := 0
			tag := tagOf(h)
			for c := x.heads[h>>x.shift]; c.blk != 0 && walked < maxChain; c = x.next[c.blk-1] {
				walked++
				if c.tag != tag {
					continue
				}
				pos := int(c.blk-1) * deltaBlock
				n := matchLen(base[pos:], target[i:])
				if n > bestLen {
					bestLen, bestPos = n, pos
					if n >= goodMatch {
						break
					}
				}
			}
			if bestLen >= deltaBlock {
				// Extend backward over literals the base also has.
				back := 0
				for i-back > lit && bestPos-back > 0 && target[i-back-1] == base[bestPos-back-1] {
					back++
				}
				dst = appendInserts(dst, target[lit:i-back])
				dst = appendCopies(dst, bestPos-back, bestLen+back)
				if len(dst) > limit {
					return dst[:start], false
				}
				i += bestLen
				lit = i
				if i+deltaBlock > len(target) {
					break
				}
				h = fingerprint(target[i:])
				continue
			}
			if i+deltaBlock >= len(target) {
				break
			}
			h = roll(h, target[i], target[i+deltaBlock])
			i++
		}
	}
	dst = appendInserts(dst, target[lit:])
	if len(dst) > limit {
		return dst[:start], false
	}
	return dst, true
}

// matchLen returns the length of the common prefix of a and b.
func matchLen(a, b []byte) int {
	n := min(len(a), len(b))
	i := 0
	for ; i+8 <= n; i += 8 {
		if d := binary.LittleEndian.Uint64(a[i:]) ^ binary.LittleEndian.Uint64(b[i:]); d != 0 {
			return i + bits.TrailingZeros64(d)/8
		}
	}
	for ; i < n && a[i] == b[i]; i++ {
	}
	return i
}

// appendInserts appends insert instructions carrying lit.
func appendInserts(dst, lit []byte) []byte {
	for len(lit) > 0 {
		n := min(len(lit), maxInsert)
		dst = append(dst, byte(n))
		dst = append(dst, lit[:n]...)
		lit = lit[n:]
	}
	return dst
}

// appendCopies appends copy instructions for n bytes at off in the base.
func appendCopies(dst []byte, off, n int) []byte {
	for n > 0 {
		size := min(n, maxCopy)
		dst = appendCopy(dst, uint32(off), uint32(size))
		off += size
		n -= size
	}
	return dst
}

// appendCopy appends one copy instruction: an opcode whose low seven
// bits say which offset and size bytes follow, then the non-zero ones.
func appendCopy(dst []byte, off, size uint32) []byte {
	at := len(dst)
	dst = append(dst, 0x80)
	op := byte(0x80)
	for b := 0; b < 4; b++ {
		if c := byte(off >> (8 * b)); c != 0 {
			op |= 1 << b
			dst = append(dst, c)
		}
	}
	for b := 0; b < 3; b++ {
		if c := byte(size >> (8 * b)); c != 0 {
			op |= 0x10 << b
			dst = append(dst, c)
		}
	}
	dst[at] = op
	return dst
}
