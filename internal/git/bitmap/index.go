// Package bitmap reads and writes Git's reachability bitmaps
// (Documentation/technical/bitmap-format.adoc in git.git): for one pack,
// a .bitmap file storing, for selected commits, the set of objects each
// reaches, as EWAH-compressed bitsets over pack positions (the order of
// objects by offset in the pack), plus one bitset per object type and,
// optionally, the name-hash of every object and a lookup table.
//
// Only single-pack bitmaps are handled; multi-pack-index bitmaps are not.
package bitmap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"sync"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/mmapfile"
)

// Header flags (bitmap-format.adoc, "Bitmap options").
const (
	FlagFullDAG     = 0x1  // BITMAP_OPT_FULL_DAG: must be set
	FlagHashCache   = 0x4  // BITMAP_OPT_HASH_CACHE: name-hash extension
	FlagLookupTable = 0x10 // BITMAP_OPT_LOOKUP_TABLE

	knownFlags = FlagFullDAG | FlagHashCache | FlagLookupTable
)

const (
	signature = "BITM"
	// MaxXOROffset is the farthest back an entry may name the entry its
	// bitmap is XORed with; C Git refuses larger offsets.
	MaxXOROffset = 160
	// tripletSize is the size of one lookup-table row: commit position,
	// entry offset, XOR row.
	tripletSize = 4 + 8 + 4
	noXORRow    = 0xffffffff
	// cacheSize bounds the resolved commit bitmaps an Index keeps.
	cacheSize = 64
)

// ErrCorrupt is wrapped by every error about a malformed .bitmap file.
var ErrCorrupt = errors.New("bitmap: corrupt bitmap index")

func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
}

// IndexLookup is what a bitmap needs from its pack: the object count,
// the trailing checksum, and the two orders objects are named in. The
// pack index orders objects by id ("index position"); bitmaps number
// them by offset in the pack ("pack position"), and the name-hash cache
// and commit entries use index positions. Implementations must be safe
// for concurrent use if the Index is.
type IndexLookup interface {
	// Count returns the number of objects in the pack.
	Count() int
	// Checksum returns the pack's trailing checksum.
	Checksum() []byte
	// IDAtIndex returns the id at index position i, 0 ≤ i < Count().
	IDAtIndex(i int) (oid.ID, error)
	// PackPos returns the pack position of id, if the pack has it.
	PackPos(id oid.ID) (int, bool)
	// IndexAtPackPos returns the index position of the object at pack
	// position pos, 0 ≤ pos < Count() (the pack's reverse index).
	IndexAtPackPos(pos int) (int, error)
}

// entry is one stored commit bitmap.
type entry struct {
	commit  oid.ID
	packPos int
	xor     int // index of the entry this one is XORed with, or -1
	off     int // offset of the EWAH data in the file
}

// Index is an open .bitmap file. It is safe for concurrent use.
type Index struct {
	format  oid.Format
	lookup  IndexLookup
	count   int
	data    []byte
	types   [4]Bitmap // commits, trees, blobs, tags
	entries []entry
	byID    map[oid.ID]int
	hashes  []byte // name-hash cache, 4 bytes per index position, or nil

	mapped bool // data is a mapping to release on Close

	mu    sync.Mutex
	cache map[int]Bitmap
}

// Open reads the .bitmap file at path, which must belong to the pack
// described by idx. The file is read into memory and validated as a
// whole: header and flags, the pack checksum, every EWAH bitmap (no bit
// at or past the pack's object count), every entry's commit (an object
// of the pack whose type bitmap says commit, named once), XOR offsets
// (at most MaxXOROffset back, never before the first entry), the sizes
// of the name-hash cache and lookup table, and the lookup table's
// agreement with the entries. The trailing checksum is not recomputed.
func Open(path string, f oid.Format, idx IndexLookup) (*Index, error) {
	data, err := mmapfile.Map(path)
	if err != nil {
		return nil, fmt.Errorf("bitmap: %w", err)
	}
	x, err := Parse(data, f, idx)
	if err != nil {
		mmapfile.Unmap(data)
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	x.mapped = true
	return x, nil
}

// Close releases the file mapping of an Index from Open. The Index must
// not be used afterwards, nor concurrently with Close; Bitmaps it
// returned live in ordinary memory and stay valid.
func (x *Index) Close() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.mapped {
		return nil
	}
	x.mapped = false
	data := x.data
	x.data = nil
	x.entries = nil
	x.byID = nil
	x.hashes = nil
	if err := mmapfile.Unmap(data); err != nil {
		return fmt.Errorf("bitmap: %w", err)
	}
	return nil
}

// Parse is Open on the contents of a .bitmap file; the Index keeps data,
// which the caller must not modify afterwards.
func Parse(data []byte, f oid.Format, idx IndexLookup) (*Index, error) {
	hs := f.Size()
	if hs == 0 {
		return nil, fmt.Errorf("bitmap: invalid object format %v", f)
	}
	count := idx.Count()
	if count < 0 || count > 1<<32-1 {
		return nil, fmt.Errorf("bitmap: pack of %d objects", count)
	}
	hdr := 12 + hs
	if len(data) < hdr+hs {
		return nil, corruptf("file too short (%d bytes)", len(data))
	}
	if string(data[:4]) != signature {
		return nil, corruptf("bad signature %q", data[:4])
	}
	if v := binary.BigEndian.Uint16(data[4:]); v != 1 {
		return nil, corruptf("unsupported version %d", v)
	}
	flags := binary.BigEndian.Uint16(data[6:])
	if flags&FlagFullDAG == 0 {
		return nil, corruptf("not a full-DAG bitmap (flags %#x)", flags)
	}
	if flags&^knownFlags != 0 {
		return nil, corruptf("unknown flags %#x", flags&^knownFlags)
	}
	nentries := int(binary.BigEndian.Uint32(data[8:]))
	if !bytes.Equal(data[12:hdr], idx.Checksum()) {
		return nil, corruptf("pack checksum does not match")
	}
	x := &Index{format: f, lookup: idx, count: count, data: data, cache: make(map[int]Bitmap)}

	// The optional sections sit at the end, before the trailer: the
	// lookup table, then the name-hash cache.
	end := len(data) - hs
	if flags&FlagHashCache != 0 {
		if end-hdr < 4*count {
			return nil, corruptf("name-hash cache overruns the file")
		}
		end -= 4 * count
		x.hashes = data[end : end+4*count]
	}
	var table []byte
	if flags&FlagLookupTable != 0 {
		if nentries > count || end-hdr < tripletSize*nentries {
			return nil, corruptf("lookup table of %d rows overruns the file", nentries)
		}
		end -= tripletSize * nentries
		table = data[end : end+tripletSize*nentries]
	}

	pos := hdr
	for t := range x.types {
		b, n, err := DecodeEWAH(data[pos:end], count)
		if err != nil {
			return nil, corruptf("type bitmap %d: %v", t, err)
		}
		x.types[t] = b
		pos += n
	}
	for t := 0; t < 4; t++ {
		for u := t + 1; u < 4; u++ {
			both := x.types[t].Clone()
			both.And(x.types[u])
			if both.Count() != 0 {
				return nil, corruptf("type bitmaps %d and %d overlap", t, u)
			}
		}
	}

	// Each entry is at least a commit position, two bytes and an EWAH
	// bitmap, so the count bounds the allocation by the file size.
	if nentries > count || nentries > (end-pos)/(6+ewahHeaderSize+ewahTrailerSize) {
		return nil, corruptf("%d entries cannot fit", nentries)
	}
	x.entries = make([]entry, nentries)
	x.byID = make(map[oid.ID]int, nentries)
	offsets := make([]int, nentries) // start of each entry, for the table
	for i := range x.entries {
		if end-pos < 6 {
			return nil, corruptf("entry %d truncated", i)
		}
		offsets[i] = pos
		ipos := int(binary.BigEndian.Uint32(data[pos:]))
		xor := int(data[pos+4])
		pos += 6 // the flags byte (BITMAP_FLAG_REUSE) is a hint we do not use
		if ipos >= count {
			return nil, corruptf("entry %d: index position %d out of range", i, ipos)
		}
		if xor > MaxXOROffset || xor > i {
			return nil, corruptf("entry %d: xor offset %d out of range", i, xor)
		}
		info, err := scanEWAH(data[pos:end], count)
		if err != nil {
			return nil, corruptf("entry %d: %v", i, err)
		}
		id, err := idx.IDAtIndex(ipos)
		if err != nil {
			return nil, fmt.Errorf("bitmap: entry %d: %w", i, err)
		}
		ppos, ok := idx.PackPos(id)
		if !ok {
			return nil, fmt.Errorf("bitmap: entry %d: pack lacks %v", i, id)
		}
		if !x.types[0].Has(ppos) {
			return nil, corruptf("entry %d: %v is not a commit", i, id)
		}
		if _, dup := x.byID[id]; dup {
			return nil, corruptf("entry %d: %v has two bitmaps", i, id)
		}
		x.byID[id] = i
		x.entries[i] = entry{commit: id, packPos: ppos, xor: i - xor, off: pos}
		if xor == 0 {
			x.entries[i].xor = -1
		}
		pos += info.n
	}
	if pos != end {
		return nil, corruptf("%d unexplained bytes after the entries", end-pos)
	}
	if table != nil {
		if err := x.checkTable(table, offsets); err != nil {
			return nil, err
		}
	}
	return x, nil
}

// checkTable checks that the lookup table lists every entry once, in
// increasing index position, with its offset and XOR base.
func (x *Index) checkTable(table []byte, offsets []int) error {
	byOffset := make(map[int]int, len(offsets))
	for i, off := range offsets {
		byOffset[off] = i
	}
	rowOf := make([]int, len(x.entries)) // entry → row
	prev := -1
	for r := 0; r < len(x.entries); r++ {
		t := table[r*tripletSize:]
		ipos := int(binary.BigEndian.Uint32(t))
		off := binary.BigEndian.Uint64(t[4:])
		if ipos <= prev {
			return corruptf("lookup table row %d out of order", r)
		}
		prev = ipos
		i, ok := byOffset[int(min(off, 1<<62))]
		if !ok {
			return corruptf("lookup table row %d: offset %d is no entry", r, off)
		}
		if got := int(binary.BigEndian.Uint32(x.data[off:])); got != ipos {
			return corruptf("lookup table row %d: entry at %d is for position %d, not %d", r, off, got, ipos)
		}
		rowOf[i] = r
	}
	for i, e := range x.entries {
		xr := binary.BigEndian.Uint32(table[rowOf[i]*tripletSize+12:])
		switch {
		case e.xor < 0 && xr != noXORRow:
			return corruptf("lookup table row %d: xor row %d for an entry without one", rowOf[i], xr)
		case e.xor >= 0 && (xr == noXORRow || int(xr) != rowOf[e.xor]):
			return corruptf("lookup table row %d: xor row %d disagrees with the entry", rowOf[i], xr)
		}
	}
	return nil
}

// Format returns the object format of the pack.
func (x *Index) Format() oid.Format { return x.format }

// Count returns the number of objects in the pack (and bits per bitmap).
func (x *Index) Count() int { return x.count }

// Lookup returns the pack description the Index was opened with.
func (x *Index) Lookup() IndexLookup { return x.lookup }

// Len returns the number of commits with a stored bitmap.
func (x *Index) Len() int { return len(x.entries) }

// Commits calls fn with each commit that has a stored bitmap, in file
// order, until fn returns false.
func (x *Index) Commits(fn func(id oid.ID) bool) {
	for _, e := range x.entries {
		if !fn(e.commit) {
			return
		}
	}
}

// TypeBitmap returns the positions of the pack's objects of type t (a
// base type; nil otherwise). The result is shared: do not modify it.
func (x *Index) TypeBitmap(t object.Type) Bitmap {
	if !t.IsBase() {
		return Bitmap{}
	}
	return x.types[t-object.Commit]
}

// TypeAt returns the type of the object at pack position pos.
func (x *Index) TypeAt(pos int) object.Type {
	for t := range x.types {
		if x.types[t].Has(pos) {
			return object.Commit + object.Type(t)
		}
	}
	return object.Invalid
}

// NameHash returns the name-hash of the object at index position i (the
// cache is in index order), if the file has a name-hash cache (0 means
// "no name", as in C Git).
func (x *Index) NameHash(i int) (uint32, bool) {
	if x.hashes == nil || i < 0 || i >= x.count {
		return 0, false
	}
	return binary.BigEndian.Uint32(x.hashes[i*4:]), true
}

// HasNameHashes reports whether the file has a name-hash cache.
func (x *Index) HasNameHashes() bool { return x.hashes != nil }

// IDAtPackPos returns the id of the object at pack position pos. If the
// IndexLookup has a method IDAtPackPos(int) (oid.ID, error) it is used;
// otherwise the id is found through the index position.
func (x *Index) IDAtPackPos(pos int) (oid.ID, error) {
	if l, ok := x.lookup.(interface {
		IDAtPackPos(int) (oid.ID, error)
	}); ok {
		id, err := l.IDAtPackPos(pos)
		if err != nil {
			return oid.ID{}, fmt.Errorf("bitmap: %w", err)
		}
		return id, nil
	}
	i, err := x.lookup.IndexAtPackPos(pos)
	if err != nil {
		return oid.ID{}, fmt.Errorf("bitmap: %w", err)
	}
	id, err := x.lookup.IDAtIndex(i)
	if err != nil {
		return oid.ID{}, fmt.Errorf("bitmap: %w", err)
	}
	return id, nil
}

// NameHashAtPackPos returns the cached name-hash of the object at pack
// position pos, if the file has a name-hash cache.
func (x *Index) NameHashAtPackPos(pos int) (uint32, bool) {
	if x.hashes == nil {
		return 0, false
	}
	i, err := x.lookup.IndexAtPackPos(pos)
	if err != nil {
		return 0, false
	}
	return x.NameHash(i)
}

// Has reports whether commit has a stored bitmap.
func (x *Index) Has(commit oid.ID) bool {
	_, ok := x.byID[commit]
	return ok
}

// Bitmap returns the set of pack positions of the objects reachable from
// commit, if a bitmap is stored for it. XOR chains are resolved and the
// most recent results cached; the result is shared with the cache, so
// the caller must not modify it (Clone it first).
func (x *Index) Bitmap(commit oid.ID) (Bitmap, bool) {
	i, ok := x.byID[commit]
	if !ok {
		return Bitmap{}, false
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.resolve(i)
}

// resolve returns entry i's bitmap with its XOR chain applied. The chain
// is followed iteratively: XOR bases lie strictly earlier, so it ends.
func (x *Index) resolve(i int) (Bitmap, bool) {
	if b, ok := x.cache[i]; ok {
		return b, true
	}
	var chain []int
	var acc Bitmap
	have := false
	for j := i; ; j = x.entries[j].xor {
		if b, ok := x.cache[j]; ok {
			acc, have = b, true
			break
		}
		chain = append(chain, j)
		if x.entries[j].xor < 0 {
			break
		}
	}
	// Apply from the bottom of the chain up: each entry is stored XORed
	// with the resolved bitmap of the one below it.
	for k := len(chain) - 1; k >= 0; k-- {
		d, _, err := DecodeEWAH(x.data[x.entries[chain[k]].off:], x.count)
		if err != nil {
			return Bitmap{}, false // Parse validated every entry; unreachable
		}
		if have {
			d.Xor(acc)
		}
		acc, have = d, true
	}
	x.remember(i, acc)
	return acc, true
}

// remember caches a resolved bitmap, evicting an arbitrary one when full.
func (x *Index) remember(i int, b Bitmap) {
	if len(x.cache) >= cacheSize {
		for k := range x.cache {
			delete(x.cache, k)
			break
		}
	}
	x.cache[i] = b
}

// indexPos returns the index position of id by binary search over the
// index order.
func indexPos(idx IndexLookup, id oid.ID) (int, error) {
	var err error
	n := idx.Count()
	i := sort.Search(n, func(i int) bool {
		if err != nil {
			return true
		}
		got, e := idx.IDAtIndex(i)
		if e != nil {
			err = e
			return true
		}
		return got.Compare(id) >= 0
	})
	if err != nil {
		return 0, err
	}
	if i < n {
		if got, _ := idx.IDAtIndex(i); got == id {
			return i, nil
		}
	}
	return 0, fmt.Errorf("bitmap: pack lacks %v", id)
}
