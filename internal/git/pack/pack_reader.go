package pack

import (
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/mmapfile"
)

// DefaultMaxObjectSize is the largest inflated object or delta result a
// Pack reads when Options.MaxObjectSize is 0.
const DefaultMaxObjectSize = 4 << 30

// DefaultMaxDeltaDepth bounds delta chains when Options.MaxDeltaDepth is
// 0. C Git writes chains of at most 50 by default and 4095 at most.
const DefaultMaxDeltaDepth = 10000

// Options tune how a pack is read. The zero value is usable.
type Options struct {
	// Cache holds inflated delta bases; it may be shared by many packs
	// and nil for none.
	Cache *DeltaCache
	// MaxObjectSize caps every inflated object and delta result.
	MaxObjectSize int64
	// MaxDeltaDepth caps the length of a delta chain.
	MaxDeltaDepth int
}

// Pack is a pack file and its index, read by random access from a
// read-only mapping. Its methods are safe for concurrent use.
type Pack struct {
	path  string
	f     oid.Format
	data  []byte
	idx   *Index
	opts  Options
	file  *mmapfile.File
	revMu sync.Mutex
	rev   []byte // index positions in pack order, 4 bytes each
	inv   []uint32
	revf  *mmapfile.File
}

// Open opens the pack file at packPath (ending in .pack) with its .idx,
// and its .rev when there is one. It checks that they belong together:
// same object count, and the index names the pack's trailer.
func Open(packPath string, f oid.Format, opts Options) (*Pack, error) {
	if opts.MaxObjectSize <= 0 {
		opts.MaxObjectSize = DefaultMaxObjectSize
	}
	if opts.MaxDeltaDepth <= 0 {
		opts.MaxDeltaDepth = DefaultMaxDeltaDepth
	}
	base := strings.TrimSuffix(packPath, ".pack")
	idx, err := OpenIndex(base+".idx", f)
	if err != nil {
		return nil, err
	}
	mf, err := mmapfile.Open(packPath)
	if err != nil {
		idx.Close()
		return nil, fmt.Errorf("pack: open: %w", err)
	}
	p := &Pack{path: packPath, f: f, data: mf.Data, idx: idx, opts: opts, file: mf}
	if err := p.check(); err != nil {
		p.Close()
		return nil, fmt.Errorf("%s: %w", packPath, err)
	}
	if revf, table, err := openRev(base+".rev", idx); err == nil {
		p.revf, p.rev = revf, table
	} else if !errors.Is(err, os.ErrNotExist) {
		p.Close()
		return nil, err
	}
	return p, nil
}

func (p *Pack) check() error {
	hs := p.f.Size()
	if len(p.data) < HeaderSize+hs {
		return corruptf("pack too short")
	}
	count, err := ParseHeader(p.data)
	if err != nil {
		return err
	}
	if int(count) != p.idx.Count() {
		return corruptf("pack has %d objects but its index %d", count, p.idx.Count())
	}
	if !bytes.Equal(p.data[len(p.data)-hs:], p.idx.PackChecksum()) {
		return corruptf("index does not belong to this pack (checksum mismatch)")
	}
	end := uint64(len(p.data) - hs)
	for i := 0; i < p.idx.Count(); i++ {
		if off := p.idx.Offset(i); off < HeaderSize || off >= end {
			return corruptf("index offset %d out of range", off)
		}
	}
	return nil
}

// Close releases the pack's mappings.
func (p *Pack) Close() error {
	err := p.file.Close()
	if e := p.idx.Close(); err == nil {
		err = e
	}
	if e := p.revf.Close(); err == nil {
		err = e
	}
	return err
}

// Path returns the path of the .pack file.
func (p *Pack) Path() string { return p.path }

// Index returns the pack's index.
func (p *Pack) Index() *Index { return p.idx }

// Format returns the pack's object format.
func (p *Pack) Format() oid.Format { return p.f }

// Checksum returns the pack's trailer.
func (p *Pack) Checksum() []byte { return p.data[len(p.data)-p.f.Size():] }

// Size returns the size of the pack file.
func (p *Pack) Size() int64 { return int64(len(p.data)) }

// Count returns the number of objects in the pack.
func (p *Pack) Count() int { return p.idx.Count() }

// HasObject reports whether id is in the pack.
func (p *Pack) HasObject(id oid.ID) bool {
	_, ok := p.idx.Find(id)
	return ok
}

// OffsetOf returns the offset of id's entry.
func (p *Pack) OffsetOf(id oid.ID) (uint64, bool) {
	i, ok := p.idx.Find(id)
	if !ok {
		return 0, false
	}
	return p.idx.Offset(i), true
}

// Bytes returns the pack's bytes in [start, end) without copying. The
// slice must not be written to or used after Close.
func (p *Pack) Bytes(start, end uint64) ([]byte, error) {
	if start > end || end > uint64(len(p.data)) {
		return nil, fmt.Errorf("pack: range %d-%d outside the pack", start, end)
	}
	return p.data[start:end:end], nil
}

// revTable returns the index positions in pack order, building them on
// first use when the pack has no .rev file (4 bytes per object), and
// the inverse mapping when inverse is set (4 more bytes per object).
func (p *Pack) revTable(inverse bool) ([]byte, []uint32) {
	p.revMu.Lock()
	defer p.revMu.Unlock()
	if p.rev == nil {
		p.rev = buildRev(p.idx)
	}
	if inverse && p.inv == nil {
		inv := make([]uint32, p.idx.n)
		for k := 0; k < p.idx.n; k++ {
			inv[be32(p.rev[4*k:])] = uint32(k)
		}
		p.inv = inv
	}
	return p.rev, p.inv
}

// packPosOfOffset finds the pack position of the entry at off.
func (p *Pack) packPosOfOffset(off uint64) (int, bool) {
	rev, _ := p.revTable(false)
	n := p.idx.n
	k := sort.Search(n, func(k int) bool { return p.idx.Offset(int(be32(rev[4*k:]))) >= off })
	if k < n && p.idx.Offset(int(be32(rev[4*k:]))) == off {
		return k, true
	}
	return 0, false
}

// PackPos returns the position of id among the pack's objects in offset
// order, the numbering reachability bitmaps use.
func (p *Pack) PackPos(id oid.ID) (int, bool) {
	i, ok := p.idx.Find(id)
	if !ok {
		return 0, false
	}
	_, inv := p.revTable(true)
	return int(inv[i]), true
}

// IDAtPackPos returns the id of the object at pack position pos.
func (p *Pack) IDAtPackPos(pos int) (oid.ID, error) {
	if pos < 0 || pos >= p.idx.n {
		return oid.ID{}, fmt.Errorf("pack: position %d out of range", pos)
	}
	rev, _ := p.revTable(false)
	return p.idx.ID(int(be32(rev[4*pos:]))), nil
}

// OffsetAtPackPos returns the offset of the object at pack position pos,
// which must be in range.
func (p *Pack) OffsetAtPackPos(pos int) uint64 {
	rev, _ := p.revTable(false)
	return p.idx.Offset(int(be32(rev[4*pos:])))
}

// IDAt returns the id of the entry at offset off.
func (p *Pack) IDAt(off uint64) (oid.ID, bool) {
	k, ok := p.packPosOfOffset(off)
	if !ok {
		return oid.ID{}, false
	}
	id, err := p.IDAtPackPos(k)
	return id, err == nil
}

// Entry describes one stored entry of a pack.
type Entry struct {
	Offset     uint64      // where the entry starts
	Type       object.Type // may be OfsDelta or RefDelta
	Size       uint64      // inflated size of the entry's data (the delta's, for deltas)
	HeaderLen  int         // entry header plus base offset or base id
	End        uint64      // where the next entry (or the trailer) starts
	BaseOffset uint64      // OfsDelta: offset of the base entry
	BaseID     oid.ID      // RefDelta: id of the base object
}

// Entry parses the entry at off, which must be the start of an entry.
func (p *Pack) Entry(off uint64) (Entry, error) {
	e, err := p.entryHeader(off)
	if err != nil {
		return e, err
	}
	k, ok := p.packPosOfOffset(off)
	if !ok {
		return e, corruptf("no entry starts at offset %d", off)
	}
	if k+1 < p.idx.n {
		e.End = p.OffsetAtPackPos(k + 1)
	} else {
		e.End = uint64(len(p.data) - p.f.Size())
	}
	if e.End < off+uint64(e.HeaderLen) {
		return e, corruptf("entry at %d overlaps the next", off)
	}
	return e, nil
}

// entryHeader parses the header of the entry at off, without End.
func (p *Pack) entryHeader(off uint64) (Entry, error) {
	e := Entry{Offset: off}
	limit := uint64(len(p.data) - p.f.Size())
	if off < HeaderSize || off >= limit {
		return e, corruptf("entry offset %d out of range", off)
	}
	t, size, n, err := ParseEntryHeader(p.data[off:limit])
	if err != nil {
		return e, err
	}
	e.Type, e.Size, e.HeaderLen = t, size, n
	switch t {
	case object.OfsDelta:
		rel, m, err := ParseOfs(p.data[off+uint64(n) : limit])
		if err != nil {
			return e, err
		}
		if rel == 0 || rel > off-HeaderSize {
			return e, corruptf("delta at %d has a bad base offset", off)
		}
		e.BaseOffset = off - rel
		e.HeaderLen += m
	case object.RefDelta:
		hs := p.f.Size()
		if off+uint64(n+hs) > limit {
			return e, corruptf("truncated delta base id at %d", off)
		}
		e.BaseID = oid.MustFromBytes(p.f, p.data[off+uint64(n):off+uint64(n+hs)])
		e.HeaderLen += hs
	}
	return e, nil
}

var zlibPool sync.Pool

// inflate appends exactly size inflated bytes of the zlib stream at
// data to dst; the stream must end there and its checksum must match.
func inflate(dst, data []byte, size uint64, max int64) ([]byte, error) {
	if size > uint64(max) {
		return dst, corruptf("object of %d bytes exceeds the limit of %d", size, max)
	}
	br := bytes.NewReader(data)
	var zr io.ReadCloser
	if v := zlibPool.Get(); v != nil {
		zr = v.(io.ReadCloser)
		if err := zr.(zlib.Resetter).Reset(br, nil); err != nil {
			return dst, corruptf("bad zlib stream: %v", err)
		}
	} else {
		var err error
		if zr, err = zlib.NewReader(br); err != nil {
			return dst, corruptf("bad zlib stream: %v", err)
		}
	}
	defer zlibPool.Put(zr)
	start := len(dst)
	if uint64(cap(dst)-start) < size {
		grown := make([]byte, start, start+int(size))
		copy(grown, dst)
		dst = grown
	}
	dst = dst[:start+int(size)]
	if _, err := io.ReadFull(zr, dst[start:]); err != nil {
		return dst[:start], corruptf("inflate: %v", err)
	}
	// The stream must end exactly here, and its checksum must be good.
	var one [1]byte
	if n, err := zr.Read(one[:]); n != 0 || err != io.EOF {
		if err == nil || err == io.EOF {
			return dst[:start], corruptf("object inflates past its declared size")
		}
		return dst[:start], corruptf("inflate: %v", err)
	}
	return dst, nil
}

// ReadObject returns the type and content of id. A missing object is an
// error wrapping object.ErrNotFound.
func (p *Pack) ReadObject(id oid.ID) (object.Type, []byte, error) {
	off, ok := p.OffsetOf(id)
	if !ok {
		return 0, nil, fmt.Errorf("pack: %s: %w", id, object.ErrNotFound)
	}
	t, data, err := p.ReadAt(off)
	if err != nil {
		return 0, nil, fmt.Errorf("pack: object %s: %w", id, err)
	}
	return t, data, nil
}

// ReadAt returns the type and content of the object whose entry is at
// off, resolving deltas. Delta bases are looked up in the cache first,
// and intermediate results are added to it.
func (p *Pack) ReadAt(off uint64) (object.Type, []byte, error) {
	// Walk down the chain to a base we have: a cached object or a whole
	// entry. chain holds the delta entries from the top down.
	var chainBuf [16]Entry
	chain := chainBuf[:0]
	var (
		baseType object.Type
		base     []byte
	)
	cur := off
	for {
		if len(chain) > 0 {
			if t, data, ok := p.opts.Cache.get(p, cur); ok {
				baseType, base = t, data
				break
			}
		}
		e, err := p.entryHeader(cur)
		if err != nil {
			return 0, nil, err
		}
		if e.Type.IsBase() {
			data, err := inflate(nil, p.data[cur+uint64(e.HeaderLen):], e.Size, p.opts.MaxObjectSize)
			if err != nil {
				return 0, nil, fmt.Errorf("entry at %d: %w", cur, err)
			}
			baseType, base = e.Type, data
			if len(chain) > 0 {
				p.opts.Cache.put(p, cur, baseType, base)
			}
			break
		}
		if len(chain) >= p.opts.MaxDeltaDepth {
			return 0, nil, corruptf("delta chain at %d longer than %d", off, p.opts.MaxDeltaDepth)
		}
		chain = append(chain, e)
		if e.Type == object.OfsDelta {
			cur = e.BaseOffset
		} else {
			boff, ok := p.OffsetOf(e.BaseID)
			if !ok {
				return 0, nil, corruptf("delta base %s is not in the pack", e.BaseID)
			}
			if boff == cur {
				return 0, nil, corruptf("delta at %d is its own base", cur)
			}
			cur = boff
		}
	}
	// Apply the deltas from the bottom up.
	var delta []byte
	for i := len(chain) - 1; i >= 0; i-- {
		e := chain[i]
		var err error
		delta, err = inflate(delta[:0], p.data[e.Offset+uint64(e.HeaderLen):], e.Size, p.opts.MaxObjectSize)
		if err != nil {
			return 0, nil, fmt.Errorf("delta at %d: %w", e.Offset, err)
		}
		result, err := ApplyDelta(nil, base, delta, uint64(p.opts.MaxObjectSize))
		if err != nil {
			return 0, nil, fmt.Errorf("delta at %d: %w", e.Offset, err)
		}
		base = result
		if i > 0 {
			p.opts.Cache.put(p, e.Offset, baseType, base)
		}
	}
	return baseType, base, nil
}

// StatObject returns the type and size of id, inflating only the start
// of a delta to learn its result size.
func (p *Pack) StatObject(id oid.ID) (object.Type, int64, error) {
	off, ok := p.OffsetOf(id)
	if !ok {
		return 0, 0, fmt.Errorf("pack: %s: %w", id, object.ErrNotFound)
	}
	e, err := p.entryHeader(off)
	if err != nil {
		return 0, 0, err
	}
	if e.Type.IsBase() {
		return e.Type, int64(e.Size), nil
	}
	// The size is the delta's declared result size.
	var hdr [2 * MaxDeltaSizeVarint]byte
	n, err := inflatePrefix(hdr[:], p.data[off+uint64(e.HeaderLen):])
	if err != nil {
		return 0, 0, err
	}
	_, size, _, err := DeltaSizes(hdr[:n])
	if err != nil {
		return 0, 0, err
	}
	// The type is the type of the chain's base.
	cur := e
	for depth := 0; !cur.Type.IsBase(); depth++ {
		if depth > p.opts.MaxDeltaDepth {
			return 0, 0, corruptf("delta chain too long")
		}
		next := cur.BaseOffset
		if cur.Type == object.RefDelta {
			if next, ok = p.OffsetOf(cur.BaseID); !ok {
				return 0, 0, corruptf("delta base %s is not in the pack", cur.BaseID)
			}
		}
		if cur, err = p.entryHeader(next); err != nil {
			return 0, 0, err
		}
	}
	return cur.Type, int64(size), nil
}

// inflatePrefix inflates up to len(buf) bytes of the zlib stream at data.
func inflatePrefix(buf, data []byte) (int, error) {
	zr, err := zlib.NewReader(bytes.NewReader(data))
	if err != nil {
		return 0, corruptf("bad zlib stream: %v", err)
	}
	n, err := io.ReadFull(zr, buf)
	if err != nil && err != io.ErrUnexpectedEOF {
		return 0, corruptf("inflate: %v", err)
	}
	return n, nil
}
