// Package treediff compares two trees: the paths whose entries differ,
// recursively, in the order and with the statuses `git diff-tree -r
// --no-renames` gives (A added, D deleted, M modified, T type changed).
// Notifications summarise pushed commits with it.
package treediff

import (
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
// are compared as entries, not followed.
func Trees(r Reader, f oid.Format, a, b oid.ID, fn func(Change) error) error {
	d := &differ{r: r, f: f, fn: fn}
	return d.trees(a, b, nil, 0)
}

type differ struct {
	r  Reader
	f  oid.Format
	fn func(Change) error
}

// entries reads tree id (none for the zero ID).
func (d *differ) entries(id oid.ID) ([]object.TreeEntry, error) {
	if id == (oid.ID{}) {
		return nil, nil
	}
	t, data, err := d.r.ReadObject(id)
	if err != nil {
		return nil, fmt.Errorf("treediff: tree %v: %w", id, err)
	}
	if t != object.Tree {
		return nil, fmt.Errorf("treediff: %v is a %v, not a tree", id, t)
	}
	var es []object.TreeEntry
	it := object.NewTreeIter(d.f, data)
	for {
		e, ok := it.Next()
		if !ok {
			break
		}
		es = append(es, e)
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("treediff: tree %v: %w", id, err)
	}
	return es, nil
}

func (d *differ) trees(a, b oid.ID, prefix []byte, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("treediff: trees nested deeper than %d", maxDepth)
	}
	ea, err := d.entries(a)
	if err != nil {
		return err
	}
	eb, err := d.entries(b)
	if err != nil {
		return err
	}
	i, j := 0, 0
	for i < len(ea) || j < len(eb) {
		var c int
		switch {
		case i == len(ea):
			c = 1
		case j == len(eb):
			c = -1
		default:
			c = compareEntries(ea[i], eb[j])
		}
		switch {
		case c < 0:
			if err := d.one(ea[i], prefix, depth, 'D'); err != nil {
				return err
			}
			i++
		case c > 0:
			if err := d.one(eb[j], prefix, depth, 'A'); err != nil {
				return err
			}
			j++
		default:
			if err := d.both(ea[i], eb[j], prefix, depth); err != nil {
				return err
			}
			i++
			j++
		}
	}
	return nil
}

// one reports entry e, present on one side only, and everything under
// it if it is a tree.
func (d *differ) one(e object.TreeEntry, prefix []byte, depth int, status byte) error {
	path := join(prefix, e.Name)
	if e.Type() == object.Tree {
		if status == 'D' {
			return d.trees(e.ID, oid.ID{}, path, depth+1)
		}
		return d.trees(oid.ID{}, e.ID, path, depth+1)
	}
	c := Change{Path: string(path), Status: status}
	if status == 'D' {
		c.OldMode, c.Old = e.Mode, e.ID
	} else {
		c.NewMode, c.New = e.Mode, e.ID
	}
	return d.fn(c)
}

// both compares entries of the same name and kind (tree or not).
func (d *differ) both(a, b object.TreeEntry, prefix []byte, depth int) error {
	if a.ID == b.ID && a.Mode == b.Mode {
		return nil
	}
	path := join(prefix, a.Name)
	if a.Type() == object.Tree {
		if a.ID == b.ID {
			return nil
		}
		return d.trees(a.ID, b.ID, path, depth+1)
	}
	status := byte('M')
	if a.Mode&0o170000 != b.Mode&0o170000 {
		status = 'T' // file, symbolic link or gitlink became another
	}
	return d.fn(Change{Path: string(path), Status: status, OldMode: a.Mode, NewMode: b.Mode, Old: a.ID, New: b.ID})
}

// compareEntries orders entries as trees sort them: a tree and a
// non-tree of the same name are different entries.
func compareEntries(a, b object.TreeEntry) int {
	return object.CompareTreeNames(a.Name, a.Type() == object.Tree, b.Name, b.Type() == object.Tree)
}

func join(prefix, name []byte) []byte {
	p := make([]byte, 0, len(prefix)+1+len(name))
	if len(prefix) > 0 {
		p = append(append(p, prefix...), '/')
	}
	return append(p, name...)
}
