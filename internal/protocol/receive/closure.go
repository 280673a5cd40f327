package receive

import (
	"bytes"
	"sync"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/pack"
)

// closure collects the ids that the commits, trees and tags of a pack
// name (a commit's tree and parents, a tree's entries but submodules, a
// tag's object) as the indexer checks them, so that Ingest can tell a
// self-contained pack, whose every named object it holds, and so whose
// objects all reach only objects in it, without walking it again: what
// C Git's index-pack --check-self-contained-and-connected tells git
// clone. Its methods are safe for concurrent use.
type closure struct {
	f      oid.Format
	mu     sync.Mutex
	named  *oid.Set // nil once broken
	broken bool     // an object did not parse, or too many ids: the pack must be walked
}

// maxClosure bounds the ids a closure collects (about 60 MiB of table
// at most for SHA-1, while the indexer holds its own): a pack whose
// objects name more is walked, as it was before closures, once the
// indexer has let go of its memory. A variable for tests.
var maxClosure = 1 << 20

func newClosure(f oid.Format) *closure {
	return &closure{f: f, named: oid.NewSet(f, 1<<10)}
}

// maxBatch is how many ids an object's parse collects before it adds
// them under the lock.
const maxBatch = 256

// add records the ids that data, a checked object of type t, names.
func (c *closure) add(t object.Type, data []byte) {
	hs := c.f.Size()
	var batch [maxBatch * oid.MaxSize]byte
	n := 0
	push := func(id []byte) {
		if n == maxBatch {
			c.flush(batch[:n*hs], hs)
			n = 0
		}
		copy(batch[n*hs:], id)
		n++
	}
	// hexID parses "<prefix><hex>\n" at the start of b into the batch
	// and returns the rest; ok is false when b does not start so.
	hexID := func(b []byte, prefix string) (rest []byte, ok bool) {
		b, ok = bytes.CutPrefix(b, []byte(prefix))
		if !ok || len(b) < 2*hs+1 || b[2*hs] != '\n' {
			return nil, false
		}
		id, err := oid.ParseHexBytes(c.f, b[:2*hs])
		if err != nil {
			return nil, false
		}
		push(id.Bytes())
		return b[2*hs+1:], true
	}
	ok := true
	switch t {
	case object.Commit:
		var b []byte
		if b, ok = hexID(data, "tree "); ok {
			for more := true; more; {
				b, more = hexID(b, "parent ")
			}
		}
	case object.Tag:
		_, ok = hexID(data, "object ")
	case object.Tree:
		it := object.NewTreeIter(c.f, data)
		for {
			mode, _, id, more := it.NextRaw()
			if !more {
				break
			}
			if mode != object.ModeGitlink {
				push(id)
			}
		}
		ok = it.Err() == nil
	}
	c.flush(batch[:n*hs], hs)
	if !ok {
		// What the checks let through (a severity lowered) and this
		// does not read: the walk decides.
		c.mu.Lock()
		c.broken, c.named = true, nil
		c.mu.Unlock()
	}
}

// flush adds the ids packed in b, hs bytes each, to the set.
func (c *closure) flush(b []byte, hs int) {
	if len(b) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken {
		return
	}
	for len(b) > 0 {
		c.named.AddBytes(b[:hs])
		b = b[hs:]
	}
	if c.named.Len() > maxClosure {
		c.broken, c.named = true, nil
	}
}

// within reports whether p holds every object the pack's objects name.
func (c *closure) within(p *pack.Pack) bool {
	if c.broken {
		return false
	}
	for id := range c.named.All() {
		if !p.HasObject(id) {
			return false
		}
	}
	return true
}
