package oid

import (
	"bytes"
	"encoding/binary"
	"iter"
	"math/bits"
	"math/rand/v2"
)

// Set is a set of ids of one length, for the seen-sets of object walks,
// which test tens of millions of tree entries against a few hundred
// thousand ids. Ids are hashes already, so a Set indexes an open-addressed
// table (linear probing) by their leading bytes instead of hashing them
// again, and keeps them packed, 20 or 32 bytes a slot, so that a lookup
// costs one cache miss where a map of ID costs two or three.
//
// Someone who pushes objects can choose ids with given leading bits, at a
// cost of 2^k hashes for k bits, and so could pile entries into one run of
// a table indexed by plain leading bytes. A Set mixes two words of each id
// with a seed of its own before taking the slot, so such ids are spread
// like any others.
//
// The zero Set is empty and ready to use; it takes its id length from the
// first Add. A Set is not safe for concurrent use.
type Set struct {
	n     int    // id length of the members; 0 before the first Add
	keys  []byte // slot i is keys[i*n:(i+1)*n]; an all-zero slot is empty
	shift uint   // 64 - log2(slots)
	count int    // members in keys
	limit int    // count that makes the table grow
	null  bool   // the all-zero id is a member (no slot can hold it)
	seed  [2]uint64
}

// minSlots is the size of a Set's first table.
const minSlots = 1 << 8

// NewSet returns a Set of ids of format f sized for about n members.
func NewSet(f Format, n int) *Set {
	s := &Set{n: f.Size()}
	if s.n == 0 {
		panic("oid: NewSet of an invalid format")
	}
	s.alloc(slotsFor(n), s.n)
	return s
}

// slotsFor returns the table size that holds n members below the load
// limit (3/4).
func slotsFor(n int) int {
	slots := minSlots
	for slots/4*3 < n {
		slots <<= 1
	}
	return slots
}

// Len returns the number of members.
func (s *Set) Len() int {
	if s.null {
		return s.count + 1
	}
	return s.count
}

// Has reports whether id is a member.
func (s *Set) Has(id ID) bool { return s.HasBytes(id.b[:id.n]) }

// Add adds id and reports whether it was not a member before.
func (s *Set) Add(id ID) bool { return s.AddBytes(id.b[:id.n]) }

// HasBytes is Has for an id given as its raw bytes, such as a tree
// entry's.
func (s *Set) HasBytes(b []byte) bool {
	if len(b) != s.n || len(b) == 0 {
		return false
	}
	if ZeroBytes(b) {
		return s.null
	}
	_, found := s.find(b)
	return found
}

// AddBytes is Add for an id given as its raw bytes. It panics if their
// length differs from the members'.
func (s *Set) AddBytes(b []byte) bool {
	if s.n == 0 {
		if len(b) == 0 || len(b) > MaxSize {
			panic("oid: Set.Add of an invalid id")
		}
		s.n = len(b)
		s.alloc(minSlots, s.n)
	}
	if len(b) != s.n {
		panic("oid: Set.Add of an id of another length")
	}
	if ZeroBytes(b) {
		added := !s.null
		s.null = true
		return added
	}
	i, found := s.find(b)
	if found {
		return false
	}
	copy(s.keys[i*s.n:], b)
	s.count++
	if s.count > s.limit {
		s.grow()
	}
	return true
}

// All returns the members in no particular order.
func (s *Set) All() iter.Seq[ID] {
	return func(yield func(ID) bool) {
		if s.null && !yield(ID{n: uint8(s.n)}) {
			return
		}
		for off := 0; off < len(s.keys); off += s.n {
			k := s.keys[off : off+s.n]
			if ZeroBytes(k) {
				continue
			}
			id := ID{n: uint8(s.n)}
			copy(id.b[:], k)
			if !yield(id) {
				return
			}
		}
	}
}

// find returns the slot holding b and true, or the empty slot where b
// belongs and false.
func (s *Set) find(b []byte) (int, bool) {
	mask := len(s.keys)/s.n - 1
	i := int(s.hash(b) >> s.shift)
	for {
		k := s.keys[i*s.n : (i+1)*s.n]
		w := binary.LittleEndian.Uint64(k)
		if w == binary.LittleEndian.Uint64(b) && bytes.Equal(k[8:], b[8:]) {
			return i, true
		}
		if w == 0 && ZeroBytes(k) {
			return i, false
		}
		i = (i + 1) & mask
	}
}

// hash mixes the id's first two words with the set's seed.
func (s *Set) hash(b []byte) uint64 { return mix(s.seed, b) }

// mix mixes the first two words of the id b with seed (multiply and
// take the high bits, which depend on every bit of the product's
// inputs): the hash of Set and BoundedSet.
func mix(seed [2]uint64, b []byte) uint64 {
	w0 := binary.LittleEndian.Uint64(b) ^ seed[0]
	w1 := binary.LittleEndian.Uint64(b[8:]) ^ seed[1]
	return w0*0x9e3779b97f4a7c15 ^ w1*0xc2b2ae3d27d4eb4f
}

// newSeed returns a random seed for mix.
func newSeed() [2]uint64 { return [2]uint64{rand.Uint64(), rand.Uint64()} }

// alloc makes an empty table of slots slots (a power of two) for ids of
// length n.
func (s *Set) alloc(slots, n int) {
	if s.seed == [2]uint64{} {
		s.seed = newSeed()
	}
	s.shift = uint(64 - bits.TrailingZeros(uint(slots)))
	s.limit = slots / 4 * 3
	s.keys = make([]byte, slots*n)
}

// grow doubles the table and re-inserts the members.
func (s *Set) grow() {
	old := s.keys
	s.alloc(len(old)/s.n*2, s.n)
	for off := 0; off < len(old); off += s.n {
		k := old[off : off+s.n]
		if ZeroBytes(k) {
			continue
		}
		i, _ := s.find(k)
		copy(s.keys[i*s.n:], k)
	}
}

// ZeroBytes reports whether b, an id's bytes, are all zero: the null
// id, which a table of ids may take for its empty slot.
func ZeroBytes(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
