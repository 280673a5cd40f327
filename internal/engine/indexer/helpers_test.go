package indexer

import (
	"bytes"
	"compress/zlib"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/pack"
	"gotd/internal/gittest"
)

func formatOf(name string) oid.Format {
	if name == "sha256" {
		return oid.SHA256
	}
	return oid.SHA1
}

// repoWithHistory returns a bare repository with a generated history.
func repoWithHistory(t testing.TB, format string, commits int) string {
	t.Helper()
	dir := gittest.InitBare(t, format)
	gittest.Generate(t, dir, gittest.History{Commits: commits, Branches: 2, Files: 12})
	return dir
}

// packObjects runs git pack-objects in dir with revs on standard input
// and returns the pack.
func packObjects(t testing.TB, dir string, revs string, args ...string) []byte {
	t.Helper()
	args = append([]string{"pack-objects", "--stdout", "-q"}, args...)
	return []byte(gittest.GitInput(t, dir, []byte(revs), args...))
}

// gitIndexPack runs git index-pack on p in dir (a repository of the
// right format) and returns the .idx and .rev it writes.
func gitIndexPack(t testing.TB, dir string, p []byte, args ...string) (idx, rev []byte) {
	t.Helper()
	tmp := t.TempDir()
	path := filepath.Join(tmp, "x.pack")
	if err := os.WriteFile(path, p, 0o644); err != nil {
		t.Fatal(err)
	}
	args = append([]string{"index-pack", "--rev-index"}, args...)
	args = append(args, "-o", filepath.Join(tmp, "x.idx"), path)
	gittest.Git(t, dir, args...)
	idx, err := os.ReadFile(filepath.Join(tmp, "x.idx"))
	if err != nil {
		t.Fatal(err)
	}
	rev, err = os.ReadFile(filepath.Join(tmp, "x.rev"))
	if err != nil {
		t.Fatal(err)
	}
	return idx, rev
}

// indexBytes runs Index on p followed by trailing, checks that trailing
// was left unread, and returns the result with the files it wrote.
func indexBytes(t testing.TB, p []byte, opts Options) (*Result, error) {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	return Index(context.Background(), bytes.NewReader(p), opts)
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// dirEntries lists the names in dir.
func dirEntries(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// gitBases reads objects from a repository with git cat-file.
type gitBases struct {
	t     testing.TB
	dir   string
	calls int
}

func (b *gitBases) ReadObject(id oid.ID) (object.Type, []byte, error) {
	b.calls++
	typ, err := gittest.Run(b.t, b.dir, nil, "cat-file", "-t", id.String())
	if err != nil {
		return 0, nil, fmt.Errorf("%s: %w", id, object.ErrNotFound)
	}
	typ = strings.TrimSpace(typ)
	data, err := gittest.Run(b.t, b.dir, nil, "cat-file", typ, id.String())
	if err != nil {
		return 0, nil, err
	}
	t, err := object.ParseType([]byte(typ))
	return t, []byte(data), err
}

// mapBases serves objects from memory.
type mapBases map[oid.ID]struct {
	t    object.Type
	data []byte
}

func (m mapBases) ReadObject(id oid.ID) (object.Type, []byte, error) {
	o, ok := m[id]
	if !ok {
		return 0, nil, fmt.Errorf("%s: %w", id, object.ErrNotFound)
	}
	return o.t, o.data, nil
}

// Crafting packs by hand for hostile inputs.

// rawEntry is one entry of a crafted pack.
type rawEntry struct {
	typ    object.Type
	size   int64 // declared size; -1 means len(data)
	ofs    uint64
	ref    []byte
	data   []byte // inflated content (or delta)
	zdata  []byte // compressed stream to use instead of compressing data
	header []byte // entry header to use instead of the computed one
}

var zw struct {
	sync.Mutex
	w *zlib.Writer
}

func zlibBytes(data []byte) []byte {
	zw.Lock()
	defer zw.Unlock()
	var b bytes.Buffer
	if zw.w == nil {
		zw.w = zlib.NewWriter(&b)
	} else {
		zw.w.Reset(&b)
	}
	zw.w.Write(data)
	zw.w.Close()
	return b.Bytes()
}

// craft assembles a pack of format f from entries, with a correct
// trailer; count < 0 means len(entries).
func craft(f oid.Format, count int, entries ...rawEntry) []byte {
	if count < 0 {
		count = len(entries)
	}
	p := pack.AppendHeader(nil, uint32(count))
	for _, e := range entries {
		size := e.size
		if size < 0 {
			size = int64(len(e.data))
		}
		if e.header != nil {
			p = append(p, e.header...)
		} else {
			p = pack.AppendEntryHeader(p, e.typ, uint64(size))
		}
		switch e.typ {
		case object.OfsDelta:
			p = pack.AppendOfs(p, e.ofs)
		case object.RefDelta:
			p = append(p, e.ref...)
		}
		if e.zdata != nil {
			p = append(p, e.zdata...)
		} else {
			p = append(p, zlibBytes(e.data)...)
		}
	}
	return withTrailer(f, p)
}

func withTrailer(f oid.Format, p []byte) []byte {
	h := f.New()
	h.Write(p)
	return h.Sum(p)
}

// entryLen returns the length of the pack entry of e as craft writes it.
func entryLen(e rawEntry) uint64 {
	return uint64(len(craft(oid.SHA1, 1, e)) - pack.HeaderSize - oid.SHA1.Size())
}

// delta builds a delta that turns base into result with one copy of
// the common prefix and an insert of the rest.
func delta(base, result []byte) []byte {
	d := pack.AppendDeltaSize(nil, uint64(len(base)))
	d = pack.AppendDeltaSize(d, uint64(len(result)))
	n := 0
	for n < len(base) && n < len(result) && base[n] == result[n] && n < 0xffff {
		n++
	}
	if n > 0 {
		d = append(d, 0x80|0x10|0x20, byte(n), byte(n>>8))
	}
	rest := result[n:]
	for len(rest) > 0 {
		k := min(len(rest), 127)
		d = append(d, byte(k))
		d = append(d, rest[:k]...)
		rest = rest[k:]
	}
	return d
}

func mustID(f oid.Format, t object.Type, data []byte) oid.ID {
	id, err := object.ID(f, t, data)
	if err != nil {
		panic(err)
	}
	return id
}

// parseIdx parses an index file and returns id → offset.
func parseIdx(t testing.TB, f oid.Format, data []byte) map[oid.ID]uint64 {
	t.Helper()
	x, err := pack.ParseIndex(data, f)
	if err != nil {
		t.Fatalf("parse idx: %v", err)
	}
	m := map[oid.ID]uint64{}
	for i := 0; i < x.Count(); i++ {
		m[x.ID(i)] = x.Offset(i)
	}
	return m
}

var errCheck = errors.New("check refused")
