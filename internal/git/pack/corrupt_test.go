package pack

import (
	"bytes"
	"compress/zlib"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/gittest"
)

// craftEntry is one entry of a pack built by a test.
type craftEntry struct {
	typ  object.Type
	data []byte // inflated content: the object, or the delta
	// size is the declared size; 0 means len(data) (use sizeSet for 0).
	size    uint64
	sizeSet bool
	// base is the index of the base entry of a delta; rel, when set,
	// overrides the ofs-delta distance and baseID the ref-delta base.
	base   int
	rel    uint64
	relSet bool
	baseID oid.ID
	// z, when set, replaces the compressed data.
	z []byte
	// id, when set, is the id the index lists the entry under; deltas
	// otherwise get an arbitrary id.
	id oid.ID
}

// crafted is a pack built by craftPack, with its offsets and ids.
type crafted struct {
	pack []byte
	idx  []byte
	offs []uint64
	ids  []oid.ID
}

// noise returns n incompressible bytes.
func noise(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(uint64(n), 1))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func deflate(data []byte) []byte {
	var b bytes.Buffer
	zw := zlib.NewWriter(&b)
	zw.Write(data)
	zw.Close()
	return b.Bytes()
}

// delta returns a delta from a base of baseSize bytes to a result of
// resultSize bytes with the given instructions.
func delta(baseSize, resultSize uint64, ops ...byte) []byte {
	d := AppendDeltaSize(nil, baseSize)
	d = AppendDeltaSize(d, resultSize)
	return append(d, ops...)
}

// craftPack lays out entries as a pack of format f with a matching
// index.
func craftPack(t testing.TB, f oid.Format, entries []craftEntry) crafted {
	t.Helper()
	c := crafted{pack: AppendHeader(nil, uint32(len(entries)))}
	for i, e := range entries {
		off := uint64(len(c.pack))
		c.offs = append(c.offs, off)
		id := e.id
		if !id.Valid() {
			if e.typ.IsBase() {
				id, _ = object.ID(f, e.typ, e.data)
			} else {
				id = fakeID(f, 1000+i)
			}
		}
		c.ids = append(c.ids, id)
		size := uint64(len(e.data))
		if e.size != 0 || e.sizeSet {
			size = e.size
		}
		c.pack = AppendEntryHeader(c.pack, e.typ, size)
		switch e.typ {
		case object.OfsDelta:
			rel := e.rel
			if !e.relSet {
				rel = off - c.offs[e.base]
			}
			c.pack = AppendOfs(c.pack, rel)
		case object.RefDelta:
			base := e.baseID
			if !base.Valid() {
				base = c.ids[e.base]
			}
			c.pack = append(c.pack, base.Bytes()...)
		}
		z := e.z
		if z == nil {
			z = deflate(e.data)
		}
		c.pack = append(c.pack, z...)
	}
	h := checksumHash(f)
	h.Write(c.pack)
	c.pack = h.Sum(c.pack)
	var ents []IndexEntry
	for i := range entries {
		ents = append(ents, IndexEntry{ID: c.ids[i], Offset: c.offs[i]})
	}
	var idx bytes.Buffer
	if _, err := WriteIndex(&idx, f, ents, c.pack[len(c.pack)-f.Size():]); err != nil {
		t.Fatalf("craftPack: %v", err)
	}
	c.idx = idx.Bytes()
	return c
}

// open returns a Pack reading c from memory.
func (c crafted) open(t testing.TB, f oid.Format, opts Options) *Pack {
	t.Helper()
	x, err := ParseIndex(c.idx, f)
	if err != nil {
		t.Fatalf("ParseIndex: %v", err)
	}
	p, err := newPack("crafted.pack", &mapping{data: c.pack}, x, opts)
	if err != nil {
		t.Fatalf("newPack: %v", err)
	}
	return p
}

const (
	blobText  = "hello, world: a base for deltas\n"
	blobText2 = "hello, world: a base for deltas\nand one more line\n"
)

// validEntries is a small valid pack: a blob, an ofs-delta on it and a
// ref-delta on the ofs-delta.
func validEntries(f oid.Format) []craftEntry {
	n := uint64(len(blobText))
	// Copy the whole base, then insert the extra line.
	extra := blobText2[len(blobText):]
	d1 := delta(n, uint64(len(blobText2)), append([]byte{0x90, byte(n), byte(len(extra))}, extra...)...)
	id2, _ := object.ID(f, object.Blob, []byte(blobText2))
	// Copy the first 5 bytes of the second blob.
	d2 := delta(uint64(len(blobText2)), 5, 0x90, 5)
	id3, _ := object.ID(f, object.Blob, []byte("hello"))
	return []craftEntry{
		{typ: object.Blob, data: []byte(blobText)},
		{typ: object.OfsDelta, data: d1, base: 0, id: id2},
		{typ: object.RefDelta, data: d2, base: 1, id: id3},
	}
}

// TestCraftedPackMatchesGit checks the test's pack builder itself
// against git index-pack, and that the valid crafted pack reads back.
func TestCraftedPackMatchesGit(t *testing.T) {
	for _, format := range formats {
		f, _ := oid.ParseFormat(format)
		c := craftPack(t, f, validEntries(f))
		dir := gittest.InitBare(t, format)
		path := filepath.Join(dir, "objects", "pack", "pack-crafted.pack")
		os.WriteFile(path, c.pack, 0o644)
		gittest.Git(t, dir, "index-pack", "-o", filepath.Join(dir, "git.idx"), path)
		gitIdx, _ := os.ReadFile(filepath.Join(dir, "git.idx"))
		// git records CRC-32s; the crafted index has zeros there. Compare
		// everything else.
		x, err := ParseIndex(gitIdx, f)
		if err != nil {
			t.Fatal(err)
		}
		for i := range c.ids {
			if y, _ := ParseIndex(c.idx, f); y.ID(i) != x.ID(i) || y.Offset(i) != x.Offset(i) {
				t.Errorf("%s: crafted index entry %d = %s %d; git's %s %d", format, i, y.ID(i), y.Offset(i), x.ID(i), x.Offset(i))
			}
		}
		p := c.open(t, f, Options{})
		for i, want := range []string{blobText, blobText2, "hello"} {
			typ, data, err := p.ReadObject(c.ids[i])
			if err != nil || typ != object.Blob || string(data) != want {
				t.Errorf("%s: ReadObject(%d) = %v, %q, %v; want blob %q", format, i, typ, data, err, want)
			}
			typ, size, err := p.StatObject(c.ids[i])
			if err != nil || typ != object.Blob || size != int64(len(want)) {
				t.Errorf("%s: StatObject(%d) = %v, %d, %v; want blob %d", format, i, typ, size, err, len(want))
			}
		}
	}
}

// TestReadCorrupt reads crafted broken packs: every read must fail with
// ErrCorrupt or ErrTooLarge, and none may allocate much.
func TestReadCorrupt(t *testing.T) {
	f := oid.SHA1
	n := uint64(len(blobText))
	blob := craftEntry{typ: object.Blob, data: []byte(blobText)}
	copyAll := delta(n, n, 0x90, byte(n))
	goodZ := deflate([]byte(blobText))
	badAdler := append([]byte(nil), goodZ...)
	badAdler[len(badAdler)-1] ^= 1
	bomb := deflate(make([]byte, 1<<20))
	for _, tc := range []struct {
		name    string
		entries []craftEntry
		read    int // entry to read
		opts    Options
		tooBig  bool // want ErrTooLarge rather than ErrCorrupt
	}{
		{name: "ofs-delta to itself", read: 1, entries: []craftEntry{blob,
			{typ: object.OfsDelta, data: copyAll, rel: 0, relSet: true}}},
		{name: "ofs-delta before the pack header", read: 1, entries: []craftEntry{blob,
			{typ: object.OfsDelta, data: copyAll, rel: 13 + uint64(len(goodZ)) + 2, relSet: true}}},
		{name: "ofs-delta into the header", read: 1, entries: []craftEntry{blob,
			{typ: object.OfsDelta, data: copyAll, rel: 1 + uint64(len(goodZ)) + 2, relSet: true}}},
		{name: "ofs-delta overflowing distance", read: 1, entries: []craftEntry{blob,
			{typ: object.OfsDelta, data: copyAll, rel: 1 << 60, relSet: true}}},
		{name: "ofs-delta into the middle of an entry", read: 1, entries: []craftEntry{blob,
			{typ: object.OfsDelta, data: copyAll, rel: 1 + uint64(len(goodZ)) - 3, relSet: true}}},
		{name: "ref-delta to a missing base", read: 1, entries: []craftEntry{blob,
			{typ: object.RefDelta, data: copyAll, baseID: fakeID(f, 77)}}},
		{name: "ref-delta to itself", read: 1, entries: []craftEntry{blob,
			{typ: object.RefDelta, data: copyAll, baseID: fakeID(f, 50), id: fakeID(f, 50)}}},
		{name: "ref-delta cycle", read: 1, entries: []craftEntry{blob,
			{typ: object.RefDelta, data: copyAll, baseID: fakeID(f, 51), id: fakeID(f, 52)},
			{typ: object.RefDelta, data: copyAll, baseID: fakeID(f, 52), id: fakeID(f, 51)}}},
		{name: "chain deeper than the limit", read: 4, opts: Options{MaxDeltaDepth: 3}, entries: []craftEntry{blob,
			{typ: object.OfsDelta, data: copyAll, base: 0},
			{typ: object.OfsDelta, data: copyAll, base: 1},
			{typ: object.OfsDelta, data: copyAll, base: 2},
			{typ: object.OfsDelta, data: copyAll, base: 3}}},
		{name: "delta declaring a huge result", read: 1, tooBig: true, entries: []craftEntry{blob,
			{typ: object.OfsDelta, data: delta(n, 1<<40, 0x90, byte(n)), base: 0}}},
		{name: "short delta declaring 3 GiB", read: 1, entries: []craftEntry{blob,
			{typ: object.OfsDelta, data: delta(n, 3<<30, 0x90, byte(n)), base: 0}}},
		{name: "delta result shorter than declared", read: 1, entries: []craftEntry{blob,
			{typ: object.OfsDelta, data: delta(n, n+1, 0x90, byte(n)), base: 0}}},
		{name: "delta base size mismatch", read: 1, entries: []craftEntry{blob,
			{typ: object.OfsDelta, data: delta(n+1, n, 0x90, byte(n)), base: 0}}},
		{name: "delta copying past its base", read: 1, entries: []craftEntry{blob,
			{typ: object.OfsDelta, data: delta(n, n+1, 0x90, byte(n+1)), base: 0}}},
		{name: "delta declared size too small", read: 1, entries: []craftEntry{blob,
			{typ: object.OfsDelta, data: copyAll, size: 2, base: 0}}},
		{name: "object larger than the limit", read: 0, tooBig: true, opts: Options{MaxObjectSize: 10}, entries: []craftEntry{blob}},
		{name: "object declaring 1 TiB", read: 0, tooBig: true, entries: []craftEntry{
			{typ: object.Blob, data: []byte(blobText), size: 1 << 40}}},
		{name: "object declaring 2 GiB", read: 0, entries: []craftEntry{
			{typ: object.Blob, data: []byte(blobText), size: 2 << 30}}},
		{name: "object declaring 64 MiB before 100 KiB of data", read: 0, entries: []craftEntry{
			{typ: object.Blob, data: []byte(blobText), size: 64 << 20},
			{typ: object.Blob, data: noise(100 << 10)}}},
		{name: "zlib inflating past the declared size", read: 0, entries: []craftEntry{
			{typ: object.Blob, data: []byte(blobText), size: 5}}},
		{name: "zlib bomb", read: 0, entries: []craftEntry{
			{typ: object.Blob, data: []byte("x"), z: bomb}}},
		{name: "zlib stream shorter than declared", read: 0, entries: []craftEntry{
			{typ: object.Blob, data: []byte(blobText), size: n + 10}}},
		{name: "truncated zlib stream", read: 0, entries: []craftEntry{
			{typ: object.Blob, data: []byte(blobText), z: goodZ[:len(goodZ)-6]}}},
		{name: "bad zlib checksum", read: 0, entries: []craftEntry{
			{typ: object.Blob, data: []byte(blobText), z: badAdler}}},
		{name: "bad zlib header", read: 0, entries: []craftEntry{
			{typ: object.Blob, data: []byte(blobText), z: append([]byte{0x78, 0x00}, goodZ[2:]...)}}},
		{name: "no zlib data at all", read: 0, entries: []craftEntry{
			{typ: object.Blob, data: []byte(blobText), z: []byte{}}}},
		{name: "invalid entry type 5", read: 0, entries: []craftEntry{
			{typ: 5, data: []byte(blobText)}}},
		{name: "invalid entry type 0", read: 0, entries: []craftEntry{
			{typ: 0, data: []byte(blobText)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := craftPack(t, f, tc.entries)
			for _, cache := range []*DeltaCache{nil, NewDeltaCache(1 << 20)} {
				opts := tc.opts
				opts.Cache = cache
				p := c.open(t, f, opts)
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				typ, data, err := p.ReadAt(c.offs[tc.read])
				runtime.ReadMemStats(&after)
				if err == nil {
					t.Fatalf("ReadAt succeeded: %v, %d bytes; want an error", typ, len(data))
				}
				want := ErrCorrupt
				if tc.tooBig {
					want = ErrTooLarge
				}
				if !errors.Is(err, want) {
					t.Errorf("ReadAt err = %v; want %v", err, want)
				}
				if strings.Count(err.Error(), "pack: ") > 1 {
					t.Errorf("error repeats its prefix: %v", err)
				}
				if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
					t.Errorf("ReadAt allocated %d bytes; want at most 16 MiB", alloc)
				}
				if _, _, err := p.ReadObject(c.ids[tc.read]); err == nil {
					t.Errorf("ReadObject succeeded where ReadAt failed")
				}
			}
		})
	}
}

// TestStatCorrupt checks that StatObject fails on broken chains without
// inflating whole objects.
func TestStatCorrupt(t *testing.T) {
	f := oid.SHA1
	n := uint64(len(blobText))
	blob := craftEntry{typ: object.Blob, data: []byte(blobText)}
	copyAll := delta(n, n, 0x90, byte(n))
	for _, tc := range []struct {
		name    string
		entries []craftEntry
		read    int
		opts    Options
	}{
		{name: "ref-delta to a missing base", read: 1, entries: []craftEntry{blob,
			{typ: object.RefDelta, data: copyAll, baseID: fakeID(f, 77)}}},
		{name: "ref-delta cycle", read: 1, entries: []craftEntry{blob,
			{typ: object.RefDelta, data: copyAll, baseID: fakeID(f, 51), id: fakeID(f, 52)},
			{typ: object.RefDelta, data: copyAll, baseID: fakeID(f, 52), id: fakeID(f, 51)}}},
		{name: "chain deeper than the limit", read: 3, opts: Options{MaxDeltaDepth: 2}, entries: []craftEntry{blob,
			{typ: object.OfsDelta, data: copyAll, base: 0},
			{typ: object.OfsDelta, data: copyAll, base: 1},
			{typ: object.OfsDelta, data: copyAll, base: 2}}},
		{name: "ofs-delta to itself", read: 1, entries: []craftEntry{blob,
			{typ: object.OfsDelta, data: copyAll, rel: 0, relSet: true}}},
		{name: "bad zlib header in delta", read: 1, entries: []craftEntry{blob,
			{typ: object.OfsDelta, data: copyAll, base: 0, z: []byte{0x78, 0, 0, 0}}}},
		{name: "delta without sizes", read: 1, entries: []craftEntry{blob,
			{typ: object.OfsDelta, data: []byte{0x80}, base: 0}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := craftPack(t, f, tc.entries)
			p := c.open(t, f, tc.opts)
			if typ, size, err := p.StatObject(c.ids[tc.read]); !errors.Is(err, ErrCorrupt) {
				t.Errorf("StatObject = %v, %d, %v; want ErrCorrupt", typ, size, err)
			}
		})
	}
}

// TestChainWithinLimit reads a chain exactly as long as the limit.
func TestChainWithinLimit(t *testing.T) {
	f := oid.SHA1
	n := uint64(len(blobText))
	copyAll := delta(n, n, 0x90, byte(n))
	entries := []craftEntry{{typ: object.Blob, data: []byte(blobText)}}
	for i := 0; i < 3; i++ {
		entries = append(entries, craftEntry{typ: object.OfsDelta, data: copyAll, base: i})
	}
	c := craftPack(t, f, entries)
	p := c.open(t, f, Options{MaxDeltaDepth: 3})
	if typ, data, err := p.ReadAt(c.offs[3]); err != nil || typ != object.Blob || string(data) != blobText {
		t.Errorf("ReadAt(depth 3) = %v, %q, %v; want blob %q", typ, data, err, blobText)
	}
	if typ, size, err := p.StatObject(c.ids[3]); err != nil || typ != object.Blob || size != int64(n) {
		t.Errorf("StatObject(depth 3) = %v, %d, %v", typ, size, err)
	}
}

// TestEntryCorrupt checks Entry on offsets that are not entries and on
// indexes whose offsets overlap.
func TestEntryCorrupt(t *testing.T) {
	f := oid.SHA1
	c := craftPack(t, f, validEntries(f))
	p := c.open(t, f, Options{})
	for _, off := range []uint64{0, 11, c.offs[1] + 1, uint64(len(c.pack)) - 20, uint64(len(c.pack)), 1 << 62} {
		if e, err := p.Entry(off); err == nil {
			t.Errorf("Entry(%d) = %+v; want an error", off, e)
		}
		if _, _, err := p.ReadAt(off); err == nil && off != c.offs[1]+1 {
			t.Errorf("ReadAt(%d) succeeded", off)
		}
		if id, ok := p.IDAt(off); ok {
			t.Errorf("IDAt(%d) = %s; want none", off, id)
		}
	}
	// An index listing two objects at one offset cannot be ordered.
	ents := []IndexEntry{{ID: fakeID(f, 1), Offset: 12}, {ID: fakeID(f, 2), Offset: 12}, {ID: fakeID(f, 3), Offset: c.offs[2]}}
	var idx bytes.Buffer
	WriteIndex(&idx, f, ents, c.pack[len(c.pack)-f.Size():])
	x, _ := ParseIndex(idx.Bytes(), f)
	q, err := newPack("dup.pack", &mapping{data: c.pack}, x, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.Entry(12); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Entry with repeated offsets err = %v; want ErrCorrupt", err)
	}
	if _, ok := q.PackPos(fakeID(f, 1)); ok {
		t.Errorf("PackPos with repeated offsets succeeded")
	}
	if _, err := q.IDAtPackPos(0); err == nil {
		t.Errorf("IDAtPackPos with repeated offsets succeeded")
	}
	// An offset beyond the pack.
	for i := range ents {
		if ents[i].ID == fakeID(f, 2) {
			ents[i].Offset = uint64(len(c.pack)) + 100
		}
	}
	idx.Reset()
	WriteIndex(&idx, f, ents, c.pack[len(c.pack)-f.Size():])
	x, _ = ParseIndex(idx.Bytes(), f)
	q, _ = newPack("far.pack", &mapping{data: c.pack}, x, Options{})
	if _, err := q.Entry(12); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Entry with an offset past the pack err = %v; want ErrCorrupt", err)
	}
	if _, _, err := q.ReadObject(fakeID(f, 2)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("ReadObject at an offset past the pack err = %v; want ErrCorrupt", err)
	}
}

// TestReadAllocs guards the allocation count of reads.
func TestReadAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	f := oid.SHA1
	c := craftPack(t, f, validEntries(f))
	p := c.open(t, f, Options{})
	p.ReadAt(c.offs[0])
	if a := testing.AllocsPerRun(50, func() { p.ReadAt(c.offs[0]) }); a > 1 {
		t.Errorf("ReadAt(whole object) allocates %v times; want 1 (the result)", a)
	}
	if a := testing.AllocsPerRun(50, func() { p.StatObject(c.ids[2]) }); a > 0 {
		t.Errorf("StatObject(delta) allocates %v times; want 0", a)
	}
	if a := testing.AllocsPerRun(50, func() { p.ReadAt(c.offs[2]) }); a > 3 {
		t.Errorf("ReadAt(chain of 2) allocates %v times; want at most 3", a)
	}
}
