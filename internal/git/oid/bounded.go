package oid

import (
	"bytes"
	"encoding/binary"
	"iter"
	"math/bits"
)

// BoundedSet is a set of ids of a fixed capacity, its table sized once
// with about a quarter more slots than that (not rounded to a power of
// two, as a Set's), so that it takes little more than the ids
// themselves: for sets whose size a caller knows a bound of, such as
// the ids a pack's objects name when the pack must hold them all. It
// mixes the ids as a Set does. It is not safe for concurrent use.
type BoundedSet struct {
	f     Format
	n     int    // id length
	keys  []byte // slot i is keys[i*n:(i+1)*n]; an all-zero slot is empty
	slots uint64
	count int // members
	limit int // members it may hold
	seed  [2]uint64
}

// NewBoundedSet returns a set that holds up to limit ids of format f,
// at a load of four fifths when full.
func NewBoundedSet(f Format, limit int) *BoundedSet {
	slots := limit + limit/4 + 1
	return &BoundedSet{
		f:     f,
		n:     f.Size(),
		keys:  make([]byte, slots*f.Size()),
		slots: uint64(slots),
		limit: limit,
		seed:  newSeed(),
	}
}

// AddBytes adds the id b (raw bytes) and reports whether it is a member
// now: false when the set is full or b is the all-zero id, which no
// slot can hold (and no object is).
func (s *BoundedSet) AddBytes(b []byte) bool {
	if ZeroBytes(b) {
		return false
	}
	i, _ := bits.Mul64(mix(s.seed, b), s.slots)
	for {
		k := s.keys[int(i)*s.n : int(i+1)*s.n]
		if binary.LittleEndian.Uint64(k) == binary.LittleEndian.Uint64(b) && bytes.Equal(k, b) {
			return true
		}
		if ZeroBytes(k) {
			if s.count == s.limit {
				return false
			}
			copy(k, b)
			s.count++
			return true
		}
		if i++; i == s.slots {
			i = 0
		}
	}
}

// All returns the members in no particular order.
func (s *BoundedSet) All() iter.Seq[ID] {
	return func(yield func(ID) bool) {
		for off := 0; off < len(s.keys); off += s.n {
			k := s.keys[off : off+s.n]
			if !ZeroBytes(k) && !yield(MustFromBytes(s.f, k)) {
				return
			}
		}
	}
}

// TableBytes is the size of the set's table.
func (s *BoundedSet) TableBytes() int { return len(s.keys) }
