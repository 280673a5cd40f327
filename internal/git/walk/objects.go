package walk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/maphash"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
)

// plainObjects is Objects without bitmaps: the commit walk of limit,
// then the trees of the uninteresting commits it reached are marked,
// then the wanted objects listed, as spec's filter allows.
func (w *Walker) plainObjects(ctx context.Context, spec Spec, fn func(id oid.ID, t object.Type, path []byte) error) error {
	return w.plainObjectsWithin(ctx, spec, 0, fn)
}

// plainObjectsWithin is plainObjects that gives up with ErrFar,
// before it calls fn, if the commit walk reads more than budget commits
// or the marking of what the haves reach more than budget trees (0: no
// limit).
func (w *Walker) plainObjectsWithin(ctx context.Context, spec Spec, budget int, fn func(id oid.ID, t object.Type, path []byte) error) error {
	s, err := w.limitedWithin(ctx, spec, budget)
	if err != nil {
		return err
	}
	o := &treeWalk{w: w, ctx: ctx, skip: oid.NewSet(w.Format, 0), path: make([]byte, 0, 256), budget: budget}
	o.has, _ = w.Store.(hasObjecter)
	o.into, _ = w.Store.(readIntoer)

	// Everything reachable from the trees of the edges (the
	// uninteresting parents of the commits listed, as C Git's
	// mark_edges_uninteresting) and from trees and blobs haves name is
	// not sent. The trees of other uninteresting commits are not read
	// (a push checked against a thousand tags would otherwise walk the
	// trees of a thousand releases to check one commit), except for a
	// shallow fetch, where, as C Git's pack-objects --shallow does
	// (--objects-edge-aggressive), those of all uninteresting commits
	// met are, since the client may lack the edges' history.
	if len(spec.Shallow) > 0 || len(spec.ClientShallow) > 0 {
		for i := range s.nodes {
			nd := &s.nodes[i]
			if nd.flags&(uninteresting|parsed) == uninteresting|parsed && nd.flags&missing == 0 {
				if err := o.walk(nd.tree, object.Tree, nil); err != nil {
					return err
				}
			}
		}
	} else if err := s.edgeTrees(o); err != nil {
		return err
	}
	for _, tip := range s.haveTrees {
		if err := o.walk(tip.id, tip.t, nil); err != nil {
			return err
		}
	}
	o.budget = 0 // the listing is as long as the answer
	if spec.Edges != nil {
		for id := range o.skip.All() {
			spec.Edges(id)
		}
	}
	f := spec.Filter
	o.filter = f
	if f.Kind != FilterNone {
		o.omitted = oid.NewSet(w.Format, 0)
		o.stat, _ = w.Store.(statObjecter)
		o.depthSeen = make(map[oid.ID]int)
		o.expanded = oid.NewSet(w.Format, 0)
	}
	// As in C Git's list-objects with a filter, the objects the wants
	// name, directly or through tags (the "provided" objects), are
	// listed whatever the filter: the commits among them here, the
	// tags because all of s.tags are such, the trees and blobs below.
	var given map[oid.ID]bool
	if f.Kind == FilterObjectType {
		given = make(map[oid.ID]bool, len(spec.Wants))
		for _, id := range spec.Wants {
			given[id] = true
			if c, ok := w.peelCommitOK(id); ok {
				given[c] = true
			}
		}
	}
	commitOK := f.Kind != FilterObjectType || f.Type == object.Commit

	for _, id := range s.tags {
		if s.haveTags[id] || !o.skip.Add(id) {
			continue
		}
		if err := fn(id, object.Tag, nil); err != nil {
			return err
		}
	}
	for _, n := range s.out {
		nd := &s.nodes[n]
		if nd.flags&uninteresting != 0 || !commitOK && !given[nd.id] {
			continue
		}
		if err := fn(nd.id, object.Commit, nil); err != nil {
			return err
		}
	}
	var roots map[oid.ID]bool
	if f.Kind != FilterNone && len(s.tipTrees) > 0 {
		roots = make(map[oid.ID]bool)
	}
	for _, n := range s.out {
		nd := &s.nodes[n]
		if nd.flags&uninteresting != 0 {
			continue
		}
		if roots != nil {
			roots[nd.tree] = true
		}
		if err := o.walkRoot(nd.tree, object.Tree, false, fn); err != nil {
			return err
		}
	}
	for _, tip := range s.tipTrees {
		// A tree a want names that is also the root tree of a commit
		// listed is filtered as that root tree: C Git's commit walk
		// marks it NOT_USER_GIVEN before it lists the wanted trees.
		if err := o.walkRoot(tip.id, tip.t, !roots[tip.id], fn); err != nil {
			return err
		}
	}
	return nil
}

// edgeTrees marks, in o, what the trees of the walk's edges reach
// along the paths where the listed commits' trees differ from theirs,
// as C Git's pack-objects does with pack.useSparse, its default: an
// edge's tree is read only where a listed commit has a different tree
// at the same path; elsewhere the edge's entries are marked, not read.
// An object the client has under another path than the edges' is then
// listed (the pack is a little larger, never short of an object). A
// fetch of one commit reads the trees along the paths it changed, not
// every tree of the edges (a thousand on git.git), and the thin pack's
// bases are the edges' objects at those paths.
func (s *state) edgeTrees(o *treeWalk) error {
	var wants, edges []oid.ID
	for _, n := range s.out {
		nd := &s.nodes[n]
		if nd.flags&uninteresting != 0 || s.wantCut[nd.id] {
			continue // not listed, or its parents are cut off
		}
		wants = append(wants, nd.tree)
		for k := nd.pOff; k < nd.pOff+nd.pN; k++ {
			p := s.arena[k]
			pd := &s.nodes[p]
			if pd.flags&uninteresting == 0 || pd.flags&edge != 0 {
				continue
			}
			pd.flags |= edge
			if err := s.load(p); err != nil {
				return err
			}
			pd = &s.nodes[p]
			if pd.flags&missing != 0 {
				continue
			}
			edges = append(edges, pd.tree)
		}
	}
	if len(edges) == 0 {
		return nil
	}
	return o.sparse(wants, edges)
}

// sparse marks the trees edges (the edges' trees at one path) and their
// entries, and goes down, by name, into the subtrees where one of wants
// (the listed trees at that path) has a tree the edges do not.
func (o *treeWalk) sparse(wants, edges []oid.ID) error {
	type atName struct{ wants, edges []oid.ID }
	byName := map[string]*atName{}
	var names []string
	at := func(name []byte) *atName {
		a := byName[string(name)]
		if a == nil {
			a = &atName{}
			byName[string(name)] = a
			names = append(names, string(name))
		}
		return a
	}
	read := func(id oid.ID) (object.TreeIter, bool, error) {
		o.steps++
		if o.budget > 0 && o.steps > o.budget {
			return object.TreeIter{}, false, ErrFar
		}
		if o.steps%checkEvery == 0 {
			if err := o.ctx.Err(); err != nil {
				return object.TreeIter{}, false, err
			}
		}
		_, data, err := o.w.read(id, object.Tree, "tree")
		if err != nil {
			// Marking is lenient (a client may have what we lack); a
			// wanted tree that cannot be read fails its listing.
			return object.TreeIter{}, false, nil
		}
		return object.NewTreeIter(o.w.Format, data), true, nil
	}
	seen := oid.NewSet(o.w.Format, 0)
	for _, e := range edges {
		if !seen.Add(e) {
			continue
		}
		o.skip.Add(e)
		it, ok, err := read(e)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		for {
			mode, name, raw, ok := it.NextRaw()
			if !ok {
				break
			}
			et := object.ModeType(mode)
			if et == object.Commit {
				continue // a gitlink: the submodule's history is not ours
			}
			o.skip.AddBytes(raw)
			if et == object.Tree {
				a := at(name)
				a.edges = append(a.edges, oid.MustFromBytes(o.w.Format, raw))
			}
		}
	}
	for _, w := range wants {
		if o.skip.Has(w) || !seen.Add(w) {
			continue // the client has it, or it was read
		}
		it, ok, err := read(w)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		for {
			mode, name, raw, ok := it.NextRaw()
			if !ok {
				break
			}
			if object.ModeType(mode) != object.Tree || o.skip.HasBytes(raw) {
				continue
			}
			if a := byName[string(name)]; a != nil {
				a.wants = append(a.wants, oid.MustFromBytes(o.w.Format, raw))
			}
		}
	}
	for _, name := range names {
		if a := byName[name]; len(a.wants) > 0 {
			if err := o.sparse(a.wants, a.edges); err != nil {
				return err
			}
		}
	}
	return nil
}

// treeWalk lists trees and blobs depth first, each once.
type treeWalk struct {
	w      *Walker
	ctx    context.Context
	skip   *oid.Set    // listed, or reachable from a have
	has    hasObjecter // nil: blobs are not checked
	path   []byte
	stack  []frame
	steps  int
	budget int        // trees push may read; 0: no limit
	into   readIntoer // nil: trees are read with Store.ReadObject
	bufs   [][]byte   // readTree's buffer for each depth of the stack

	// last finds, by a hash of the path (lastSeed), the tree walk went
	// through last at that path, all of whose entries are in skip (see
	// frame.seenBefore), lastData[last[hash]]. lastBytes is their
	// total size, at most maxLastBytes.
	last      map[uint64]int
	lastData  []lastTree
	lastSeed  maphash.Seed
	lastBytes int

	// Set only when a filter applies to the listing.
	filter    Filter
	omitted   *oid.Set
	stat      statObjecter
	depthSeen map[oid.ID]int // trees expanded, at their smallest depth (a depth filter)
	expanded  *oid.Set       // trees expanded (other filters)
}

type frame struct {
	id    oid.ID
	it    object.TreeIter
	plen  int // length of this tree's path in treeWalk.path
	depth int // of the tree; its entries are one deeper
	data  []byte

	// In walk, the content of the tree walked last at the same path
	// (treeWalk.last), and the offset in it of the entry at or after
	// the one the walk reached.
	prev    []byte
	prevOff int
}

// lastTree is a tree of treeWalk.last: buf holds its path (plen bytes)
// and then its content.
type lastTree struct {
	plen int
	buf  []byte
}

// is reports whether t is the tree at path.
func (t *lastTree) is(path []byte) bool {
	return t.plen == len(path) && bytes.Equal(t.buf[:t.plen], path)
}

// maxLastBytes bounds the trees treeWalk.last holds.
const maxLastBytes = 32 << 20

// seenBefore reports whether entry, the bytes of the entry named name
// (not a gitlink), is also in the tree walked last at the same path, so
// that its object is in skip already: a commit changes a few entries of
// the trees it touches, and this costs a comparison of bytes at hand
// where a lookup in skip costs a cache miss (a third of the CPU of a
// full repack of git.git went to those lookups). The entries are
// matched in order, as both trees sort them; the same bytes are the
// same mode (so not a gitlink, which walk leaves out of skip), name and
// id, since a name holds no NUL. Entries out of order are only looked
// up in skip.
func (f *frame) seenBefore(format oid.Format, entry, name []byte) bool {
	for f.prevOff < len(f.prev) {
		rest := f.prev[f.prevOff:]
		if len(rest) >= len(entry) && bytes.Equal(rest[:len(entry)], entry) {
			f.prevOff += len(entry)
			return true
		}
		it := object.NewTreeIter(format, rest)
		_, prevName, _, ok := it.NextRaw()
		if !ok {
			f.prevOff = len(f.prev)
			return false
		}
		c := bytes.Compare(prevName, name)
		if c > 0 {
			return false // added here
		}
		f.prevOff += it.Offset()
		if c == 0 {
			return false // changed here
		}
	}
	return false
}

// startPrev points the top frame, just pushed by walk, at the tree walked
// last at its path.
func (o *treeWalk) startPrev() {
	top := &o.stack[len(o.stack)-1]
	if o.last == nil {
		return
	}
	path := o.path[:top.plen]
	i, ok := o.last[maphash.Bytes(o.lastSeed, path)]
	if !ok || !o.lastData[i].is(path) {
		return
	}
	top.prev = o.lastData[i].buf[top.plen:]
}

// keepLast records the top frame's tree, gone through whole by walk and
// about to be popped, as the last at its path (o.path now): copied, so
// that the buffers of readTree stay as they were, and a path's copy is
// made again only when its tree outgrows it. A path whose hash is
// another's, on the stack or not, is left out (its prev would be
// overwritten).
func (o *treeWalk) keepLast() {
	top := &o.stack[len(o.stack)-1]
	if o.last == nil {
		o.last = make(map[uint64]int)
		o.lastSeed = maphash.MakeSeed()
	}
	key := maphash.Bytes(o.lastSeed, o.path)
	i, ok := o.last[key]
	if !ok {
		if o.lastBytes+len(o.path)+len(top.data) > maxLastBytes {
			return
		}
		i = len(o.lastData)
		o.last[key] = i
		o.lastData = append(o.lastData, lastTree{plen: len(o.path)})
	} else if !o.lastData[i].is(o.path) {
		return
	}
	t := &o.lastData[i]
	had := cap(t.buf)
	if o.lastBytes-had+max(had, len(o.path)+len(top.data)) > maxLastBytes {
		return
	}
	t.buf = append(append(t.buf[:0], o.path...), top.data...)
	o.lastBytes += cap(t.buf) - had
}

// walk visits root (a tree or a blob) and, for a tree, everything below
// it not yet skipped, calling fn for each with its path. With fn nil the
// objects are only marked (the haves side): objects missing there are
// ignored, as a client may have what we lack.
func (o *treeWalk) walk(root oid.ID, t object.Type, fn func(id oid.ID, t object.Type, path []byte) error) error {
	if !o.skip.Add(root) {
		return nil
	}
	o.path = o.path[:0]
	if t == object.Blob {
		return o.blob(root, fn)
	}
	if fn != nil {
		if err := fn(root, object.Tree, o.path); err != nil {
			return err
		}
	}
	if err := o.pushLast(root, 0, fn == nil); err != nil {
		return err
	}
	for len(o.stack) > 0 {
		top := &o.stack[len(o.stack)-1]
		at := top.it.Offset()
		mode, name, raw, ok := top.it.NextRaw()
		if !ok {
			if err := top.it.Err(); err != nil {
				return fmt.Errorf("walk: tree %v: %w", top.id, err)
			}
			o.path = o.path[:top.plen]
			o.keepLast()
			o.stack = o.stack[:len(o.stack)-1]
			continue
		}
		et := object.ModeType(mode)
		if et == object.Commit {
			continue // a gitlink: the submodule's history is not ours
		}
		if top.seenBefore(o.w.Format, top.data[at:top.it.Offset()], name) || !o.skip.AddBytes(raw) {
			continue
		}
		id := oid.MustFromBytes(o.w.Format, raw)
		o.path = o.path[:top.plen]
		if top.plen > 0 {
			o.path = append(o.path, '/')
		}
		o.path = append(o.path, name...)
		if et == object.Blob {
			if err := o.blob(id, fn); err != nil {
				return err
			}
			continue
		}
		if fn != nil {
			if err := fn(id, object.Tree, o.path); err != nil {
				return err
			}
		}
		if err := o.pushLast(id, len(o.path), fn == nil); err != nil {
			return err
		}
	}
	return nil
}

// pushLast is push for walk, which matches the tree's entries with
// those of the tree it went through last at the same path.
func (o *treeWalk) pushLast(id oid.ID, plen int, lenient bool) error {
	n := len(o.stack)
	if err := o.push(id, plen, lenient); err != nil || len(o.stack) == n {
		return err
	}
	o.startPrev()
	return nil
}

// push reads tree id and stacks an iterator over it.
func (o *treeWalk) push(id oid.ID, plen int, lenient bool) error {
	o.steps++
	if o.budget > 0 && o.steps > o.budget {
		return ErrFar
	}
	if o.steps%checkEvery == 0 {
		if err := o.ctx.Err(); err != nil {
			return err
		}
	}
	data, err := o.readTree(id)
	if err != nil {
		if lenient && errors.Is(err, object.ErrNotFound) {
			return nil
		}
		return err
	}
	o.stack = append(o.stack, frame{id: id, it: object.NewTreeIter(o.w.Format, data), plen: plen, data: data})
	return nil
}

// readTree reads tree id for the frame about to be pushed, into the
// buffer of that depth: the tree that had it before was popped (a walk
// reads every tree once and, on a large history, would otherwise
// allocate gigabytes for them).
func (o *treeWalk) readTree(id oid.ID) ([]byte, error) {
	if o.into == nil {
		_, data, err := o.w.read(id, object.Tree, "tree")
		return data, err
	}
	d := len(o.stack)
	for len(o.bufs) <= d {
		o.bufs = append(o.bufs, nil)
	}
	t, data, err := o.into.ReadObjectInto(id, o.bufs[d])
	if err != nil {
		if errors.Is(err, object.ErrNotFound) {
			return nil, notFound("tree", id)
		}
		return nil, fmt.Errorf("walk: read tree %v: %w", id, err)
	}
	if t != object.Tree {
		return nil, fmt.Errorf("walk: tree %v is a %v", id, t)
	}
	if cap(data) <= maxKeptTreeBuf {
		o.bufs[d] = data
	}
	return data, nil
}

// maxKeptTreeBuf bounds the buffers readTree keeps for reuse.
const maxKeptTreeBuf = 1 << 20

// blob lists blob id under the current path.
func (o *treeWalk) blob(id oid.ID, fn func(id oid.ID, t object.Type, path []byte) error) error {
	if fn == nil {
		return nil
	}
	if o.has != nil && !o.has.HasObject(id) {
		return notFound("blob", id)
	}
	return fn(id, object.Blob, o.path)
}

// walkRoot lists root, a commit's tree or a tree or blob a want names,
// and what it reaches, as the filter allows. A root the wants name
// (given) is listed whatever the filter; as C Git's filter never saw
// it, the entries of such a tree are at depth 0, not 1.
func (o *treeWalk) walkRoot(root oid.ID, t object.Type, given bool, fn func(id oid.ID, t object.Type, path []byte) error) error {
	if o.filter.Kind == FilterNone {
		return o.walk(root, t, fn)
	}
	o.path = o.path[:0]
	listed := o.skip.Has(root)
	if t == object.Blob {
		if listed || !(given || o.keepBlob(root, 0)) {
			return nil
		}
		o.skip.Add(root)
		return o.blob(root, fn)
	}
	depth := 0
	if given {
		depth = -1
	}
	if !listed && (given || o.keepTree(depth)) {
		o.skip.Add(root)
		if err := fn(root, object.Tree, o.path); err != nil {
			return err
		}
	}
	if o.filter.Kind == FilterObjectType && o.filter.Type != object.Tree && o.filter.Type != object.Blob {
		return nil // nothing below a tree is listed
	}
	if listed && !o.reexpand(root, depth) || !listed && !o.expand(root, depth) {
		return nil
	}
	if err := o.pushDepth(root, 0, depth); err != nil {
		return err
	}
	for len(o.stack) > 0 {
		top := &o.stack[len(o.stack)-1]
		mode, name, raw, ok := top.it.NextRaw()
		if !ok {
			if err := top.it.Err(); err != nil {
				return fmt.Errorf("walk: tree %v: %w", top.id, err)
			}
			o.stack = o.stack[:len(o.stack)-1]
			continue
		}
		et, d := object.ModeType(mode), top.depth+1
		if et == object.Commit || et == object.Blob && o.noBlobs(d) {
			continue
		}
		listed := o.skip.HasBytes(raw)
		if listed && (et == object.Blob || o.filter.Kind != FilterTreeDepth) {
			continue // only a depth filter may expand a listed tree again
		}
		id := oid.MustFromBytes(o.w.Format, raw)
		if listed && !o.reexpand(id, d) {
			continue
		}
		o.path = o.path[:top.plen]
		if top.plen > 0 {
			o.path = append(o.path, '/')
		}
		o.path = append(o.path, name...)
		if et == object.Blob {
			if o.keepBlob(id, d) {
				o.skip.Add(id)
				if err := o.blob(id, fn); err != nil {
					return err
				}
			}
			continue
		}
		if o.filter.Kind == FilterTreeDepth && d >= o.filter.Depth {
			continue
		}
		if !listed {
			if o.keepTree(d) {
				o.skip.Add(id)
				if err := fn(id, object.Tree, o.path); err != nil {
					return err
				}
			}
			if !o.expand(id, d) {
				continue
			}
		}
		if err := o.pushDepth(id, len(o.path), d); err != nil {
			return err
		}
	}
	return nil
}

// expand reports whether a tree met at depth d must be read: not if it
// was already expanded (at a depth no greater, when the filter is by
// depth).
func (o *treeWalk) expand(id oid.ID, d int) bool {
	if o.filter.Kind != FilterTreeDepth {
		return o.expanded.Add(id)
	}
	if prev, ok := o.depthSeen[id]; ok && prev <= d {
		return false
	}
	o.depthSeen[id] = d
	return true
}

// reexpand is expand for a tree already listed or had: only a tree this
// listing expanded before may be expanded again, at a smaller depth,
// which only a depth filter makes a difference.
func (o *treeWalk) reexpand(id oid.ID, d int) bool {
	if o.filter.Kind != FilterTreeDepth {
		return false
	}
	if _, ok := o.depthSeen[id]; !ok {
		return false
	}
	return o.expand(id, d)
}

// noBlobs reports whether the filter leaves out every blob at depth d,
// whatever its id.
func (o *treeWalk) noBlobs(d int) bool {
	switch o.filter.Kind {
	case FilterBlobNone:
		return true
	case FilterTreeDepth:
		return d >= o.filter.Depth
	case FilterObjectType:
		return o.filter.Type != object.Blob
	}
	return false
}

// keepTree reports whether the filter lists a tree at depth d.
func (o *treeWalk) keepTree(d int) bool {
	switch o.filter.Kind {
	case FilterTreeDepth:
		return d < o.filter.Depth
	case FilterObjectType:
		return o.filter.Type == object.Tree
	}
	return true
}

// keepBlob reports whether the filter lists blob id at depth d.
func (o *treeWalk) keepBlob(id oid.ID, d int) bool {
	switch o.filter.Kind {
	case FilterBlobNone:
		return false
	case FilterTreeDepth:
		return d < o.filter.Depth
	case FilterObjectType:
		return o.filter.Type == object.Blob
	case FilterBlobLimit:
		if o.omitted.Has(id) {
			return false
		}
		var size int64
		if o.stat != nil {
			_, n, err := o.stat.StatObject(id)
			if err != nil {
				return true // o.blob reports it missing
			}
			size = n
		} else {
			_, data, err := o.w.Store.ReadObject(id)
			if err != nil {
				return true
			}
			size = int64(len(data))
		}
		if size >= o.filter.Limit {
			o.omitted.Add(id)
			return false
		}
	}
	return true
}

// pushDepth is push for a tree at depth d.
func (o *treeWalk) pushDepth(id oid.ID, plen, d int) error {
	if err := o.push(id, plen, false); err != nil {
		return err
	}
	o.stack[len(o.stack)-1].depth = d
	return nil
}
