// Package treediff compares two trees: the paths whose entries differ,
// recursively, in the order and with the statuses `git diff-tree -r
// --no-renames` gives (A added, D deleted, M modified, T type changed).
// Notifications summarise pushed commits with it.
package treediff

import (
	"bytes"
	"fmt"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
)

// Reader reads objects: a repository.
type Reader interface {
	ReadObject(id oid.ID) (object.Type, []byte, error)
}

// Change is one path that differs. On the side where the path is absent
// the mode is 0 and the id the zero ID.
type Change struct {
	Path             string
	Status           byte // 'A', 'D', 'M' or 'T'
	OldMode, NewMode uint32
	Old, New         oid.ID
}

// maxDepth bounds the nesting of trees followed.
const maxDepth = 4096

// Trees calls fn for every path whose entry differs between tree a and
// tree b, either of which may be the zero ID (the empty tree). Gitlinks
// are compared as entries, not followed. A Reader that also has
// ReadObjectInto (as repo.Repo) has each tree read into a buffer kept
// for its depth, so that a walk over many commits allocates little
// beyond the changes' paths. A malformed tree stops the walk with an
// error, after the changes before its bad entry were reported.
func Trees(r Reader, f oid.Format, a, b oid.ID, fn func(Change) error) error {
	d := &differ{r: r, f: f, fn: fn}
	d.into, _ = r.(intoReader)
	return d.trees(a, b, nil, 0)
}

// intoReader reads an object into dst's array when it fits
// (repo.Repo.ReadObjectInto): the content may alias dst.
type intoReader interface {
	ReadObjectInto(id oid.ID, dst []byte) (object.Type, []byte, error)
}

type differ struct {
	r    Reader
	into intoReader
	f    oid.Format
	fn   func(Change) error
	// bufs holds the trees being compared at each depth, two a level,
	// for reuse when into is set.
	bufs [][]byte
}

// read reads tree id (nothing for the zero ID), into buffer slot when
// the reader allows.
func (d *differ) read(id oid.ID, slot int) ([]byte, error) {
	if id == (oid.ID{}) {
		return nil, nil
	}
	var (
		t    object.Type
		data []byte
		err  error
	)
	if d.into != nil {
		for len(d.bufs) <= slot {
			d.bufs = append(d.bufs, nil)
		}
		t, data, err = d.into.ReadObjectInto(id, d.bufs[slot][:0])
		if err == nil && cap(data) <= maxKeptTree {
			d.bufs[slot] = data
		}
	} else {
		t, data, err = d.r.ReadObject(id)
	}
	if err != nil {
		return nil, fmt.Errorf("treediff: tree %v: %w", id, err)
	}
	if t != object.Tree {
		return nil, fmt.Errorf("treediff: %v is a %v, not a tree", id, t)
	}
	return data, nil
}

// maxKeptTree bounds a buffer kept for reuse: a huge tree read once is
// left to the garbage collector.
const maxKeptTree = 1 << 20

// entry is a tree entry as parsed, its id raw: most entries compared
// are equal, and only the changes' ids are made IDs.
type entry struct {
	mode     uint32
	name, id []byte
}

func (e entry) isTree() bool { return object.ModeType(e.mode) == object.Tree }

// side walks the entries of one tree, one entry ahead.
type side struct {
	it  object.TreeIter
	e   entry
	ok  bool
	err error
}

func (s *side) next() {
	s.e.mode, s.e.name, s.e.id, s.ok = s.it.NextRaw()
	if !s.ok {
		s.err = s.it.Err()
	}
}

func (d *differ) trees(a, b oid.ID, prefix []byte, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("treediff: trees nested deeper than %d", maxDepth)
	}
	da, err := d.read(a, 2*depth)
	if err != nil {
		return err
	}
	db, err := d.read(b, 2*depth+1)
	if err != nil {
		return err
	}
	sa := side{it: object.NewTreeIter(d.f, da)}
	sb := side{it: object.NewTreeIter(d.f, db)}
	sa.next()
	sb.next()
	for sa.ok || sb.ok {
		var c int
		switch {
		case !sa.ok:
			c = 1
		case !sb.ok:
			c = -1
		default:
			c = compareEntries(sa.e, sb.e)
		}
		switch {
		case c < 0:
			if err := d.one(sa.e, prefix, depth, 'D'); err != nil {
				return err
			}
			sa.next()
		case c > 0:
			if err := d.one(sb.e, prefix, depth, 'A'); err != nil {
				return err
			}
			sb.next()
		default:
			if err := d.both(sa.e, sb.e, prefix, depth); err != nil {
				return err
			}
			sa.next()
			sb.next()
		}
	}
	if sa.err != nil {
		return fmt.Errorf("treediff: tree %v: %w", a, sa.err)
	}
	if sb.err != nil {
		return fmt.Errorf("treediff: tree %v: %w", b, sb.err)
	}
	return nil
}

// one reports entry e, present on one side only, and everything under
// it if it is a tree.
func (d *differ) one(e entry, prefix []byte, depth int, status byte) error {
	path := join(prefix, e.name)
	id := oid.MustFromBytes(d.f, e.id)
	if e.isTree() {
		if status == 'D' {
			return d.trees(id, oid.ID{}, path, depth+1)
		}
		return d.trees(oid.ID{}, id, path, depth+1)
	}
	c := Change{Path: string(path), Status: status}
	if status == 'D' {
		c.OldMode, c.Old = e.mode, id
	} else {
		c.NewMode, c.New = e.mode, id
	}
	return d.fn(c)
}

// both compares entries of the same name and kind (tree or not).
func (d *differ) both(a, b entry, prefix []byte, depth int) error {
	sameID := bytes.Equal(a.id, b.id)
	if sameID && (a.mode == b.mode || a.isTree()) {
		return nil
	}
	path := join(prefix, a.name)
	aID, bID := oid.MustFromBytes(d.f, a.id), oid.MustFromBytes(d.f, b.id)
	if a.isTree() {
		return d.trees(aID, bID, path, depth+1)
	}
	status := byte('M')
	if a.mode&0o170000 != b.mode&0o170000 {
		status = 'T' // file, symbolic link or gitlink became another
	}
	return d.fn(Change{Path: string(path), Status: status, OldMode: a.mode, NewMode: b.mode, Old: aID, New: bID})
}

// compareEntries orders entries as trees sort them: a tree and a
// non-tree of the same name are different entries.
func compareEntries(a, b entry) int {
	return object.CompareTreeNames(a.name, a.isTree(), b.name, b.isTree())
}

func join(prefix, name []byte) []byte {
	p := make([]byte, 0, len(prefix)+1+len(name))
	if len(prefix) > 0 {
		p = append(append(p, prefix...), '/')
	}
	return append(p, name...)
}
