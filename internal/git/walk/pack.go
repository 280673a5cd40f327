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
