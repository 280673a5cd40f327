package indexer

import (
	"bytes"
	"testing"
	"unsafe"
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
	for i := 0; i < 2*maxFree; i++ {
		w.put(make([]byte, 0, 1<<20+i))
	}
	kept := 0
	for _, b := range w.free {
		kept += cap(b)
	}
	if want := 4 << 20; kept > want {
		t.Errorf("got %d bytes of %d buffers kept; want at most %d", kept, len(w.free), want)
	}
	if kept == 0 {
		t.Fatalf("got no buffer kept; want some")
	}
	// What is kept is reused, and given back.
	b := w.get(1 << 20)
	if cap(b) < 1<<20 {
		t.Fatalf("got a buffer of %d bytes; want at least %d", cap(b), 1<<20)
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
