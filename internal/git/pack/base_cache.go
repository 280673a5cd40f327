package pack

import (
	"container/list"
	"sync"

	"gotd/internal/git/object"
)

// DeltaCache keeps recently inflated delta bases so that reading many
// objects of one delta chain does not inflate its base again and again.
// It is bounded by the total size of the data it holds, evicting the
// least recently used entries, and is safe for concurrent use. A nil
// *DeltaCache caches nothing.
type DeltaCache struct {
	mu    sync.Mutex
	max   int64
	size  int64
	lru   *list.List
	items map[cacheKey]*list.Element
}

type cacheKey struct {
	p   *Pack
	off uint64
}

type cacheItem struct {
	key  cacheKey
	t    object.Type
	data []byte
}

// NewDeltaCache returns a cache holding at most maxBytes of object data.
func NewDeltaCache(maxBytes int64) *DeltaCache {
	return &DeltaCache{max: maxBytes, lru: list.New(), items: make(map[cacheKey]*list.Element)}
}

// get returns the cached object at (p, off). The data is shared: callers
// must not modify it.
func (c *DeltaCache) get(p *Pack, off uint64) (object.Type, []byte, bool) {
	if c == nil {
		return 0, nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[cacheKey{p, off}]
	if !ok {
		return 0, nil, false
	}
	c.lru.MoveToFront(el)
	it := el.Value.(*cacheItem)
	return it.t, it.data, true
}

// put caches data, which the caller must no longer modify. Objects larger
// than a quarter of the cache are not kept.
func (c *DeltaCache) put(p *Pack, off uint64, t object.Type, data []byte) {
	if c == nil || int64(len(data)) > c.max/4 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	key := cacheKey{p, off}
	if _, ok := c.items[key]; ok {
		return
	}
	c.items[key] = c.lru.PushFront(&cacheItem{key, t, data})
	c.size += int64(len(data))
	for c.size > c.max {
		el := c.lru.Back()
		it := el.Value.(*cacheItem)
		c.lru.Remove(el)
		delete(c.items, it.key)
		c.size -= int64(len(it.data))
	}
}
