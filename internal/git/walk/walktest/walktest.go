// Package walktest provides, for tests of the walk and bitmap packages,
// an object store and a pack description read from a repository with C
// Git's plumbing, independent of gotd's own pack reader.
package walktest

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/gittest"
)

// Store holds every object of a repository in memory, as read by git
// cat-file --batch-all-objects. It satisfies walk.Store, with the
// optional HasObject and StatObject.
type Store struct {
	Objs map[oid.ID]Object
	// Reads counts the calls of ReadObject, by type of the object read.
	Reads map[object.Type]int
	// Stats counts the calls of StatObject that found the object.
	Stats int
}

// Object is one object of a Store.
type Object struct {
	Type object.Type
	Data []byte
}

// LoadStore reads every object of the repository dir.
func LoadStore(t testing.TB, dir string, f oid.Format) *Store {
	t.Helper()
	out := gittest.Git(t, dir, "cat-file", "--batch-all-objects", "--batch", "--unordered")
	s := &Store{Objs: make(map[oid.ID]Object), Reads: make(map[object.Type]int)}
	r := bufio.NewReader(strings.NewReader(out))
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			break
		}
		fs := strings.Fields(line)
		if len(fs) != 3 {
			t.Fatalf("cat-file line %q", line)
		}
		id, err := oid.ParseHex(f, fs[0])
		if err != nil {
			t.Fatal(err)
		}
		typ, err := object.ParseType([]byte(fs[1]))
		if err != nil {
			t.Fatal(err)
		}
		size, _ := strconv.Atoi(fs[2])
		data := make([]byte, size+1) // the content and its newline
		if _, err := io.ReadFull(r, data); err != nil {
			t.Fatal(err)
		}
		s.Objs[id] = Object{typ, data[:size]}
	}
	return s
}

// ReadObject returns the object's type and content; the content is
// shared, so callers must not modify it. It is not safe for concurrent
// use (it counts reads).
func (s *Store) ReadObject(id oid.ID) (object.Type, []byte, error) {
	o, ok := s.Objs[id]
	if !ok {
		return 0, nil, fmt.Errorf("walktest: %v: %w", id, object.ErrNotFound)
	}
	s.Reads[o.Type]++
	return o.Type, o.Data, nil
}

// StatObject returns the object's type and size. Like ReadObject it
// counts, so it is not safe for concurrent use.
func (s *Store) StatObject(id oid.ID) (object.Type, int64, error) {
	o, ok := s.Objs[id]
	if !ok {
		return 0, 0, fmt.Errorf("walktest: %v: %w", id, object.ErrNotFound)
	}
	s.Stats++
	return o.Type, int64(len(o.Data)), nil
}

// HasObject reports whether the store has id.
func (s *Store) HasObject(id oid.ID) bool {
	_, ok := s.Objs[id]
	return ok
}

// Pack describes one pack, read with git show-index. It satisfies
// bitmap.IndexLookup.
type Pack struct {
	// Base is the pack's path without ".pack".
	Base     string
	byIndex  []oid.ID
	byPack   []int // pack position → index position
	pos      map[oid.ID]int
	checksum []byte
}

// LoadPack reads the pack of the repository dir for which pick returns
// true given its .idx path (nil: the only pack).
func LoadPack(t testing.TB, dir string, f oid.Format, pick func(idx string) bool) *Pack {
	t.Helper()
	idxs, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "*.idx"))
	var idx string
	for _, p := range idxs {
		if pick == nil || pick(p) {
			if idx != "" {
				t.Fatalf("more than one pack in %s", dir)
			}
			idx = p
		}
	}
	if idx == "" {
		t.Fatalf("no pack in %s", dir)
	}
	data, err := os.ReadFile(idx)
	if err != nil {
		t.Fatal(err)
	}
	out := gittest.GitInput(t, dir, data, "show-index", "--object-format="+f.String())
	type rec struct {
		off uint64
		i   int
	}
	var recs []rec
	p := &Pack{Base: strings.TrimSuffix(idx, ".idx"), pos: make(map[oid.ID]int)}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		fs := strings.Fields(line)
		off, _ := strconv.ParseUint(fs[0], 10, 64)
		id, err := oid.ParseHex(f, fs[1])
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec{off, len(recs)})
		p.byIndex = append(p.byIndex, id)
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].off < recs[j].off })
	for pos, r := range recs {
		p.byPack = append(p.byPack, r.i)
		p.pos[p.byIndex[r.i]] = pos
	}
	hs := f.Size()
	p.checksum = data[len(data)-2*hs : len(data)-hs]
	return p
}

// HasBitmap picks, for LoadPack, the pack that has a .bitmap file.
func HasBitmap(idx string) bool {
	_, err := os.Stat(strings.TrimSuffix(idx, ".idx") + ".bitmap")
	return err == nil
}

// Count returns the number of objects in the pack.
func (p *Pack) Count() int { return len(p.byIndex) }

// Checksum returns the pack's trailing checksum, as its index records it.
func (p *Pack) Checksum() []byte { return p.checksum }

// IDAtIndex returns the id at index position i.
func (p *Pack) IDAtIndex(i int) (oid.ID, error) {
	if i < 0 || i >= len(p.byIndex) {
		return oid.ID{}, fmt.Errorf("walktest: index position %d out of range", i)
	}
	return p.byIndex[i], nil
}

// PackPos returns the pack position of id.
func (p *Pack) PackPos(id oid.ID) (int, bool) {
	pos, ok := p.pos[id]
	return pos, ok
}

// IndexAtPackPos returns the index position of the object at pack
// position pos.
func (p *Pack) IndexAtPackPos(pos int) (int, error) {
	if pos < 0 || pos >= len(p.byPack) {
		return 0, fmt.Errorf("walktest: pack position %d out of range", pos)
	}
	return p.byPack[pos], nil
}

// IDAtPackPos returns the id at pack position pos.
func (p *Pack) IDAtPackPos(pos int) oid.ID { return p.byIndex[p.byPack[pos]] }
