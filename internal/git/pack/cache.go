package pack

import (
	"sync"

	"gotd/internal/git/object"
)

// DeltaCache keeps recently inflated delta bases, so that reading the
// objects of one delta chain does not inflate and rebuild its lower
// levels again and again. It is keyed by pack and offset, bounded by
// the total size of the data it holds (least recently used entries go
// first), and safe for concurrent use by many goroutines and packs. A
// nil *DeltaCache caches nothing.
//
// The cache is split into shards, each with its own lock and an equal
// share of the budget, so that parallel readers rarely contend; an
// object larger than half a shard's share is not cached.
type DeltaCache struct {
	shards []cacheShard
}

// cacheShardBytes is the budget per shard the cache aims for; small
// caches have one shard so that they can still hold sizeable objects.
const (
	cacheShardBytes = 8 << 20
	maxCacheShards  = 16
)

type cacheKey struct {
	pack uint64 // Pack.id: unique per Open, never reused
	off  uint64
}

type cacheNode struct {
	key        cacheKey
	t          object.Type
	data       []byte
	prev, next *cacheNode
}

type cacheShard struct {
	mu    sync.Mutex
	max   int64
	size  int64
	items map[cacheKey]*cacheNode
	lru   cacheNode // sentinel: lru.next is the most recently used
}

// cacheNodeCost is what each cached object is charged on top of its
// data, for its node and map slot, so that many empty objects cannot
// grow the cache without bound.
const cacheNodeCost = 96

// NewDeltaCache returns a cache holding at most maxBytes of object data
// and bookkeeping. A maxBytes of 0 or less gives a cache that holds
// nothing.
func NewDeltaCache(maxBytes int64) *DeltaCache {
	n := int(maxBytes / cacheShardBytes)
	n = max(1, min(n, maxCacheShards))
	c := &DeltaCache{shards: make([]cacheShard, n)}
	for i := range c.shards {
		s := &c.shards[i]
		s.max = max(0, maxBytes/int64(n))
		s.items = make(map[cacheKey]*cacheNode)
		s.lru.next, s.lru.prev = &s.lru, &s.lru
	}
	return c
}

func (c *DeltaCache) shard(k cacheKey) *cacheShard {
	// Offsets of neighbouring objects differ in their low bits; mix in
	// the pack so that packs do not all start on the same shard.
	h := (k.off ^ k.pack*0x9e3779b97f4a7c15) * 0xff51afd7ed558ccd
	return &c.shards[(h>>32)%uint64(len(c.shards))]
}

// get returns the cached object at (pack, off). The data is shared with
// the cache and other readers: the caller must not modify it.
func (c *DeltaCache) get(pack, off uint64) (object.Type, []byte, bool) {
	if c == nil {
		return 0, nil, false
	}
	k := cacheKey{pack, off}
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.items[k]
	if !ok {
		return 0, nil, false
	}
	s.unlink(n)
	s.pushFront(n)
	return n.t, n.data, true
}

// put caches data, which from now on nobody may modify, evicting the
// least recently used objects to stay within the budget.
func (c *DeltaCache) put(pack, off uint64, t object.Type, data []byte) {
	if c == nil {
		return
	}
	k := cacheKey{pack, off}
	s := c.shard(k)
	cost := int64(len(data)) + cacheNodeCost
	if cost > s.max/2 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.items[k]; ok {
		return
	}
	n := &cacheNode{key: k, t: t, data: data}
	s.items[k] = n
	s.pushFront(n)
	s.size += cost
	for s.size > s.max {
		old := s.lru.prev
		s.unlink(old)
		delete(s.items, old.key)
		s.size -= int64(len(old.data)) + cacheNodeCost
	}
}

// Purge empties the cache, for a reader done with the walk that filled
// it whose next stage reads few deltas: the bases become garbage at once
// rather than staying live until newer ones evict them. The budget is
// unchanged.
func (c *DeltaCache) Purge() {
	if c == nil {
		return
	}
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		clear(s.items)
		s.lru.next, s.lru.prev = &s.lru, &s.lru
		s.size = 0
		s.mu.Unlock()
	}
}

// size returns the bytes of object data and bookkeeping held.
func (c *DeltaCache) size() int64 {
	if c == nil {
		return 0
	}
	var total int64
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		total += s.size
		s.mu.Unlock()
	}
	return total
}

func (s *cacheShard) unlink(n *cacheNode) {
	n.prev.next, n.next.prev = n.next, n.prev
	n.prev, n.next = nil, nil
}

func (s *cacheShard) pushFront(n *cacheNode) {
	n.prev, n.next = &s.lru, s.lru.next
	s.lru.next.prev = n
	s.lru.next = n
}
