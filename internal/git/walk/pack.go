package walk

import (
	"fmt"

	"gotd/internal/git/bitmap"
	"gotd/internal/git/oid"
	"gotd/internal/git/pack"
)

// PackLookup describes the open pack p to the bitmap package, for
// bitmap.Open and bitmap.Write. p must stay open while the result is
// used.
func PackLookup(p *pack.Pack) bitmap.IndexLookup { return packLookup{p} }

type packLookup struct{ p *pack.Pack }

func (l packLookup) Count() int       { return l.p.Count() }
func (l packLookup) Checksum() []byte { return l.p.Checksum() }

func (l packLookup) IDAtIndex(i int) (oid.ID, error) {
	if i < 0 || i >= l.p.Count() {
		return oid.ID{}, fmt.Errorf("walk: index position %d out of range", i)
	}
	return l.p.Index().ID(i), nil
}

func (l packLookup) PackPos(id oid.ID) (int, bool) { return l.p.PackPos(id) }

func (l packLookup) IDAtPackPos(pos int) (oid.ID, error) { return l.p.IDAtPackPos(pos) }

// IndexAtPackPos uses the pack's reverse index when the pack exposes it,
// else finds the id in the index (a binary search).
func (l packLookup) IndexAtPackPos(pos int) (int, error) {
	if r, ok := any(l.p).(interface{ IndexAtPackPos(int) (int, error) }); ok {
		return r.IndexAtPackPos(pos)
	}
	id, err := l.p.IDAtPackPos(pos)
	if err != nil {
		return 0, err
	}
	i, ok := l.p.Index().Find(id)
	if !ok {
		return 0, fmt.Errorf("walk: %v at pack position %d is not in the index", id, pos)
	}
	return i, nil
}

// MidxLookup describes the multi-pack-index m to the bitmap package,
// for bitmap.Open and bitmap.Write of its bitmap
// (multi-pack-index-<checksum>.bitmap): index positions are m's sorted
// positions, pack positions those of the pseudo-pack order its reverse
// index (RIDX chunk) gives: the preferred pack's objects first, then
// each pack's by pack number, each by offset. It fails without a
// reverse index. Nothing is read ahead: a pack position is found by a
// binary search of the reverse index, as C Git finds it. m must stay
// open while the result is used.
func MidxLookup(m *pack.MultiPackIndex) (bitmap.IndexLookup, error) {
	if !m.HasReverse() {
		return nil, fmt.Errorf("walk: multi-pack-index has no reverse index")
	}
	l := midxLookup{m: m}
	if m.Count() > 0 {
		// The preferred pack is the one the first object is taken from.
		i, err := m.IndexAtPseudoPos(0)
		if err != nil {
			return nil, fmt.Errorf("walk: %w", err)
		}
		l.preferred, _ = m.Object(i)
	}
	return l, nil
}

type midxLookup struct {
	m         *pack.MultiPackIndex
	preferred int
}

func (l midxLookup) Count() int       { return l.m.Count() }
func (l midxLookup) Checksum() []byte { return l.m.Checksum() }

func (l midxLookup) IDAtIndex(i int) (oid.ID, error) {
	if i < 0 || i >= l.m.Count() {
		return oid.ID{}, fmt.Errorf("walk: index position %d out of range", i)
	}
	return l.m.ID(i), nil
}

// key orders the object at sorted position i as the pseudo-pack order
// does.
func (l midxLookup) key(i int) (uint64, uint64) {
	p, off := l.m.Object(i)
	k := uint64(p) + 1
	if p == l.preferred {
		k = 0
	}
	return k, off
}

func (l midxLookup) PackPos(id oid.ID) (int, bool) {
	i, ok := l.m.FindIndex(id)
	if !ok {
		return 0, false
	}
	kp, ko := l.key(i)
	lo, hi := 0, l.m.Count()
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		j, err := l.m.IndexAtPseudoPos(mid)
		if err != nil {
			return 0, false
		}
		if j == i {
			return mid, true
		}
		jp, jo := l.key(j)
		if jp < kp || jp == kp && jo < ko {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return 0, false // a reverse index out of order
}

func (l midxLookup) IndexAtPackPos(pos int) (int, error) { return l.m.IndexAtPseudoPos(pos) }
