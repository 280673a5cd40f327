package walk

import (
	"context"
	"errors"
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

// ErrNotInPack is wrapped by the error of BuildBitmaps when a tip
// reaches an object the pack does not hold: the pack cannot have
// bitmaps then.
var ErrNotInPack = errors.New("walk: reachable object not in the pack")

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
	return w.BuildBitmapsKnown(ctx, tips, pack, nil, nil)
}

// Reused are the stored bitmaps of an earlier pack's index (the pack
// that a full repack replaces), moved to the positions of a new pack,
// for BuildBitmapsKnown to take instead of walking, as C Git's bitmap
// writer reuses the bitmaps of the pack it replaces.
type Reused struct {
	old *bitmap.Index
	to  []int32 // new position of each old position; -1: not in the new pack
	// runs are the stretches of old positions that keep their order in
	// the new pack (from+k goes to to+k), and lost the old positions
	// not in the new pack, when there are few enough runs for Bitmap to
	// move a bitmap a run at a time: a repack of the same objects writes
	// them in nearly the same order.
	runs []posRun
	lost bitmap.Bitmap
}

// posRun is a stretch of n old positions from from that are at to
// onwards in the new pack.
type posRun struct{ from, to, n int }

// maxRunsPer is the fewest positions per run on average for which
// Reused moves bitmaps a run at a time rather than a bit at a time.
const maxRunsPer = 256

// NewReused maps the positions of old, the index of an earlier pack, to
// those of pack: one lookup per object of the earlier pack, 4 bytes
// each. old must stay open while the result is used.
func NewReused(old *bitmap.Index, pack bitmap.IndexLookup) (*Reused, error) {
	u := &Reused{old: old, to: make([]int32, old.Count())}
	for pos := range u.to {
		id, err := old.IDAtPackPos(pos)
		if err != nil {
			return nil, fmt.Errorf("walk: reuse bitmaps: %w", err)
		}
		u.to[pos] = -1
		if np, ok := pack.PackPos(id); ok {
			u.to[pos] = int32(np)
		}
	}
	u.findRuns()
	return u, nil
}

// findRuns sets u.runs and u.lost from u.to, or leaves them empty when
// there are too many runs for them to pay.
func (u *Reused) findRuns() {
	var runs []posRun
	lost := bitmap.New(len(u.to))
	for pos := 0; pos < len(u.to); pos++ {
		np := int(u.to[pos])
		switch {
		case np < 0:
			lost.Set(pos)
		case len(runs) > 0 && runs[len(runs)-1].from+runs[len(runs)-1].n == pos && runs[len(runs)-1].to+runs[len(runs)-1].n == np:
			runs[len(runs)-1].n++
		default:
			if len(runs) >= len(u.to)/maxRunsPer+1 {
				return // in another order: a bit at a time
			}
			runs = append(runs, posRun{from: pos, to: np, n: 1})
		}
	}
	u.runs, u.lost = runs, lost
}

// Has reports whether the earlier index stores a bitmap of commit.
func (u *Reused) Has(commit oid.ID) bool { return u != nil && u.old.Has(commit) }

// Bitmap returns commit's stored bitmap in the new pack's positions, a
// Bitmap of the caller's, or false if none is stored or an object it
// covers is not in the new pack.
func (u *Reused) Bitmap(commit oid.ID) (bitmap.Bitmap, bool) {
	if u == nil {
		return bitmap.Bitmap{}, false
	}
	b, ok := u.old.Bitmap(commit)
	if !ok {
		return bitmap.Bitmap{}, false
	}
	return u.move(b)
}

// move returns b, a bitmap in the earlier pack's positions, in the new
// pack's, or false if an object it covers is not in the new pack.
func (u *Reused) move(b bitmap.Bitmap) (bitmap.Bitmap, bool) {
	out := bitmap.New(len(u.to))
	if u.runs != nil {
		if b.Len() > len(u.to) || b.Intersects(u.lost) {
			return bitmap.Bitmap{}, false
		}
		for _, r := range u.runs {
			out.OrRange(b, r.from, r.n, r.to)
		}
		return out, true
	}
	ok := true
	b.ForEach(func(pos int) bool {
		if pos >= len(u.to) || u.to[pos] < 0 {
			ok = false
			return false
		}
		out.Set(int(u.to[pos]))
		return true
	})
	return out, ok
}

// Known is what the walk that chose a pack's objects found of them,
// for BuildBitmapsKnown.
type Known struct {
	// Types and NameHashes are the types and name-hashes of the pack's
	// objects by pack position, as in Bitmaps.
	Types      [4]bitmap.Bitmap
	NameHashes []uint32
	// Commits, if not nil, lists every commit reachable from the tips
	// (others may be among them), newest first as Commits lists them:
	// the commits to build bitmaps of are chosen from it without a
	// walk.
	Commits []oid.ID
	// FillHashes says NameHashes holds only some name-hashes (those an
	// earlier bitmap had): the walks of the bitmaps built, not reused,
	// set those of the objects they reach that are 0.
	FillHashes bool
}

// BuildBitmapsKnown is BuildBitmaps for a caller that has the types and
// name-hashes of the pack's objects already, from the walk that chose
// them (a full repack): those of known are taken as they are (and
// returned in the result), which saves a walk of every tree, and
// known.Commits, if set, a walk of the commits. With known nil it walks
// for them, as BuildBitmaps does.
//
// With reused, the commits it has bitmaps of are selected wherever the
// walk meets them (the spacing counts from each), and their bitmaps are
// taken from it rather than walked for: repacking a repository whose
// history has not changed below its tips then walks only the trees of
// the commits since its last repack.
func (w *Walker) BuildBitmapsKnown(ctx context.Context, tips []oid.ID, pack bitmap.IndexLookup, known *Known, reused *Reused) (*Bitmaps, error) {
	count := pack.Count()
	out := &Bitmaps{}
	if known != nil {
		if len(known.NameHashes) != count {
			return nil, fmt.Errorf("walk: %d name-hashes for a pack of %d objects", len(known.NameHashes), count)
		}
		out.Types, out.NameHashes = known.Types, known.NameHashes
	} else {
		out.NameHashes = make([]uint32, count)
		for t := range out.Types {
			out.Types[t] = bitmap.New(count)
		}
		// One plain walk of everything gives the types and name-hashes.
		none := func(oid.ID) (bitmap.Bitmap, bool) { return bitmap.Bitmap{}, false }
		all := w.newReach(ctx, pack, none)
		all.types = &out.Types
		all.hashes = out.NameHashes
		if err := all.reachFrom(tips); err != nil {
			return nil, err
		}
		if len(all.outside) > 0 {
			return nil, fmt.Errorf("%w: %v %v", ErrNotInPack, all.outside[0].t, all.outside[0].id)
		}
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
	i, since := 0, selectRare // the newest commit is selected
	choose := func(id oid.ID) error {
		every := selectRare
		switch {
		case i < selectDenseRegion:
			every = selectDense
		case i < selectSparseRegion:
			every = selectSparse
		}
		if since >= every || reused.Has(id) {
			selected[id] = true
			since = 0
		}
		if selected[id] {
			order = append(order, id)
		}
		i++
		since++
		return nil
	}
	if known != nil && known.Commits != nil {
		for _, id := range known.Commits {
			choose(id)
		}
	} else if err := w.Commits(ctx, tips, nil, choose); err != nil {
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
		if b, ok := reused.Bitmap(c); ok {
			built[c] = b
			out.Entries = append(out.Entries, bitmap.Entry{Commit: c, Bitmap: b})
			continue
		}
		r := w.newReach(ctx, pack, stored)
		if known != nil && known.FillHashes {
			r.hashes, r.fill = out.NameHashes, true
		}
		r.commits = append(r.commits, c)
		if err := r.run(); err != nil {
			return nil, err
		}
		if len(r.outside) > 0 {
			return nil, fmt.Errorf("%w: %v %v", ErrNotInPack, r.outside[0].t, r.outside[0].id)
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
