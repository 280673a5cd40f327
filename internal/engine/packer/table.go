package packer

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"

	"gotd/internal/git/oid"
)

// table maps keys (object ids, or stored locations) to entry numbers.
// It is an open-addressing hash table of int32 slots probed linearly,
// about eight bytes per entry, where a Go map keyed by oid.ID costs
// several times that in memory and time. The hash is keyed with a
// random seed so that objects a client pushed cannot be chosen to
// collide.
type table struct {
	slots []int32 // 1 + entry number; 0 when free
	mask  uint64
	seed  [2]uint64
}

func (t *table) init(n int) {
	size := 16
	for size < 2*n {
		size <<= 1
	}
	t.slots = make([]int32, size)
	t.mask = uint64(size - 1)
	t.seed = [2]uint64{rand.Uint64(), rand.Uint64()}
}

// mix hashes two words under the seed, as wyhash's mixing step does.
func (t *table) mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a^t.seed[0], b^t.seed[1])
	return hi ^ lo
}

func (t *table) hashID(id *oid.ID) uint64 {
	b := id.Raw()
	return t.mix(binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[8:]))
}

// findID returns the entry whose id is id, or -1.
func (t *table) findID(ents []entry, id *oid.ID) int32 {
	for i := t.hashID(id) & t.mask; ; i = (i + 1) & t.mask {
		s := t.slots[i]
		if s == 0 {
			return -1
		}
		if ents[s-1].id == *id {
			return s - 1
		}
	}
}

// insertID adds entry e, keyed by its id, unless an entry with that id
// is present; it returns the entry that holds the id.
func (t *table) insertID(ents []entry, e int32) int32 {
	id := &ents[e].id
	for i := t.hashID(id) & t.mask; ; i = (i + 1) & t.mask {
		s := t.slots[i]
		if s == 0 {
			t.slots[i] = e + 1
			return e
		}
		if ents[s-1].id == *id {
			return s - 1
		}
	}
}

// findAt returns the entry stored in pack p at offset, or -1.
func (t *table) findAt(ents []entry, p int32, offset uint64) int32 {
	for i := t.mix(uint64(p), offset) & t.mask; ; i = (i + 1) & t.mask {
		s := t.slots[i]
		if s == 0 {
			return -1
		}
		if e := &ents[s-1]; e.offset == offset && e.pack == p {
			return s - 1
		}
	}
}

// insertAt adds entry e keyed by its stored location.
func (t *table) insertAt(ents []entry, e int32) {
	for i := t.mix(uint64(ents[e].pack), ents[e].offset) & t.mask; ; i = (i + 1) & t.mask {
		if t.slots[i] == 0 {
			t.slots[i] = e + 1
			return
		}
	}
}
