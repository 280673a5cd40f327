package fastimport

import (
	"fmt"
	"slices"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
)

// node is one entry of a branch's tree as fast-import keeps it: the
// mode and id it has, and for a directory the content once loaded. A
// directory whose content changed since it was last stored has a zero id
// until the commit stores it (C Git's tree_entry with versions[1] null).
type node struct {
	name string
	mode uint32
	id   oid.ID
	dir  *dir // nil until a directory is loaded
}

// dir is a loaded directory. prev is the encoding of the version last
// stored in this pack, tried as the base of a delta for the next one,
// as C Git's store_tree does with versions[0].
//
// The entries are in no particular order until storeTree sorts them. A
// directory of more than indexMin entries is found through index, so
// that a stream filling one directory with n files costs n map lookups,
// not the n²/2 name comparisons of C Git's linear search.
type dir struct {
	entries []*node
	index   map[string]int // name -> position in entries; nil until needed
	prev    oid.ID
	prevEnc []byte
}

// indexMin is the size from which a directory's names are indexed.
const indexMin = 32

func isDir(mode uint32) bool { return mode == object.ModeTree }

// find returns the position of the entry named name, -1 if there is
// none.
func (d *dir) find(name string) int {
	if d.index == nil {
		if len(d.entries) <= indexMin {
			for i, e := range d.entries {
				if e.name == name {
					return i
				}
			}
			return -1
		}
		d.index = make(map[string]int, len(d.entries))
		for i, e := range d.entries {
			d.index[e.name] = i
		}
	}
	if i, ok := d.index[name]; ok {
		return i
	}
	return -1
}

// add appends e, whose name is not in d yet, and returns its position.
func (d *dir) add(e *node) int {
	d.entries = append(d.entries, e)
	i := len(d.entries) - 1
	if d.index != nil {
		d.index[e.name] = i
	}
	return i
}

// remove drops entry i; the last entry takes its place.
func (d *dir) remove(i int) {
	last := len(d.entries) - 1
	if d.index != nil {
		delete(d.index, d.entries[i].name)
		if i != last {
			d.index[d.entries[last].name] = i
		}
	}
	d.entries[i] = d.entries[last]
	d.entries[last] = nil
	d.entries = d.entries[:last]
}

// load reads the content of directory n if it is not loaded yet.
func (im *importer) load(n *node) error {
	if n.dir != nil {
		return nil
	}
	n.dir = &dir{}
	if !n.id.Valid() || n.id == im.emptyTree {
		return nil
	}
	t, data, err := im.pack.read(n.id, im.opts.MaxObjectSize)
	if err != nil {
		return fmt.Errorf("read tree %s: %w", n.id, err)
	}
	if t != object.Tree {
		return fmt.Errorf("%s is a %s, not a tree", n.id, t)
	}
	it := object.NewTreeIter(im.format, data)
	for {
		e, ok := it.Next()
		if !ok {
			break
		}
		n.dir.entries = append(n.dir.entries, &node{name: string(e.Name), mode: e.Mode, id: e.ID})
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("tree %s: %w", n.id, err)
	}
	if _, ok := im.pack.objs[n.id]; ok {
		n.dir.prev, n.dir.prevEnc = n.id, data
	}
	return nil
}

// set puts an entry at path (components) under root, creating the
// directories on the way and turning a non-directory in the way into
// one, as tree_content_set in C Git's fast-import.c does. sub, if not
// nil, is the loaded content of a directory being copied.
func (im *importer) set(root *node, path []string, mode uint32, id oid.ID, sub *dir) error {
	if err := im.load(root); err != nil {
		return err
	}
	d := root.dir
	name := path[0]
	root.id = oid.ID{}
	i := d.find(name)
	if len(path) == 1 {
		if i < 0 {
			i = d.add(&node{name: name})
		}
		e := d.entries[i]
		e.mode, e.id, e.dir = mode, id, sub
		return nil
	}
	if i < 0 {
		i = d.add(&node{name: name, mode: object.ModeTree, dir: &dir{}})
	}
	e := d.entries[i]
	if !isDir(e.mode) {
		e.mode, e.id, e.dir = object.ModeTree, oid.ID{}, &dir{}
	}
	return im.set(e, path[1:], mode, id, sub)
}

// remove deletes the entry at path under root and reports whether
// anything was removed; a directory left empty by the removal goes too,
// as in C Git's tree_content_remove. The removed entry is returned.
func (im *importer) remove(root *node, path []string) (*node, bool, error) {
	if err := im.load(root); err != nil {
		return nil, false, err
	}
	d := root.dir
	i := d.find(path[0])
	if i < 0 {
		return nil, false, nil
	}
	e := d.entries[i]
	if len(path) == 1 {
		d.remove(i)
		root.id = oid.ID{}
		return e, true, nil
	}
	if !isDir(e.mode) {
		// A file stands where a directory of the path would be: the
		// path cannot exist.
		return nil, true, nil
	}
	got, ok, err := im.remove(e, path[1:])
	if err != nil || !ok {
		return got, ok, err
	}
	root.id = oid.ID{}
	if len(e.dir.entries) == 0 {
		d.remove(i)
	}
	return got, true, nil
}

// get returns the entry at path under root, nil if there is none.
func (im *importer) get(root *node, path []string) (*node, error) {
	n := root
	for _, name := range path {
		if !isDir(n.mode) {
			return nil, nil
		}
		if err := im.load(n); err != nil {
			return nil, err
		}
		i := n.dir.find(name)
		if i < 0 {
			return nil, nil
		}
		n = n.dir.entries[i]
	}
	return n, nil
}

// clone copies the loaded, unstored parts of a directory so that a
// copied directory and its source change independently afterwards;
// stored subdirectories are shared by id and loaded again when needed.
func clone(d *dir) *dir {
	if d == nil {
		return nil
	}
	c := &dir{entries: make([]*node, len(d.entries))}
	for i, e := range d.entries {
		ne := *e
		if e.id.Valid() {
			ne.dir = nil
		} else {
			ne.dir = clone(e.dir)
		}
		c.entries[i] = &ne
	}
	return c
}

// storeTree writes every changed directory under n, children first, and
// sets their ids.
func (im *importer) storeTree(n *node, depth int) error {
	if n.id.Valid() {
		return nil
	}
	if depth > maxTreeDepth {
		return fmt.Errorf("tree deeper than %d levels", maxTreeDepth)
	}
	if err := im.load(n); err != nil {
		return err
	}
	d := n.dir
	for _, e := range d.entries {
		if isDir(e.mode) {
			if err := im.storeTree(e, depth+1); err != nil {
				return err
			}
		}
	}
	slices.SortFunc(d.entries, func(a, b *node) int {
		return object.CompareTreeNames(a.name, isDir(a.mode), b.name, isDir(b.mode))
	})
	d.index = nil // the positions moved
	buf := im.treeBuf[:0]
	for _, e := range d.entries {
		buf = object.AppendTreeEntry(buf, e.mode, []byte(e.name), e.id)
	}
	im.treeBuf = buf
	var base *deltaBase
	if d.prevEnc != nil {
		base = &deltaBase{id: d.prev, data: d.prevEnc}
	}
	id, _, err := im.pack.store(object.Tree, buf, base)
	if err != nil {
		return err
	}
	im.stats.Trees++
	n.id = id
	if _, ok := im.pack.objs[id]; ok {
		d.prev, d.prevEnc = id, append(d.prevEnc[:0], buf...)
	}
	return nil
}

// unload forgets the loaded content under a stored directory.
func unload(n *node) {
	if n.id.Valid() {
		n.dir = nil
	}
}
