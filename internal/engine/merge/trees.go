package merge

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/treediff"
)

// Store reads and writes the objects of a merge: a repository, or a
// layer over one that keeps new objects for a pack.
type Store interface {
	ReadObject(id oid.ID) (object.Type, []byte, error)
	WriteObject(t object.Type, data []byte) (oid.ID, error)
}

// Limits bound the work of one tree merge.
type Limits struct {
	MaxFileSize int64 // files larger than this on any side are not merged line by line: a conflict
	MaxEdits    int   // of each side's line diff (Lines)
	// MaxEntries bounds the tree entries looked at and MaxMergedBytes
	// the bytes of files merged line by line, in all: past them the
	// merge is refused as too large. Trees repeat subtrees at no cost
	// (each three-way merge of the same trees is made once), so these
	// bound what a few hundred bytes of trees nested many times over
	// could otherwise ask for.
	MaxEntries     int
	MaxMergedBytes int64
}

// DefaultLimits are those of a server-side rebase.
var DefaultLimits = Limits{MaxFileSize: 8 << 20, MaxEdits: 2000, MaxEntries: 1 << 20, MaxMergedBytes: 64 << 20}

// ErrTooLarge is the error of a merge that goes over its Limits or its
// context's deadline.
var ErrTooLarge = errors.New("merge: too large to merge")

// Conflict is why a merge is refused: the first path found that both
// sides changed in ways that do not combine.
type Conflict struct {
	Path string
	Why  string // "changed on both sides", "deleted on one side, changed on the other", ...
}

func (c *Conflict) Error() string { return c.Path + " " + c.Why }

// maxDepth bounds the nesting of trees followed.
const maxDepth = 4096

// Trees merges trees ours and theirs, both descended from base, and
// returns the merged tree, written to s with the trees and files it
// holds. Any of the three may be the zero ID (the empty tree). A path
// changed on one side only is taken from that side; a file changed on
// both is merged line by line (Lines); a *Conflict is returned for the
// first path whose changes do not combine: text changed in the same
// place, a binary file, symbolic link or submodule changed on both
// sides, a mode changed differently, a type changed on one side and the
// entry changed on the other, a file deleted on one side and changed on
// the other, or added on both with contents that do not merge. Renames
// are not followed: a rename is a deletion and an addition. ErrTooLarge
// is returned past lim or past ctx's deadline.
func Trees(ctx context.Context, s Store, f oid.Format, base, ours, theirs oid.ID, lim Limits) (oid.ID, error) {
	m := &merger{ctx: ctx, s: s, f: f, lim: lim, done: map[[3]oid.ID]oid.ID{}}
	id, err := m.trees(base, ours, theirs, "", 0)
	if err != nil {
		return oid.ID{}, err
	}
	if !id.Valid() {
		return s.WriteObject(object.Tree, nil) // everything deleted
	}
	return id, nil
}

type merger struct {
	ctx     context.Context
	s       Store
	f       oid.Format
	lim     Limits
	done    map[[3]oid.ID]oid.ID // merged trees and files, by their three ids
	entries int                  // tree entries looked at
	bytes   int64                // file bytes merged line by line
}

// entry is a tree entry of one side; a nil *entry is an absent one.
type entry struct {
	mode uint32
	id   oid.ID
}

func same(a, b *entry) bool {
	return a == nil && b == nil || a != nil && b != nil && a.mode == b.mode && a.id == b.id
}

func isTree(e *entry) bool { return e != nil && e.mode == object.ModeTree }

// treeID is e's id if it is a tree, else the zero ID (an empty tree).
func treeID(e *entry) oid.ID {
	if isTree(e) {
		return e.id
	}
	return oid.ID{}
}

// trees merges three trees (the zero ID for an absent or empty one) and
// returns the merged tree's id, or the zero ID if it is empty.
func (m *merger) trees(base, ours, theirs oid.ID, dir string, depth int) (oid.ID, error) {
	switch {
	case ours == theirs || base == theirs:
		return ours, nil
	case base == ours:
		return theirs, nil
	case depth >= maxDepth:
		return oid.ID{}, &Conflict{dir, "nested too deeply to merge"}
	}
	key := [3]oid.ID{base, ours, theirs}
	if id, ok := m.done[key]; ok {
		return id, nil
	}
	if err := m.ctx.Err(); err != nil {
		return oid.ID{}, ErrTooLarge
	}
	names := map[string]*[3]*entry{}
	var order []string
	for side, id := range []oid.ID{base, ours, theirs} {
		if !id.Valid() || id.IsNull() {
			continue
		}
		t, data, err := m.s.ReadObject(id)
		if err != nil {
			return oid.ID{}, fmt.Errorf("merge: tree %s: %w", id, err)
		}
		if t != object.Tree {
			return oid.ID{}, fmt.Errorf("merge: %s is a %s, not a tree", id, t)
		}
		it := object.NewTreeIter(m.f, data)
		for {
			e, ok := it.Next()
			if !ok {
				break
			}
			if m.entries++; m.lim.MaxEntries > 0 && m.entries > m.lim.MaxEntries {
				return oid.ID{}, ErrTooLarge
			}
			es := names[string(e.Name)]
			if es == nil {
				es = new([3]*entry)
				names[string(e.Name)] = es
				order = append(order, string(e.Name))
			}
			es[side] = &entry{e.Mode, e.ID}
		}
		if err := it.Err(); err != nil {
			return oid.ID{}, fmt.Errorf("merge: tree %s: %w", id, err)
		}
	}
	type result struct {
		name string
		e    entry
	}
	var out []result
	for _, name := range order {
		es := names[name]
		e, err := m.entry(es[0], es[1], es[2], join(dir, name), depth)
		if err != nil {
			return oid.ID{}, err
		}
		if e != nil {
			out = append(out, result{name, *e})
		}
	}
	if len(out) == 0 {
		m.done[key] = oid.ID{}
		return oid.ID{}, nil
	}
	slices.SortFunc(out, func(a, b result) int {
		return object.CompareTreeNames(a.name, a.e.mode == object.ModeTree, b.name, b.e.mode == object.ModeTree)
	})
	var data []byte
	for _, r := range out {
		data = object.AppendTreeEntry(data, r.e.mode, []byte(r.name), r.e.id)
	}
	id, err := m.s.WriteObject(object.Tree, data)
	if err == nil {
		m.done[key] = id
	}
	return id, err
}

func join(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// entry merges one path's entries (nil where absent) and returns the
// merged one (nil if the path is gone). A path may be a file on one side
// and a directory on another: the file and the directory are merged
// apart (a file replaced by a directory is the file deleted and the
// directory added), and conflict only if both remain.
func (m *merger) entry(b, o, t *entry, path string, depth int) (*entry, error) {
	switch {
	case same(o, t) || same(b, t):
		return o, nil
	case same(b, o):
		return t, nil
	}
	f, err := m.fileEntry(nonTree(b), nonTree(o), nonTree(t), path)
	if err != nil {
		return nil, err
	}
	id, err := m.trees(treeID(b), treeID(o), treeID(t), path, depth+1)
	switch {
	case err != nil:
		return nil, err
	case !id.Valid():
		return f, nil
	case f != nil:
		return nil, &Conflict{path, "a directory on one side, a file on the other"}
	}
	return &entry{object.ModeTree, id}, nil
}

func nonTree(e *entry) *entry {
	if isTree(e) {
		return nil
	}
	return e
}

// fileEntry merges the entries of a path that are not directories: a
// file, symbolic link or submodule, or nil.
func (m *merger) fileEntry(b, o, t *entry, path string) (*entry, error) {
	switch {
	case same(o, t) || same(b, t):
		return o, nil
	case same(b, o):
		return t, nil
	case o == nil || t == nil:
		return nil, &Conflict{path, "deleted on one side, changed on the other"}
	case kind(o.mode) != kind(t.mode):
		return nil, &Conflict{path, "changed type on one side, changed on the other"}
	}
	if b != nil && kind(b.mode) != kind(o.mode) {
		b = nil // of another kind in the base, replaced on both sides: added on both
	}
	mode := o.mode
	switch {
	case o.mode == t.mode:
	case b != nil && o.mode == b.mode:
		mode = t.mode
	case b != nil && t.mode == b.mode:
	default:
		return nil, &Conflict{path, "mode changed on both sides"}
	}
	switch {
	case o.id == t.id:
		return &entry{mode, o.id}, nil
	case b != nil && b.id == o.id:
		return &entry{mode, t.id}, nil
	case b != nil && b.id == t.id:
		return &entry{mode, o.id}, nil
	case mode == object.ModeGitlink:
		return nil, &Conflict{path, "submodule changed on both sides"}
	case mode == object.ModeSymlink:
		return nil, &Conflict{path, "symbolic link changed on both sides"}
	}
	id, err := m.file(b, o, t, path)
	if err != nil {
		return nil, err
	}
	return &entry{mode, id}, nil
}

// file merges the contents of a regular file changed on both sides
// (b nil if added on both).
func (m *merger) file(b, o, t *entry, path string) (oid.ID, error) {
	key := [3]oid.ID{{}, o.id, t.id}
	if b != nil {
		key[0] = b.id
	}
	if id, ok := m.done[key]; ok {
		return id, nil
	}
	if err := m.ctx.Err(); err != nil {
		return oid.ID{}, ErrTooLarge
	}
	var data [3][]byte
	for i, e := range []*entry{b, o, t} {
		if e == nil {
			continue
		}
		typ, d, err := m.s.ReadObject(e.id)
		if err != nil {
			return oid.ID{}, fmt.Errorf("merge: %s: %w", path, err)
		}
		if typ != object.Blob {
			return oid.ID{}, fmt.Errorf("merge: %s: %s is a %s, not a blob", path, e.id, typ)
		}
		if int64(len(d)) > m.lim.MaxFileSize {
			return oid.ID{}, &Conflict{path, "changed on both sides (too large to merge)"}
		}
		if treediff.IsBinary(d) { // as C Git, which does not merge those line by line
			return oid.ID{}, &Conflict{path, "binary file changed on both sides"}
		}
		data[i] = d
		if m.bytes += int64(len(d)); m.lim.MaxMergedBytes > 0 && m.bytes > m.lim.MaxMergedBytes {
			return oid.ID{}, ErrTooLarge
		}
	}
	merged, clean, err := Lines(data[0], data[1], data[2], m.lim.MaxEdits)
	switch {
	case err == ErrTooDifferent:
		return oid.ID{}, &Conflict{path, "changed on both sides (too different to merge)"}
	case err != nil:
		return oid.ID{}, err
	case !clean:
		if b == nil {
			return oid.ID{}, &Conflict{path, "added on both sides with different contents"}
		}
		return oid.ID{}, &Conflict{path, "changed on both sides"}
	}
	id, err := m.s.WriteObject(object.Blob, merged)
	if err == nil {
		m.done[key] = id
	}
	return id, err
}

// kind is what an entry's mode makes of it: a regular file (whether
// executable or not), a symbolic link, a submodule or a directory.
func kind(mode uint32) uint32 {
	if mode == object.ModeExec {
		return object.ModeBlob
	}
	return mode
}
