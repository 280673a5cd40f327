package admit

import (
	"sync"
	"time"
)

// Buckets are token buckets per key (an address): each holds up to
// burst tokens and gains one every refill. Allow says whether a key has
// a token left, Take spends one: a caller spends one per failure and
// refuses a key without tokens before doing the work a failure costs.
// At most maxKeys keys are tracked: when that many are, those whose
// bucket has refilled are forgotten, and if none has, all are (a flood
// from that many addresses is bounded by the callers' other limits).
// Its methods may be called from any goroutine.
type Buckets struct {
	burst   float64
	refill  time.Duration
	maxKeys int
	now     func() time.Time // time.Now; tests set it

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time // when tokens was counted
}

// NewBuckets returns buckets of burst tokens, one more every refill,
// for at most maxKeys keys.
func NewBuckets(burst int, refill time.Duration, maxKeys int) *Buckets {
	return &Buckets{burst: float64(burst), refill: refill, maxKeys: maxKeys, now: time.Now,
		buckets: map[string]*bucket{}}
}

// level returns key's bucket with its tokens counted now, nil for a
// full one.
func (b *Buckets) level(key string, now time.Time) *bucket {
	k := b.buckets[key]
	if k == nil {
		return nil
	}
	k.tokens += float64(now.Sub(k.at)) / float64(b.refill)
	k.at = now
	if k.tokens >= b.burst {
		delete(b.buckets, key)
		return nil
	}
	return k
}

// Allow reports whether key has a token.
func (b *Buckets) Allow(key string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	k := b.level(key, b.now())
	return k == nil || k.tokens >= 1
}

// Take spends one of key's tokens, if it has one.
func (b *Buckets) Take(key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	k := b.level(key, now)
	if k == nil {
		if len(b.buckets) >= b.maxKeys {
			for other := range b.buckets {
				b.level(other, now)
			}
			if len(b.buckets) >= b.maxKeys {
				clear(b.buckets)
			}
		}
		k = &bucket{tokens: b.burst, at: now}
		b.buckets[key] = k
	}
	if k.tokens >= 1 {
		k.tokens--
	}
}
