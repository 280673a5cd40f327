package packer

import (
	"bufio"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"runtime"
	"sync"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/pack"
)

// Source is what the writer needs from a repository. When
// Options.Threads allows more than one, its methods are called from
// several goroutines at once and must be safe for that.
type Source interface {
	// ReadObject returns the type and content of id. The writer does
	// not modify the content and drops it when done.
	ReadObject(id oid.ID) (object.Type, []byte, error)
	// LocateObject tells where a stored copy of id lives so its bytes
	// can be reused; ok is false for loose objects. The pack must stay
	// open until Write returns.
	LocateObject(id oid.ID) (p *pack.Pack, offset uint64, ok bool)
}

// ObjectSizer is an optional interface of a Source: the type and size
// of an object without its content (for a loose object, from the start
// of its inflated header). When the Source has it, Write learns the size
// of loose delta candidates without reading them whole twice.
type ObjectSizer interface {
	StatObject(id oid.ID) (object.Type, int64, error)
}

// ObjectOpener is an optional interface of a Source: a reader of an
// object's content (repo.Repo.OpenObject), which ends with io.EOF only
// after exactly size bytes of sound data. When the Source has it, a
// large loose object is compressed as it is read rather than read
// whole.
type ObjectOpener interface {
	OpenObject(id oid.ID) (object.Type, int64, io.ReadCloser, error)
}

// Object is one object to send.
type Object struct {
	ID oid.ID
	// Type is the object's type (commit, tree, blob or tag); the caller
	// must know it.
	Type object.Type
	// NameHash is NameHash of the path the object was reached by (0 for
	// commits and for tags): the delta search sorts on it so that
	// versions of one file meet in its window.
	NameHash uint32
}

// NameHash is pack.NameHash, the key deltas are searched by.
func NameHash(path []byte) uint32 { return pack.NameHash(path) }

// NoCompression is the Options.Compression value that stores new
// entries uncompressed (zlib level 0).
const NoCompression = -2

// BigFileThreshold is the size above which objects are never delta
// candidates, as core.bigFileThreshold's default is in C Git.
const BigFileThreshold = 512 << 20

// Options control Write. The zero value of each field selects the
// default documented on it.
type Options struct {
	// Format is the repository's object format; required.
	Format oid.Format
	// OfsDelta says the receiver accepts ofs-delta entries
	// (ofs-delta capability); without it every delta is a ref-delta.
	OfsDelta bool
	// Thin allows deltas against Bases, objects the receiver has
	// and which are not sent. Bases are used only to keep stored deltas
	// against them (a new delta search does not consider them, as their
	// names are not known).
	Thin  bool
	Bases []oid.ID
	// ReuseDeltas keeps stored deltas whose base is also sent (or is in
	// Bases when Thin) instead of searching for new ones. Objects stored
	// whole are then sent as stored, without a search.
	ReuseDeltas bool
	// Window is the number of objects each object is compared against
	// in the delta search (default 10; negative disables the search)
	// and Depth the longest delta chain written (default 50, at most
	// 4095), as pack.window and pack.depth are in C Git.
	Window, Depth int
	// DeltaMemory bounds the memory the delta search holds: objects in
	// its windows, their indexes and the deltas kept for writing
	// (default 256 MiB). Deltas beyond it are recomputed when written;
	// objects too large for a window are sent without a new delta.
	DeltaMemory int64
	// Compression is the zlib level of entries the writer compresses:
	// 1 to 9, NoCompression, or 0 for zlib's default (as C Git's
	// pack.compression defaults to).
	Compression int
	// Threads bounds the goroutines of the delta search (default
	// GOMAXPROCS).
	Threads int
	// Progress, if set, is called as stages advance, with C Git's
	// stage names "Compressing objects" (the delta search; skipped when
	// there is nothing to search) and "Writing objects", and ends each
	// stage with done == total. Calls are serialised, possibly from
	// the search's goroutines, and made only when the percentage
	// changes; the function must not block for long.
	Progress func(stage string, done, total int)
	// Prefix, if set, is a stored pack of the same format whose entries
	// begin the pack, copied as stored in one run (as C Git reuses the
	// pack that leads a bitmap's order): the objects of objs it holds
	// are not written again, and a stored delta whose base it holds is
	// kept, against the copy. The objects of Prefix must be
	// self-contained (a pack on disk is) and are all sent whether objs
	// lists them or not; the caller must want them all. Its entries'
	// offsets do not change, as both headers have the same size, so its
	// offset deltas stay right; it requires OfsDelta, and no OnEntry.
	Prefix *pack.Pack
	// OnEntry, if not nil, is called after each entry is written with
	// its id, offset and the CRC-32 of its bytes: what the pack's .idx
	// records, so a caller writing the pack to disk can write the index
	// without reading the pack back. The CRC is computed only when
	// OnEntry is set.
	OnEntry func(pack.IndexEntry)
	// ReleasePages, for a writer that reads whole packs (a full
	// repack), lets the pages of the source packs read so far leave the
	// process's resident set every releaseEvery entries learnt about
	// and written (pack.Pack.ReleasePages): otherwise, by the end, every
	// source pack counts whole in the process's memory.
	ReleasePages bool
}

const (
	defaultWindow      = 10
	defaultDepth       = 50
	maxDepth           = 4095
	defaultDeltaMemory = 256 << 20
	// minDeltaSize is the size below which objects are not searched
	// for deltas: the delta header and entry would not be worth it.
	minDeltaSize = 50
)

// kind is how an entry is written.
type kind uint8

const (
	// kindWhole: the whole object, copied from its stored bytes when it
	// is stored whole, else read and compressed.
	kindWhole kind = iota
	// kindReuse: the stored delta, copied, with a new entry header.
	kindReuse
	// kindNew: a delta found by the search.
	kindNew
)

// entry is the writer's state for one object. It is kept small: Write
// holds one per object for the whole run.
type entry struct {
	id       oid.ID
	typ      object.Type
	kind     kind
	stored   object.Type // type of the stored entry; Invalid when loose
	hdrLen   uint8       // stored header length, ofs or base id included
	external bool        // a thin base: not sent
	prefixed bool        // sent with Options.Prefix, at out-1
	search   bool        // a delta search target
	baseOnly bool        // in the search as a base only
	nameHash uint32
	pack     int32  // index in writer.packs; -1 when loose
	base     int32  // delta base entry; -1 for none
	depth    uint16 // delta chain length
	height   uint16 // longest chain of kept stored deltas based on this entry
	size     uint64 // object size; known for search entries
	offset   uint64 // stored entry's offset
	end      uint64 // stored entry's end
	baseAt   uint64 // stored ofs-delta's base offset
	stSize   uint64 // size field of the stored entry
	dsize    uint64 // size of the new delta
	delta    []byte // the new delta when kept in memory
	out      uint64 // 1 + offset in the output; 0 until written
}

// writer is the state of one Write.
type writer struct {
	ctx   context.Context
	src   Source
	opts  Options
	ents  []entry
	ids   table // entries by id
	packs []*pack.Pack
	prog  *progress
	sent  int // entries [0, sent) are sent; the rest are thin bases or in the prefix
	// count is the number of objects in the pack: the prefix's and
	// those of [0, sent) not in it.
	count int
}

// Write writes a version 2 pack holding exactly objs to w and returns the
// pack checksum (the trailer). Duplicate ids are sent once. Objects are
// written in the given order (callers pass recency order), except that
// a delta's base, when sent, is written first; stored bytes are reused
// as described in the package comment. Write streams: besides one small
// record per object, its memory is bounded by Options.DeltaMemory and by
// the largest single object it must read to send (Source.ReadObject
// returns whole objects). On error the pack written so far is incomplete
// and the caller must discard it.
func Write(ctx context.Context, w io.Writer, src Source, objs []Object, opts Options) ([]byte, error) {
	if !opts.Format.Valid() {
		return nil, errors.New("packer: invalid object format")
	}
	if opts.Window == 0 {
		opts.Window = defaultWindow
	}
	if opts.Depth == 0 {
		opts.Depth = defaultDepth
	}
	opts.Depth = min(opts.Depth, maxDepth)
	if opts.DeltaMemory <= 0 {
		opts.DeltaMemory = defaultDeltaMemory
	}
	switch {
	case opts.Compression == 0:
		opts.Compression = -1 // zlib.DefaultCompression
	case opts.Compression == NoCompression:
		opts.Compression = 0
	case opts.Compression < 1 || opts.Compression > 9:
		return nil, fmt.Errorf("packer: invalid compression level %d", opts.Compression)
	}
	if opts.Threads <= 0 {
		opts.Threads = runtime.GOMAXPROCS(0)
	}
	if p := opts.Prefix; p != nil {
		switch {
		case p.Format() != opts.Format:
			return nil, fmt.Errorf("packer: prefix %s is not a %s pack", p.Path(), opts.Format)
		case !opts.OfsDelta:
			return nil, errors.New("packer: a prefix pack needs ofs-delta")
		case opts.OnEntry != nil:
			return nil, errors.New("packer: a prefix pack reports no entries")
		}
	}
	wr := &writer{ctx: ctx, src: src, opts: opts, prog: &progress{fn: opts.Progress}}
	if err := wr.prepare(objs); err != nil {
		return nil, fmt.Errorf("packer: %w", err)
	}
	if err := wr.findDeltas(); err != nil {
		return nil, fmt.Errorf("packer: %w", err)
	}
	sum, err := wr.write(w)
	if err != nil {
		return nil, fmt.Errorf("packer: %w", err)
	}
	return sum, nil
}

// releaseEvery is how many entries go between two releases of the
// source packs' pages with Options.ReleasePages.
const releaseEvery = 1 << 14

// releasePages releases the pages of the source packs met so far, with
// Options.ReleasePages. A failure only costs memory.
func (wr *writer) releasePages() {
	if !wr.opts.ReleasePages {
		return
	}
	for _, p := range wr.packs {
		p.ReleasePages()
	}
}

// prepare builds the entries, learns where each object is stored and
// decides which stored deltas are kept.
func (wr *writer) prepare(objs []Object) error {
	f := wr.opts.Format
	nbases := 0
	if wr.opts.Thin {
		nbases = len(wr.opts.Bases)
	}
	// With a prefix, each sent object may add the prefix entry of its
	// stored delta's base (inPrefix), which must not move the entries.
	nprefix := 0
	if wr.opts.Prefix != nil {
		nprefix = len(objs)
	}
	wr.ents = make([]entry, 0, len(objs)+nbases+nprefix)
	wr.ids.init(len(objs) + nbases + nprefix)
	for _, o := range objs {
		if o.ID.Format() != f {
			return fmt.Errorf("object %s is not a %s id", o.ID, f)
		}
		if !o.Type.IsBase() {
			return fmt.Errorf("object %s has invalid type %s", o.ID, o.Type)
		}
		if len(wr.ents) >= 1<<31-2 {
			return errors.New("too many objects for one pack")
		}
		n := int32(len(wr.ents))
		wr.ents = append(wr.ents, entry{id: o.ID, typ: o.Type, nameHash: o.NameHash, pack: -1, base: -1})
		if wr.ids.insertID(wr.ents, n) != n {
			wr.ents = wr.ents[:n] // sent once
		}
	}
	sent := len(wr.ents)
	wr.sent = sent
	for _, id := range wr.opts.Bases[:nbases] {
		if id.Format() != f || len(wr.ents) >= 1<<31-2 {
			continue
		}
		n := int32(len(wr.ents))
		wr.ents = append(wr.ents, entry{id: id, external: true, pack: -1, base: -1})
		if wr.ids.insertID(wr.ents, n) != n {
			wr.ents = wr.ents[:n]
		}
	}

	// Learn where every sent object is stored.
	packIndex := map[*pack.Pack]int32{}
	var lastPack *pack.Pack
	lastIndex := int32(-1)
	var at table
	at.init(sent)
	for i := range wr.ents[:sent] {
		if i&1023 == 0 {
			if err := wr.ctx.Err(); err != nil {
				return err
			}
		}
		if i%releaseEvery == releaseEvery-1 {
			wr.releasePages()
		}
		e := &wr.ents[i]
		if wr.opts.Prefix != nil {
			// Sent with the prefix, wherever else it is stored.
			if off, ok := wr.opts.Prefix.OffsetOf(e.id); ok {
				e.prefixed, e.out = true, off+1
				continue
			}
		}
		p, off, ok := wr.src.LocateObject(e.id)
		if !ok {
			continue
		}
		pe, err := p.Entry(off)
		if err != nil {
			return fmt.Errorf("object %s in %s: %w", e.id, p.Path(), err)
		}
		if p != lastPack {
			n, seen := packIndex[p]
			if !seen {
				n = int32(len(wr.packs))
				packIndex[p] = n
				wr.packs = append(wr.packs, p)
			}
			lastPack, lastIndex = p, n
		}
		e.pack = lastIndex
		e.offset = off
		e.end = pe.End
		e.stored = pe.Type
		e.stSize = pe.Size
		e.hdrLen = uint8(pe.HeaderLen)
		switch pe.Type {
		case object.OfsDelta:
			e.baseAt = pe.BaseOffset
		case object.RefDelta:
			e.baseAt = 0
			if b := wr.ids.findID(wr.ents, &pe.BaseID); b >= 0 {
				e.base = b
			} else if b := wr.inPrefix(pe.BaseID); b >= 0 {
				e.base = b
			} else {
				e.base = -2 // base not sent
			}
		default:
			if pe.Type != e.typ {
				return fmt.Errorf("object %s is stored as a %s, not a %s", e.id, pe.Type, e.typ)
			}
			e.size = pe.Size
		}
		at.insertAt(wr.ents, int32(i))
	}

	// Keep the stored deltas whose base is sent or is a thin base.
	for i := range wr.ents[:sent] {
		e := &wr.ents[i]
		switch e.stored {
		case object.OfsDelta:
			// Usually the base is sent from the same place; else its id
			// tells whether it is sent (stored elsewhere) or thin.
			b := at.findAt(wr.ents, e.pack, e.baseAt)
			if b < 0 {
				p := wr.packs[e.pack]
				id, ok := p.IDAt(e.baseAt)
				if !ok {
					return fmt.Errorf("object %s in %s: no object at delta base offset %d", e.id, p.Path(), e.baseAt)
				}
				if b = wr.ids.findID(wr.ents, &id); b < 0 {
					b = wr.inPrefix(id)
				}
			}
			e.base = b
		case object.RefDelta:
		default:
			continue
		}
		if e.base >= 0 && wr.opts.ReuseDeltas {
			e.kind = kindReuse
		} else {
			e.base = -1
		}
	}
	wr.limitReusedChains(sent)
	wr.count = sent
	if p := wr.opts.Prefix; p != nil {
		wr.count = p.Count()
		for i := range wr.ents[:sent] {
			if !wr.ents[i].prefixed {
				wr.count++
			}
		}
		if uint64(wr.count) >= 1<<32 {
			return errors.New("too many objects for one pack")
		}
	}
	return nil
}

// inPrefix returns the entry of id when Options.Prefix holds it, added
// as already written at its stored offset if it has none yet, or -1.
func (wr *writer) inPrefix(id oid.ID) int32 {
	p := wr.opts.Prefix
	if p == nil {
		return -1
	}
	if b := wr.ids.findID(wr.ents, &id); b >= 0 {
		return b
	}
	off, ok := p.OffsetOf(id)
	if !ok {
		return -1
	}
	if len(wr.ents) == cap(wr.ents) {
		// prepare made room for one per sent object; never more.
		return -1
	}
	n := int32(len(wr.ents))
	wr.ents = append(wr.ents, entry{id: id, prefixed: true, out: off + 1, pack: -1, base: -1})
	wr.ids.insertID(wr.ents, n)
	return n
}

// limitReusedChains drops kept stored deltas that would form a cycle
// (possible when objects come from several packs, each storing one as a
// delta of the other) or a chain longer than Depth, sets the depth of
// every kept delta, and records on each base the height of the chains
// hanging from it, so that a new delta for it cannot make them too deep.
func (wr *writer) limitReusedChains(sent int) {
	const (
		unseen = iota
		onPath
		done
	)
	state := make([]uint8, sent)
	var path []int32
	for i := range sent {
		if wr.ents[i].kind != kindReuse || state[i] == done {
			continue
		}
		path = path[:0]
		j := int32(i)
		for int(j) < sent && wr.ents[j].kind == kindReuse && state[j] != done {
			if state[j] == onPath {
				// A cycle: send j otherwise, which breaks it.
				wr.ents[j].kind = kindWhole
				wr.ents[j].base = -1
				break
			}
			state[j] = onPath
			path = append(path, j)
			j = wr.ents[j].base
		}
		d := 0
		if int(j) < sent && wr.ents[j].kind == kindReuse {
			d = int(wr.ents[j].depth)
		}
		for k := len(path) - 1; k >= 0; k-- {
			e := &wr.ents[path[k]]
			state[path[k]] = done
			if e.kind != kindReuse {
				d = 0
				continue
			}
			d++
			if d > wr.opts.Depth {
				e.kind = kindWhole
				e.base = -1
				d = 0
			}
			e.depth = uint16(d)
		}
	}
	for i := range sent {
		if wr.ents[i].kind != kindReuse {
			continue
		}
		h := uint16(1)
		for b := wr.ents[i].base; int(b) < sent; b = wr.ents[b].base {
			be := &wr.ents[b]
			if be.height >= h {
				break
			}
			be.height = h
			if be.kind != kindReuse {
				break
			}
			h++
		}
	}
}

// progress serialises progress reports and makes them only when the
// percentage changes.
type progress struct {
	fn    func(stage string, done, total int)
	mu    sync.Mutex
	stage string
	pct   int
}

func (p *progress) report(stage string, done, total int) {
	if p.fn == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	pct := 100
	if total > 0 {
		pct = int(int64(done) * 100 / int64(total))
	}
	if stage == p.stage && pct == p.pct && done != total {
		return
	}
	p.stage, p.pct = stage, pct
	p.fn(stage, done, total)
}

// trailerHash returns the hash of the pack checksum. The trailer guards
// against corruption in transit and on disk, it names no object, so the
// SHA-1 collision detection that object ids need is not used for it (C
// Git also computes it with its faster, unchecked SHA-1).
func trailerHash(f oid.Format) hash.Hash {
	if f == oid.SHA256 {
		return sha256.New()
	}
	return sha1.New()
}

// hashWriter writes through a buffer, hashing and counting what it
// writes.
type hashWriter struct {
	bw    *bufio.Writer
	h     hash.Hash
	n     uint64
	crcOn bool   // accumulate crc over what is written
	crc   uint32 // CRC-32 (IEEE, as zlib computes it) of the current entry
}

func (hw *hashWriter) Write(b []byte) (int, error) {
	hw.h.Write(b)
	if hw.crcOn {
		hw.crc = crc32.Update(hw.crc, crc32.IEEETable, b)
	}
	n, err := hw.bw.Write(b)
	hw.n += uint64(n)
	return n, err
}

// CopyPack writes the stored pack p to w verbatim (header, entries,
// trailer): the answer when a client needs exactly everything one pack
// holds. Nothing is inflated, compressed or hashed again; the bytes come
// straight from the pack's mapping.
func CopyPack(w io.Writer, p *pack.Pack) error {
	b, err := p.Bytes(0, uint64(p.Size()))
	if err != nil {
		return fmt.Errorf("packer: copy %s: %w", p.Path(), err)
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("packer: copy %s: %w", p.Path(), err)
	}
	return nil
}
