package walk

import (
	"context"
	"fmt"

	"gotd/internal/git/bitmap"
	"gotd/internal/git/object"
	"gotd/internal/git/oid"
)

// Bitmaps is what BuildBitmaps computes: the inputs of bitmap.Write.
type Bitmaps struct {
	// Types are the pack positions of the commits, trees, blobs and tags
	// reachable from the tips. Objects of the pack no tip reaches are in
	// none of them.
	Types [4]bitmap.Bitmap
	// Entries are the selected commits with their bitmaps, oldest first.
	Entries []bitmap.Entry
	// NameHashes holds the name-hash of each object by pack position (0
	// for objects without a path: commits, tags, and what tags name).
	NameHashes []uint32
}

// Commit selection: the newest commits get the densest bitmaps, as C
// Git selects them (pack-bitmap-write.c, next_commit_index): with a
// bitmap every selectDense commits among the selectDenseRegion newest,
// every selectSparse up to selectSparseRegion, every selectRare beyond.
const (
	selectDense        = 10
	selectDenseRegion  = 100
	selectSparse       = 100
	selectSparseRegion = 20000
	selectRare         = 1000
)

// BuildBitmaps computes reachability bitmaps over pack, which must hold
// every object reachable from tips (typically the refs of a repository
// just repacked with `gotadmin pack -a`). Every commit a tip peels to is
// selected, and older commits at the spacing of C Git, newest densest.
// Each selected commit's bitmap is built walking only down to the
// selected commits below it, oldest first, so the cost is about one walk
// of the history; the memory is one bit per pack object per selected
// commit.
func (w *Walker) BuildBitmaps(ctx context.Context, tips []oid.ID, pack bitmap.IndexLookup) (*Bitmaps, error) {
	count := pack.Count()
	out := &Bitmaps{NameHashes: make([]uint32, count)}
	for t := range out.Types {
		out.Types[t] = bitmap.New(count)
	}
	none := func(oid.ID) (bitmap.Bitmap, bool) { return bitmap.Bitmap{}, false }

	// One plain walk of everything gives the types and name-hashes.
	all := w.newReach(ctx, pack, none)
	all.types = &out.Types
	all.hashes = out.NameHashes
	for _, id := range tips {
		if err := all.addTip(id); err != nil {
			return nil, err
		}
	}
	if err := all.run(); err != nil {
		return nil, err
	}
	if len(all.outside) > 0 {
		return nil, fmt.Errorf("walk: %v %v is reachable but not in the pack", all.outside[0].t, all.outside[0].id)
	}

	// Select: the commits the tips peel to, then by age.
	selected := make(map[oid.ID]bool)
	var order []oid.ID // newest first
	for _, id := range tips {
		c, err := w.peelToCommit(id)
		if err != nil {
			return nil, err
		}
		if c.Valid() && !selected[c] {
			selected[c] = true
		}
	}
	i := 0
	err := w.Commits(ctx, tips, nil, func(id oid.ID) error {
		every := selectRare
		switch {
		case i < selectDenseRegion:
			every = selectDense
		case i < selectSparseRegion:
			every = selectSparse
		}
		if i%every == 0 {
			selected[id] = true
		}
		if selected[id] {
			order = append(order, id)
		}
		i++
		return nil
	})
	if err != nil {
		return nil, err
	}

	// Build oldest first, each walk stopping at the bitmaps built.
	built := make(map[oid.ID]bitmap.Bitmap, len(order))
	stored := func(id oid.ID) (bitmap.Bitmap, bool) {
		b, ok := built[id]
		return b, ok
	}
	for k := len(order) - 1; k >= 0; k-- {
		c := order[k]
		r := w.newReach(ctx, pack, stored)
		r.commits = append(r.commits, c)
		if err := r.run(); err != nil {
			return nil, err
		}
		built[c] = r.bits
		out.Entries = append(out.Entries, bitmap.Entry{Commit: c, Bitmap: r.bits})
	}
	return out, nil
}

// peelToCommit follows tags from id; it returns the zero ID if they end
// at a tree or blob.
func (w *Walker) peelToCommit(id oid.ID) (oid.ID, error) {
	for depth := 0; depth <= maxTagDepth; depth++ {
		if w.Graph != nil {
			if _, ok := w.Graph.Lookup(id); ok {
				return id, nil
			}
		}
		t, data, err := w.readTip(id, "object")
		if err != nil {
			return oid.ID{}, err
		}
		switch t {
		case object.Commit:
			return id, nil
		case object.Tag:
			tag, err := object.ParseTag(w.Format, data)
			if err != nil {
				return oid.ID{}, fmt.Errorf("walk: tag %v: %w", id, err)
			}
			id = tag.Object
		default:
			return oid.ID{}, nil
		}
	}
	return oid.ID{}, fmt.Errorf("walk: tag chain at %v longer than %d", id, maxTagDepth)
}
