package receive

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
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
	named  *oid.BoundedSet // nil until begin, and once broken
	broken bool            // an object did not parse, or too many ids: the pack must be walked
}

// maxClosure bounds the objects of a pack whose closure is collected
// (about 26 MiB of table for SHA-1, while the indexer holds its own): a
// larger pack is walked, as it was before closures, once the indexer
// has let go of its memory. A variable for tests.
var maxClosure = 1 << 20

func newClosure(f oid.Format) *closure {
	return &closure{f: f}
}

// begin sizes the closure for a pack of count objects, the count its
// header declares. Its objects can name no more than count distinct
// ids if the pack holds them all, so the set never grows: one more id
// and the pack is walked.
func (c *closure) begin(count uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken || c.named != nil {
		return
	}
	if int64(count) > int64(maxClosure) {
		c.broken = true
		return
	}
	c.named = oid.NewBoundedSet(c.f, int(count))
}

// maxBatch is how many ids an object's parse collects before it adds
// them under the lock.
const maxBatch = 256

// add records the ids that data, a checked object of type t, names.
func (c *closure) add(t object.Type, data []byte) {
	hs := c.f.Size()
	var batch [maxBatch * oid.MaxSize]byte
	n := 0
	ok := names(c.f, t, data, func(id []byte) bool {
		if n == maxBatch {
			c.flush(batch[:n*hs], hs)
			n = 0
		}
		copy(batch[n*hs:], id)
		n++
		return true
	})
	c.flush(batch[:n*hs], hs)
	if !ok {
		// What the checks let through (a severity lowered) and this
		// does not read: the walk decides.
		c.mu.Lock()
		c.broken, c.named = true, nil
		c.mu.Unlock()
	}
}

// names calls name with each id (raw bytes, valid only during the
// call) that data, an object of type t and format f, names: a commit's
// tree and parents, a tree's entries but submodules, a tag's object.
// It stops when name returns false, and reports false then or when
// data does not parse.
func names(f oid.Format, t object.Type, data []byte, name func(id []byte) bool) bool {
	hs := f.Size()
	stopped := false
	// hexID parses "<prefix><hex>\n" at the start of b, names it and
	// returns the rest; ok is false when b does not start so, or name
	// said stop.
	hexID := func(b []byte, prefix string) (rest []byte, ok bool) {
		b, ok = bytes.CutPrefix(b, []byte(prefix))
		if !ok || len(b) < 2*hs+1 || b[2*hs] != '\n' {
			return nil, false
		}
		id, err := oid.ParseHexBytes(f, b[:2*hs])
		if err != nil {
			return nil, false
		}
		if !name(id.Bytes()) {
			stopped = true
			return nil, false
		}
		return b[2*hs+1:], true
	}
	switch t {
	case object.Commit:
		// Every "parent " line must hold an id: one that does not
		// fails the commit, as the commit parser and C Git fail it,
		// rather than end the list of parents.
		b, ok := hexID(data, "tree ")
		for ok && bytes.HasPrefix(b, []byte("parent ")) {
			b, ok = hexID(b, "parent ")
		}
		return ok && !stopped
	case object.Tag:
		_, ok := hexID(data, "object ")
		return ok
	case object.Tree:
		it := object.NewTreeIter(f, data)
		for {
			mode, _, id, more := it.NextRaw()
			if !more {
				break
			}
			if mode != object.ModeGitlink && !name(id) {
				return false
			}
		}
		return it.Err() == nil
	}
	return true
}

// selfContained reports whether every object that p's commits, trees
// and tags name is in p, reading them in the pack's order: for a
// process that did not index p itself, what closure tells the one that
// did. It costs a read of every commit, tree and tag, but no set of
// what was seen, where a walk from the tips holds one of every object
// and a node for every commit (session_write's check of git.git's
// initial mirror: 40 MB of heap). The pack's pages leave the resident
// set every releaseEvery objects.
func selfContained(ctx context.Context, p *pack.Pack) (bool, error) {
	f := p.Format()
	hs := f.Size()
	// found remembers ids found lately, one a slot chosen by a seeded
	// hash: the trees that follow one another in a pack are mostly
	// versions of one directory, naming the same ids, and a search of
	// the index costs cache misses. Only a whole id equal to the
	// slot's counts as found.
	found := make([]byte, foundSlots*hs)
	seed := rand.Uint64()
	inPack := func(b []byte) bool {
		if oid.ZeroBytes(b) {
			// No object has the null id; and an empty slot, all
			// zeros, would take it for found.
			return false
		}
		i := int((binary.LittleEndian.Uint64(b)^seed)*0x9e3779b97f4a7c15>>(64-foundBits)) * hs
		slot := found[i : i+hs]
		if sameID(slot, b) {
			return true
		}
		if !p.HasObject(oid.MustFromBytes(f, b)) {
			return false
		}
		copy(slot, b)
		return true
	}
	// types holds each position's type, bases' known before their
	// deltas' in the pack's order (a ref-delta's base may come later:
	// then its chain is followed).
	count := p.Count()
	types := make([]object.Type, count)
	var buf []byte
	for pos := range count {
		if pos%checkEvery == 0 {
			if err := ctx.Err(); err != nil {
				return false, err
			}
		}
		if pos > 0 && pos%releaseEvery == 0 {
			if err := p.ReleasePages(); err != nil {
				return false, err
			}
		}
		off := p.OffsetAtPackPos(pos)
		e, err := p.Entry(off)
		if err != nil {
			return false, err
		}
		t := e.Type
		if !t.IsBase() {
			if t, err = baseType(p, e, types); err != nil {
				return false, err
			}
		}
		types[pos] = t
		if t == object.Blob {
			continue
		}
		t, data, err := p.ReadAtInto(off, buf)
		if err != nil {
			return false, err
		}
		buf = data[:0]
		if !names(f, t, data, inPack) {
			return false, nil
		}
	}
	return true, nil
}

// sameID reports whether a and b, ids of one format (20 or 32 bytes),
// are equal: word by word, where bytes.Equal's call was a seventh of
// selfContained's time on git.git.
func sameID(a, b []byte) bool {
	le := binary.LittleEndian
	if len(a) != len(b) || len(a) < 20 {
		return false
	}
	if le.Uint64(a) != le.Uint64(b) || le.Uint64(a[8:]) != le.Uint64(b[8:]) {
		return false
	}
	if len(a) == 20 {
		return le.Uint32(a[16:]) == le.Uint32(b[16:])
	}
	return bytes.Equal(a[16:], b[16:])
}

// checkEvery is how many objects selfContained reads between two looks
// at its context, as often as a walk looks: a pack of deltas that each
// rebuild a large tree may take seconds for a few hundred objects.
const checkEvery = 1 << 10

// foundBits sets the number of selfContained's slots of ids found
// lately: 2^16, 1.25 MiB of SHA-1 ids.
const (
	foundBits  = 16
	foundSlots = 1 << foundBits
)

// baseType returns the type of the delta e's chain: its base's, from
// types where a position on the way has one, else from the chain's end;
// every position on the way gets it in types, so that chains of
// reference deltas whose bases come later are followed once, not once
// per delta. A chain longer than pack.DefaultMaxDeltaDepth, or a loop,
// which a process writing the pack could make, is an error.
func baseType(p *pack.Pack, e pack.Entry, types []object.Type) (object.Type, error) {
	var way [16]int
	path := way[:0]
	t := object.Type(0)
	for depth := 0; t == 0; depth++ {
		if depth > pack.DefaultMaxDeltaDepth {
			return 0, fmt.Errorf("receive: delta chain at %d longer than %d", e.Offset, pack.DefaultMaxDeltaDepth)
		}
		base := e.BaseOffset
		if e.Type == object.RefDelta {
			off, ok := p.OffsetOf(e.BaseID)
			if !ok {
				return 0, fmt.Errorf("receive: delta at %d has base %s, which is not in the pack", e.Offset, e.BaseID)
			}
			base = off
		}
		pos, err := p.PackPosAt(base)
		if err != nil {
			return 0, err
		}
		if t = types[pos]; t != 0 {
			break
		}
		if e, err = p.Entry(base); err != nil {
			return 0, err
		}
		path = append(path, pos)
		if e.Type.IsBase() {
			t = e.Type
		}
	}
	for _, pos := range path {
		types[pos] = t
	}
	return t, nil
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
	if c.named == nil {
		// No header was read (begin was not called): nothing to
		// prove closure with.
		c.broken = true
		return
	}
	for len(b) > 0 {
		if !c.named.AddBytes(b[:hs]) {
			c.broken, c.named = true, nil
			return
		}
		b = b[hs:]
	}
}

// within reports whether p holds every object the pack's objects name.
func (c *closure) within(p *pack.Pack) bool {
	if c.broken || c.named == nil {
		return false
	}
	for id := range c.named.All() {
		if !p.HasObject(id) {
			return false
		}
	}
	return true
}
