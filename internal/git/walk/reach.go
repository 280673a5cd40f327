package walk

import (
	"context"
	"errors"
	"fmt"

	"gotd/internal/git/bitmap"
	"gotd/internal/git/commitgraph"
	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/pack"
)

// links reads what a walk needs of commit id: its tree, its parents
// (appended to ps[:0]), its committer time and, with a commit-graph, its
// generation (0 when unknown). gc is scratch space for graph reads.
func (w *Walker) links(id oid.ID, ps []oid.ID, gc *commitgraph.Commit) (tree oid.ID, parents []oid.ID, gen uint64, when int64, err error) {
	ps = ps[:0]
	if g := w.Graph; g != nil {
		if pos, ok := g.Lookup(id); ok {
			if err := g.ReadCommit(pos, gc); err != nil {
				return tree, ps, 0, 0, fmt.Errorf("walk: commit %v: %w", id, err)
			}
			for _, p := range gc.Parents {
				pid, err := g.ID(p)
				if err != nil {
					return tree, ps, 0, 0, fmt.Errorf("walk: commit %v: %w", id, err)
				}
				ps = append(ps, pid)
			}
			return gc.Tree, ps, gc.Generation, gc.Time, nil
		}
	}
	var data []byte
	whole := false
	if pr, ok := w.Store.(prefixReader); ok {
		// The headers are at the start: most commits need no more.
		var t object.Type
		var err error
		t, data, whole, err = pr.ReadObjectPrefix(id, nil, commitPrefix)
		switch {
		case errors.Is(err, object.ErrNotFound):
			return tree, ps, 0, 0, notFound("commit", id)
		case err != nil:
			return tree, ps, 0, 0, fmt.Errorf("walk: read commit %v: %w", id, err)
		case t != object.Commit:
			return tree, ps, 0, 0, fmt.Errorf("walk: commit %v is a %v", id, t)
		}
		if !whole {
			if tree, ps, when, ok := object.CommitLinksPrefix(w.Format, data, ps); ok {
				return tree, ps, 0, when, nil
			}
		}
	}
	if !whole {
		var err error
		if _, data, err = w.read(id, object.Commit, "commit"); err != nil {
			return tree, ps, 0, 0, err
		}
	}
	tree, ps, when, err = object.CommitLinks(w.Format, data, ps)
	if err != nil {
		return tree, ps, 0, 0, fmt.Errorf("walk: commit %v: %w", id, err)
	}
	return tree, ps, 0, when, nil
}

// IsAncestor reports whether commit a is reachable from commit b (a == b
// counts). A stored bitmap of b answers at once. With a commit-graph
// covering a, commits whose generation is not above a's are not
// expanded, so the walk stays near b; without one it may visit all of
// b's history.
func (w *Walker) IsAncestor(ctx context.Context, a, b oid.ID) (bool, error) {
	if a == b {
		return true, nil
	}
	// A stored bitmap of b answers directly when a is in the pack.
	if x := w.Bitmap; x != nil {
		if pos, ok := x.Lookup().PackPos(a); ok {
			if bm, ok := x.Bitmap(b); ok {
				return bm.Has(pos), nil
			}
		}
	}
	var genA uint64
	var gc commitgraph.Commit
	if w.Graph != nil {
		if pos, ok := w.Graph.Lookup(a); ok {
			_, g, err := w.Graph.TimeGeneration(pos)
			if err != nil {
				return false, fmt.Errorf("walk: commit %v: %w", a, err)
			}
			genA = g
		}
	}
	seen := map[oid.ID]struct{}{b: {}}
	queue := []oid.ID{b}
	var ps []oid.ID
	for steps := 0; len(queue) > 0; steps++ {
		if steps%checkEvery == checkEvery-1 {
			if err := ctx.Err(); err != nil {
				return false, err
			}
		}
		c := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		_, parents, gen, _, err := w.links(c, ps, &gc)
		ps = parents
		if err != nil {
			return false, err
		}
		// Generations grow from parent to child: a commit whose
		// generation is not above a's cannot reach a.
		if genA != 0 && gen != 0 && gen <= genA {
			continue
		}
		for _, p := range ps {
			if p == a {
				return true, nil
			}
			if _, ok := seen[p]; !ok {
				seen[p] = struct{}{}
				queue = append(queue, p)
			}
		}
	}
	return false, nil
}

// reach computes, as a bitset over the pack positions of a bitmapped
// pack plus a set of ids for objects outside it, everything reachable
// from some tips: stored bitmaps cover whole histories, and the walk
// reads only commits and trees they do not cover.
type reach struct {
	w      *Walker
	ctx    context.Context
	lk     bitmap.IndexLookup
	stored func(id oid.ID) (bitmap.Bitmap, bool)
	typeAt func(pos int) object.Type // nil: types are not tracked
	have   bool                      // missing objects are ignored
	stop   *reach                    // objects in stop are already covered

	bits    bitmap.Bitmap
	extra   map[oid.ID]struct{}
	outside []outsideObject   // objects not in the pack, in walk order
	types   *[4]bitmap.Bitmap // if not nil, filled by type
	hashes  []uint32          // if not nil, name-hashes by pack position
	fill    bool              // set only the name-hashes that are 0

	commits []oid.ID
	trees   []oid.ID
	ps      []oid.ID
	gc      commitgraph.Commit
	stack   []frame
	path    []byte
	steps   int

	// known holds tree entries found covered: the trees of nearby
	// commits share most entries, and a set this small answers from the
	// processor's cache where a pack lookup searches the whole index.
	known *oid.Set
}

type outsideObject struct {
	id   oid.ID
	t    object.Type
	hash uint32
}

func (w *Walker) newReach(ctx context.Context, lk bitmap.IndexLookup, stored func(oid.ID) (bitmap.Bitmap, bool)) *reach {
	return &reach{
		w: w, ctx: ctx, lk: lk, stored: stored,
		bits:  bitmap.New(lk.Count()),
		extra: make(map[oid.ID]struct{}),
		path:  make([]byte, 0, 256),
		known: oid.NewSet(w.Format, 0),
	}
}

// marked reports whether id is already covered.
func (r *reach) marked(id oid.ID) bool { return r.markedAt(id, r.pos(id)) }

// pos returns id's position in the bitmapped pack, or -1 when it is not
// there. The tree walk looks each entry up once and passes the position
// on, as the lookup is most of its cost.
func (r *reach) pos(id oid.ID) int {
	if pos, ok := r.lk.PackPos(id); ok {
		return pos
	}
	return -1
}

// markedAt is marked for id at pack position pos.
func (r *reach) markedAt(id oid.ID, pos int) bool {
	if pos >= 0 {
		return r.bits.Has(pos) || (r.stop != nil && r.stop.bits.Has(pos))
	}
	if _, ok := r.extra[id]; ok {
		return true
	}
	if r.stop != nil {
		_, ok := r.stop.extra[id]
		return ok
	}
	return false
}

// mark covers id, of type t found under path.
func (r *reach) mark(id oid.ID, t object.Type, path []byte) { r.markAt(id, r.pos(id), t, path) }

// markAt is mark for id at pack position pos.
func (r *reach) markAt(id oid.ID, pos int, t object.Type, path []byte) {
	if pos >= 0 {
		r.bits.Set(pos)
		if r.types != nil {
			r.types[t-object.Commit].Set(pos)
		}
		if r.hashes != nil && path != nil && (!r.fill || r.hashes[pos] == 0) {
			r.hashes[pos] = pack.NameHash(path)
		}
		return
	}
	r.extra[id] = struct{}{}
	var h uint32
	if path != nil {
		h = pack.NameHash(path)
	}
	r.outside = append(r.outside, outsideObject{id, t, h})
}

// addTip peels tags down to a commit, tree or blob, covering each tag.
func (r *reach) addTip(id oid.ID) error {
	for depth := 0; depth <= maxTagDepth; depth++ {
		if r.marked(id) {
			return nil
		}
		t, data, err := r.w.readTip(id, "object")
		if err != nil {
			if r.have && errors.Is(err, object.ErrNotFound) {
				return nil
			}
			return err
		}
		switch t {
		case object.Commit:
			r.commits = append(r.commits, id)
			return nil
		case object.Tree:
			r.trees = append(r.trees, id)
			return nil
		case object.Blob:
			r.mark(id, object.Blob, nil)
			return nil
		case object.Tag:
			tag, err := object.ParseTag(r.w.Format, data)
			if err != nil {
				return fmt.Errorf("walk: tag %v: %w", id, err)
			}
			r.mark(id, object.Tag, nil)
			id = tag.Object
		default:
			return fmt.Errorf("walk: %v has type %v", id, t)
		}
	}
	return fmt.Errorf("walk: tag chain at %v longer than %d", id, maxTagDepth)
}

// reachFrom covers everything reachable from tips: addTip for each,
// then run.
func (r *reach) reachFrom(tips []oid.ID) error {
	for _, id := range tips {
		if err := r.addTip(id); err != nil {
			return err
		}
	}
	return r.run()
}

// run covers everything reachable from the queued commits and trees.
func (r *reach) run() error {
	// The stored bitmaps of the tips first: they usually cover the
	// other tips (old tags below a branch), which then need no walk.
	kept := r.commits[:0]
	for _, c := range r.commits {
		if b, ok := r.stored(c); ok {
			r.cover(b)
		} else {
			kept = append(kept, c)
		}
	}
	r.commits = kept
	for len(r.commits) > 0 {
		c := r.commits[len(r.commits)-1]
		r.commits = r.commits[:len(r.commits)-1]
		if r.marked(c) {
			continue
		}
		if err := r.tick(); err != nil {
			return err
		}
		if b, ok := r.stored(c); ok {
			r.cover(b)
			continue
		}
		tree, ps, _, _, err := r.w.links(c, r.ps, &r.gc)
		r.ps = ps
		if err != nil {
			if r.have && errors.Is(err, object.ErrNotFound) {
				continue
			}
			return err
		}
		r.mark(c, object.Commit, nil)
		r.trees = append(r.trees, tree)
		r.commits = append(r.commits, ps...)
	}
	for _, t := range r.trees {
		if err := r.tree(t); err != nil {
			return err
		}
	}
	r.trees = r.trees[:0]
	return nil
}

// cover adds the objects of a stored bitmap.
func (r *reach) cover(b bitmap.Bitmap) {
	r.bits.Or(b)
	if r.types != nil {
		// Objects a stored bitmap covers have their types in the
		// index's type bitmaps.
		for t := range r.types {
			tb := r.typeBitmap(object.Commit + object.Type(t))
			x := b.Clone()
			x.And(tb)
			r.types[t].Or(x)
		}
	}
}

func (r *reach) typeBitmap(t object.Type) bitmap.Bitmap {
	if r.w.Bitmap != nil {
		return r.w.Bitmap.TypeBitmap(t)
	}
	return bitmap.Bitmap{}
}

func (r *reach) tick() error {
	r.steps++
	if r.steps%checkEvery == 0 {
		return r.ctx.Err()
	}
	return nil
}

// tree covers root and everything below it not yet covered.
func (r *reach) tree(root oid.ID) error {
	if r.marked(root) {
		return nil
	}
	r.path = r.path[:0]
	r.mark(root, object.Tree, r.path)
	if err := r.push(root, 0); err != nil {
		return err
	}
	for len(r.stack) > 0 {
		top := &r.stack[len(r.stack)-1]
		mode, name, raw, ok := top.it.NextRaw()
		if !ok {
			if err := top.it.Err(); err != nil {
				return fmt.Errorf("walk: tree %v: %w", top.id, err)
			}
			r.stack = r.stack[:len(r.stack)-1]
			continue
		}
		et := object.ModeType(mode)
		if et == object.Commit || r.known.HasBytes(raw) {
			continue
		}
		id := oid.MustFromBytes(r.w.Format, raw)
		pos := r.pos(id)
		if r.markedAt(id, pos) {
			r.known.Add(id)
			continue
		}
		r.path = r.path[:top.plen]
		if top.plen > 0 {
			r.path = append(r.path, '/')
		}
		r.path = append(r.path, name...)
		if et == object.Blob && !r.have && pos < 0 {
			if err := r.checkBlob(id); err != nil {
				return err
			}
		}
		r.markAt(id, pos, et, r.path)
		r.known.Add(id)
		if et == object.Tree {
			if err := r.push(id, len(r.path)); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkBlob fails if blob id, which the walk does not read and which is
// not in the bitmapped pack, is not in the store either (when it can
// tell).
func (r *reach) checkBlob(id oid.ID) error {
	if h, ok := r.w.Store.(hasObjecter); ok && !h.HasObject(id) {
		return notFound("blob", id)
	}
	return nil
}

func (r *reach) push(id oid.ID, plen int) error {
	if err := r.tick(); err != nil {
		return err
	}
	_, data, err := r.w.read(id, object.Tree, "tree")
	if err != nil {
		if r.have && errors.Is(err, object.ErrNotFound) {
			return nil
		}
		return err
	}
	r.stack = append(r.stack, frame{id: id, it: object.NewTreeIter(r.w.Format, data), plen: plen})
	return nil
}

// bitmapObjects is Objects with the walker's bitmap index: the haves'
// closure, then the wants' closure stopping at it, then the difference
// in pack order followed by the objects outside the pack.
func (w *Walker) bitmapObjects(ctx context.Context, wants, haves []oid.ID, wantHash bool, fn func(id oid.ID, t object.Type, nameHash uint32) error) error {
	x := w.Bitmap
	lk := x.Lookup()
	hv := w.newReach(ctx, lk, x.Bitmap)
	hv.have = true
	if err := hv.reachFrom(haves); err != nil {
		return err
	}
	wt := w.newReach(ctx, lk, x.Bitmap)
	wt.stop = hv
	if err := wt.reachFrom(wants); err != nil {
		return err
	}
	wt.bits.AndNot(hv.bits)
	return w.listCovered(wt, wantHash, fn)
}

// ObjectsAfter is ObjectsFor for wants without haves, shallow boundary
// or filter, listed with the walker's bitmap, for a caller that sends
// the objects at pack positions below n otherwise (the pack that leads
// the bitmap's order, copied as stored): when those are all among the
// objects wanted, fn is called for the others only and ObjectsAfter
// reports true; otherwise fn is called for every object, as ObjectsFor
// calls it, and it reports false. Without a bitmap it fails.
func (w *Walker) ObjectsAfter(ctx context.Context, wants []oid.ID, n int, fn func(id oid.ID, t object.Type, nameHash uint32) error) (bool, error) {
	x := w.Bitmap
	if x == nil {
		return false, errors.New("walk: ObjectsAfter without a bitmap")
	}
	wt := w.newReach(ctx, x.Lookup(), x.Bitmap)
	if err := wt.reachFrom(wants); err != nil {
		return false, err
	}
	skip := n > 0 && n <= x.Lookup().Count() && wt.bits.HasFirst(n)
	if skip {
		wt.bits.ClearFirst(n)
	}
	return skip, w.listCovered(wt, true, fn)
}

// listCovered calls fn for the objects r covers: those of its bitmap in
// pack order, then those outside the bitmapped objects.
func (w *Walker) listCovered(r *reach, wantHash bool, fn func(id oid.ID, t object.Type, nameHash uint32) error) error {
	x := w.Bitmap
	wantHash = wantHash && x.HasNameHashes()
	var ferr error
	r.bits.ForEach(func(pos int) bool {
		id, err := x.IDAtPackPos(pos)
		if err != nil {
			ferr = fmt.Errorf("walk: %w", err)
			return false
		}
		var h uint32
		if wantHash {
			h, _ = x.NameHashAtPackPos(pos)
		}
		t := x.TypeAt(pos)
		if t == object.Invalid {
			ferr = fmt.Errorf("walk: bitmap gives no type for %v", id)
			return false
		}
		if err := fn(id, t, h); err != nil {
			ferr = err
			return false
		}
		return true
	})
	if ferr != nil {
		return ferr
	}
	for _, o := range r.outside {
		if err := fn(o.id, o.t, o.hash); err != nil {
			return err
		}
	}
	return nil
}

// WholePack reports whether the objects reachable from wants are
// exactly the objects of the walker's bitmapped pack, so that the pack
// as stored is the whole answer to a fetch of wants with no haves. It
// is false without a bitmap.
func (w *Walker) WholePack(ctx context.Context, wants []oid.ID) (bool, error) {
	x := w.Bitmap
	if x == nil {
		return false, nil
	}
	r := w.newReach(ctx, x.Lookup(), x.Bitmap)
	if err := r.reachFrom(wants); err != nil {
		return false, err
	}
	return len(r.outside) == 0 && r.bits.Count() == x.Lookup().Count(), nil
}
