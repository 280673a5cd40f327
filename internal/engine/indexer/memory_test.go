package indexer

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
)

// TestEntrySize: the indexer keeps one entry per object of the pack,
// and its id apart in 20 or 32 bytes, so that a pack of 419,403
// objects (git.git) takes 21 MB of records instead of the 30 MB of
// 72-byte entries holding their oid.ID (doubled while they grew).
func TestEntrySize(t *testing.T) {
	if got, want := unsafe.Sizeof(entry{}), uintptr(32); got > want {
		t.Errorf("got an entry of %d bytes; want at most %d", got, want)
	}
}

// TestWorkerKeepsBounded: the result buffers a resolving worker keeps
// for reuse are bounded in bytes, not only in number, so that the
// largest results of a pack do not stay with each worker to the end.
func TestWorkerKeepsBounded(t *testing.T) {
	w := &worker{}
	size := maxFreeBytes / 8
	for i := 0; i < 2*maxFree; i++ {
		w.put(make([]byte, 0, size+i))
	}
	kept := 0
	for _, b := range w.free {
		kept += cap(b)
	}
	if want := maxFreeBytes; kept > want {
		t.Errorf("got %d bytes of %d buffers kept; want at most %d", kept, len(w.free), want)
	}
	if kept == 0 {
		t.Fatalf("got no buffer kept; want some")
	}
	// What is kept is reused, and given back.
	b := w.get(uint64(size))
	if cap(b) < size {
		t.Fatalf("got a buffer of %d bytes; want at least %d", cap(b), size)
	}
	w.put(b)
	if got := w.freeCap; got != kept {
		t.Errorf("got %d bytes counted as kept; want %d", got, kept)
	}
}

// TestIndexManyObjects indexes a pack of more objects than a chunk of
// ids holds, on one thread and on several (whose scan hands small
// objects' ids to the hash pipe while adding chunks), against git
// index-pack's index.
func TestIndexManyObjects(t *testing.T) {
	dir := repoWithHistory(t, "sha1", 800)
	p := packObjects(t, dir, "", "--all", "--revs", "--delta-base-offset")
	if n := int(p[8])<<24 | int(p[9])<<16 | int(p[10])<<8 | int(p[11]); n <= 2*idChunk {
		t.Fatalf("the pack has %d objects; want more than %d", n, 2*idChunk)
	}
	wantIdx, _ := gitIndexPack(t, dir, p)
	for _, threads := range []int{1, 3} {
		res, err := indexBytes(t, p, Options{Format: formatOf("sha1"), Threads: threads})
		if err != nil {
			t.Fatalf("threads=%d: Index: %v", threads, err)
		}
		if got := readFile(t, res.IndexPath); !bytes.Equal(got, wantIdx) {
			t.Errorf("threads=%d: idx differs from git index-pack's", threads)
		}
	}
}

// TestEntriesGrowToCount: the entries grow by doubling from what is
// allocated up front, but no further than the count the pack header
// declares, so that no slack is left beside them while deltas are
// resolved (append's own growth left up to a quarter of them unused);
// and Options.Begin is told that count once, before any object is
// checked.
func TestEntriesGrowToCount(t *testing.T) {
	defer func(n uint32) { maxPrealloc = n }(maxPrealloc)
	dir := repoWithHistory(t, "sha1", 150)
	p := packObjects(t, dir, "", "--all", "--revs", "--delta-base-offset")
	count := uint32(p[8])<<24 | uint32(p[9])<<16 | uint32(p[10])<<8 | uint32(p[11])
	if count < 1024 {
		t.Fatalf("the pack has %d objects; want 1024 or more", count)
	}
	// One entry short: the last growth, append's by a quarter, is
	// the one bounded.
	maxPrealloc = count - 1
	path := filepath.Join(t.TempDir(), "p.pack")
	if err := os.WriteFile(path, p, 0o644); err != nil {
		t.Fatal(err)
	}
	var begun []uint32
	checked := 0
	opts := Options{Format: formatOf("sha1"), Dir: filepath.Dir(path), Threads: 1,
		Begin: func(n uint32) {
			if checked > 0 {
				t.Errorf("Begin called after %d objects were checked", checked)
			}
			begun = append(begun, n)
		},
		Check: func(object.Type, oid.ID, []byte) error { checked++; return nil },
	}
	ix, err := newIndexer(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ix.file = f
	defer ix.cleanup()
	if err := ix.scan(newStreamReader(f, opts.Format.New(), nil, math.MaxUint64, false), true); err != nil {
		t.Fatal(err)
	}
	if got := len(ix.entries); got != int(count) {
		t.Fatalf("got %d entries; want %d", got, count)
	}
	// The allocator rounds a large allocation up to a page.
	if got, slack := cap(ix.entries), 8192/int(unsafe.Sizeof(entry{})); got >= int(count)+slack {
		t.Errorf("got entries of capacity %d; want %d, the pack's count, and less than %d more", got, count, slack)
	}
	if len(begun) != 1 || begun[0] != count {
		t.Errorf("got Begin called with %v; want [%d]", begun, count)
	}
}
