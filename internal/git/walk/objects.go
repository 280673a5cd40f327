package walk

import (
	"context"
	"errors"
	"fmt"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
)

// plainObjects is Objects without bitmaps: the commit walk of limit,
// then the trees of the uninteresting commits it reached are marked,
// then the wanted objects listed.
func (w *Walker) plainObjects(ctx context.Context, wants, haves []oid.ID, fn func(id oid.ID, t object.Type, path []byte) error) error {
	s, err := w.limited(ctx, wants, haves)
	if err != nil {
		return err
	}
	o := &treeWalk{w: w, ctx: ctx, skip: make(map[oid.ID]struct{}), path: make([]byte, 0, 256)}
	o.has, _ = w.Store.(hasObjecter)

	// Everything reachable from the trees of the uninteresting commits the
	// walk met, and from trees and blobs haves name, is not sent.
	for i := range s.nodes {
		nd := &s.nodes[i]
		if nd.flags&(uninteresting|parsed) == uninteresting|parsed && nd.flags&missing == 0 {
			if err := o.walk(nd.tree, object.Tree, nil); err != nil {
				return err
			}
		}
	}
	for _, tip := range s.haveTrees {
		if err := o.walk(tip.id, tip.t, nil); err != nil {
			return err
		}
	}

	for _, id := range s.tags {
		if _, done := o.skip[id]; done || s.haveTags[id] {
			continue
		}
		o.skip[id] = struct{}{}
		if err := fn(id, object.Tag, nil); err != nil {
			return err
		}
	}
	for _, n := range s.out {
		if s.nodes[n].flags&uninteresting != 0 {
			continue
		}
		if err := fn(s.nodes[n].id, object.Commit, nil); err != nil {
			return err
		}
	}
	for _, n := range s.out {
		nd := &s.nodes[n]
		if nd.flags&uninteresting != 0 {
			continue
		}
		if err := o.walk(nd.tree, object.Tree, fn); err != nil {
			return err
		}
	}
	for _, tip := range s.tipTrees {
		if err := o.walk(tip.id, tip.t, fn); err != nil {
			return err
		}
	}
	return nil
}

// treeWalk lists trees and blobs depth first, each once.
type treeWalk struct {
	w     *Walker
	ctx   context.Context
	skip  map[oid.ID]struct{} // listed, or reachable from a have
	has   hasObjecter         // nil: blobs are not checked
	path  []byte
	stack []frame
	steps int
}

type frame struct {
	id   oid.ID
	it   object.TreeIter
	plen int // length of this tree's path in treeWalk.path
}

// walk visits root (a tree or a blob) and, for a tree, everything below
// it not yet skipped, calling fn for each with its path. With fn nil the
// objects are only marked (the haves side): objects missing there are
// ignored, as a client may have what we lack.
func (o *treeWalk) walk(root oid.ID, t object.Type, fn func(id oid.ID, t object.Type, path []byte) error) error {
	if _, ok := o.skip[root]; ok {
		return nil
	}
	o.skip[root] = struct{}{}
	o.path = o.path[:0]
	if t == object.Blob {
		return o.blob(root, fn)
	}
	if fn != nil {
		if err := fn(root, object.Tree, o.path); err != nil {
			return err
		}
	}
	if err := o.push(root, 0, fn == nil); err != nil {
		return err
	}
	for len(o.stack) > 0 {
		top := &o.stack[len(o.stack)-1]
		e, ok := top.it.Next()
		if !ok {
			if err := top.it.Err(); err != nil {
				return fmt.Errorf("walk: tree %v: %w", top.id, err)
			}
			o.stack = o.stack[:len(o.stack)-1]
			continue
		}
		et := e.Type()
		if et == object.Commit {
			continue // a gitlink: the submodule's history is not ours
		}
		if _, ok := o.skip[e.ID]; ok {
			continue
		}
		o.skip[e.ID] = struct{}{}
		o.path = o.path[:top.plen]
		if top.plen > 0 {
			o.path = append(o.path, '/')
		}
		o.path = append(o.path, e.Name...)
		if et == object.Blob {
			if err := o.blob(e.ID, fn); err != nil {
				return err
			}
			continue
		}
		if fn != nil {
			if err := fn(e.ID, object.Tree, o.path); err != nil {
				return err
			}
		}
		if err := o.push(e.ID, len(o.path), fn == nil); err != nil {
			return err
		}
	}
	return nil
}

// push reads tree id and stacks an iterator over it.
func (o *treeWalk) push(id oid.ID, plen int, lenient bool) error {
	o.steps++
	if o.steps%checkEvery == 0 {
		if err := o.ctx.Err(); err != nil {
			return err
		}
	}
	_, data, err := o.w.read(id, object.Tree, "tree")
	if err != nil {
		if lenient && errors.Is(err, object.ErrNotFound) {
			return nil
		}
		return err
	}
	o.stack = append(o.stack, frame{id: id, it: object.NewTreeIter(o.w.Format, data), plen: plen})
	return nil
}

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
