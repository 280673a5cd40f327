package pack

import (
	"sync"
	"testing"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
)

func TestDeltaCacheBound(t *testing.T) {
	for _, max := range []int64{0, 1000, 64 << 10, 100 << 20} {
		c := NewDeltaCache(max)
		for i := uint64(0); i < 5000; i++ {
			c.put(1, i, object.Blob, make([]byte, i%300))
			if got := c.size(); got > max {
				t.Fatalf("max %d: size %d after %d puts", max, got, i+1)
			}
		}
		if max == 0 {
			if _, _, ok := c.get(1, 4999); ok {
				t.Errorf("a cache of 0 bytes holds an object")
			}
		}
	}
}

func TestDeltaCacheLRU(t *testing.T) {
	// One shard of 10 KiB: objects of 1 KiB, so about 9 fit.
	c := NewDeltaCache(10 << 10)
	if len(c.shards) != 1 {
		t.Fatalf("shards = %d; want 1", len(c.shards))
	}
	data := func(i byte) []byte {
		b := make([]byte, 1<<10)
		b[0] = i
		return b
	}
	c.put(1, 0, object.Tree, data(0))
	for i := uint64(1); i < 100; i++ {
		// Keep offset 0 in use; everything else ages out.
		if typ, d, ok := c.get(1, 0); !ok || typ != object.Tree || d[0] != 0 {
			t.Fatalf("after %d puts: get(1, 0) = %v, %v; want the tree", i, typ, ok)
		}
		c.put(1, i, object.Blob, data(byte(i)))
	}
	if _, _, ok := c.get(1, 1); ok {
		t.Errorf("the oldest object is still cached")
	}
	if _, d, ok := c.get(1, 99); !ok || d[0] != 99 {
		t.Errorf("the newest object is not cached")
	}
	if _, _, ok := c.get(2, 99); ok {
		t.Errorf("another pack's object was found")
	}
	// Too large for the cache: not kept, nothing evicted.
	c.put(1, 1000, object.Blob, make([]byte, 8<<10))
	if _, _, ok := c.get(1, 1000); ok {
		t.Errorf("an object larger than half the cache was kept")
	}
	if _, _, ok := c.get(1, 99); !ok {
		t.Errorf("a rejected object evicted others")
	}
}

func TestDeltaCachePurge(t *testing.T) {
	c := NewDeltaCache(64 << 20)
	for i := uint64(0); i < 1000; i++ {
		c.put(1, i, object.Blob, make([]byte, 100))
	}
	c.Purge()
	if got := c.size(); got != 0 {
		t.Errorf("size after Purge = %d; want 0", got)
	}
	for i := uint64(0); i < 1000; i++ {
		if _, _, ok := c.get(1, i); ok {
			t.Fatalf("get(1, %d) after Purge found an object", i)
		}
	}
	// The budget is the same: the cache fills again.
	c.put(1, 7, object.Tree, []byte("tree"))
	if typ, data, ok := c.get(1, 7); !ok || typ != object.Tree || string(data) != "tree" {
		t.Errorf("get(1, 7) after Purge and put = %v, %q, %v; want tree, \"tree\", true", typ, data, ok)
	}
	var nilCache *DeltaCache
	nilCache.Purge()
}

func TestDeltaCacheNil(t *testing.T) {
	var c *DeltaCache
	c.put(1, 1, object.Blob, []byte("x"))
	if _, _, ok := c.get(1, 1); ok {
		t.Errorf("nil cache returned an object")
	}
	if c.size() != 0 {
		t.Errorf("nil cache has a size")
	}
}

// TestDeltaCacheConcurrent runs many readers and writers; run with -race.
func TestDeltaCacheConcurrent(t *testing.T) {
	c := NewDeltaCache(64 << 20)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g uint64) {
			defer wg.Done()
			for i := uint64(0); i < 2000; i++ {
				off := (i * 31) % 500
				if typ, d, ok := c.get(g%3, off); ok && (typ != object.Blob || len(d) != int(off%64)) {
					t.Errorf("get(%d, %d) = %v, %d bytes", g%3, off, typ, len(d))
					return
				}
				c.put(g%3, off, object.Blob, make([]byte, off%64))
			}
		}(uint64(g))
	}
	wg.Wait()
	if got := c.size(); got > 64<<20 {
		t.Errorf("size %d over budget", got)
	}
}

// TestReadAtCacheOwnership checks that ReadAt fills the cache with the
// bases of chains it resolves and that callers own what it returns, even
// when it comes from the cache.
func TestReadAtCacheOwnership(t *testing.T) {
	f := oid.SHA1
	c := craftPack(t, f, validEntries(f))
	cache := NewDeltaCache(1 << 20)
	p := c.open(t, f, Options{Cache: cache})
	if _, _, err := p.ReadAt(c.offs[2]); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{blobText, blobText2} {
		if _, d, ok := cache.get(p.id, c.offs[i]); !ok || string(d) != want {
			t.Errorf("base %d not cached after reading the chain", i)
		}
	}
	for round := 0; round < 2; round++ {
		for i, want := range []string{blobText, blobText2, "hello"} {
			_, data, err := p.ReadAt(c.offs[i])
			if err != nil || string(data) != want {
				t.Fatalf("round %d: ReadAt(%d) = %q, %v; want %q", round, i, data, err, want)
			}
			for j := range data {
				data[j] = 'X'
			}
		}
	}
}
