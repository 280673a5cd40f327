package pack

import (
	"bytes"
	"cmp"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"io"
	"math"
	"math/bits"
	"slices"

	"gotd/internal/git/oid"
)

// Version 2 pack index, gitformat-pack(5) "Version 2 pack-*.idx files
// support packs larger than 4 GiB": a magic number and version, a
// 256-entry fan-out table, the sorted object ids, a CRC-32 per object,
// a 31-bit offset per object whose high bit, when set, selects an entry
// of a table of 64-bit offsets, then the pack's checksum and the
// index's own checksum.

var idxMagic = [4]byte{0xff, 't', 'O', 'c'}

const (
	idxHeaderSize = 8
	fanoutSize    = 256 * 4
	// largeOffsetFlag marks a 32-bit offset slot that refers to the
	// 64-bit table; offsets above maxSmallOffset go there.
	largeOffsetFlag = 0x80000000
	maxSmallOffset  = 0x7fffffff
)

// Index is a parsed .idx file. Its methods never allocate (other than
// WriteIndex) and are safe for concurrent use. An Index from OpenIndex
// refers to a read-only mapping of the file: nothing it returns may be
// used after Close.
type Index struct {
	f      oid.Format
	hs     int
	n      int
	data   []byte
	fanout []byte
	ids    []byte
	crcs   []byte
	offs   []byte
	large  []byte
	m      *mapping
}

// ParseIndex parses a version 2 index held in data, which the Index
// keeps referring to (the caller must not modify it). It checks the
// magic and version, that the fan-out never decreases, that the file
// has exactly the size implied by the object count and the number of
// 64-bit offsets, so that no later accessor can read out of bounds. It
// reads only the header and the fan-out, whatever the object count:
// opening the index of a pack of millions of objects costs the same as
// a small one's, and a process that looks up a few objects touches
// only their pages. It neither hashes the file nor checks the ids'
// order nor the references into the 64-bit table (see Verify; Offset
// answers a reference out of range with an offset no pack has).
func ParseIndex(data []byte, f oid.Format) (*Index, error) {
	if !f.Valid() {
		return nil, fmt.Errorf("pack: parse index: invalid object format %d", f)
	}
	hs := f.Size()
	if len(data) < idxHeaderSize+fanoutSize+2*hs {
		return nil, corruptf("index of %d bytes is too short", len(data))
	}
	if !bytes.Equal(data[:4], idxMagic[:]) {
		return nil, corruptf("index has no version 2 signature")
	}
	if v := be32(data[4:]); v != 2 {
		return nil, corruptf("unsupported index version %d", v)
	}
	fanout := data[idxHeaderSize : idxHeaderSize+fanoutSize]
	var prev uint32
	for i := 0; i < 256; i++ {
		v := be32(fanout[4*i:])
		if v < prev {
			return nil, corruptf("index fan-out decreases at byte %#02x", i)
		}
		prev = v
	}
	// Sizes in uint64: a declared count near 2^32 must not overflow int
	// on 32-bit systems.
	n := uint64(prev)
	body := uint64(len(data) - idxHeaderSize - fanoutSize - 2*hs)
	fixed := n * uint64(hs+8)
	if fixed > body || (body-fixed)%8 != 0 {
		return nil, corruptf("index of %d bytes does not fit %d objects", len(data), n)
	}
	nlarge := (body - fixed) / 8
	x := &Index{f: f, hs: hs, n: int(n), data: data, fanout: fanout}
	p := uint64(idxHeaderSize + fanoutSize)
	x.ids = data[p : p+n*uint64(hs)]
	p += n * uint64(hs)
	x.crcs = data[p : p+4*n]
	p += 4 * n
	x.offs = data[p : p+4*n]
	p += 4 * n
	x.large = data[p : p+8*nlarge]
	return x, nil
}

// OpenIndex maps the .idx file at path read-only (reading it instead
// where mapping fails) and parses it as ParseIndex does. The caller must
// Close the Index.
func OpenIndex(path string, f oid.Format) (*Index, error) {
	m, err := mapFile(path)
	if err != nil {
		return nil, fmt.Errorf("pack: open index: %w", err)
	}
	x, err := ParseIndex(m.data, f)
	if err != nil {
		m.close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	x.m = m
	return x, nil
}

// Close releases the mapping of an Index from OpenIndex; it does nothing
// for one from ParseIndex. The Index must not be used afterwards.
func (x *Index) Close() error { return x.m.close() }

// Verify recomputes the index's trailing checksum and checks what
// ParseIndex leaves out: that the ids are strictly increasing, that
// the fan-out counts them correctly, and that the 64-bit table holds
// one slot per reference into it, each in range. It reads the whole
// file.
func (x *Index) Verify() error {
	h := checksumHash(x.f)
	h.Write(x.data[:len(x.data)-x.hs])
	var sum [oid.MaxSize]byte
	if !bytes.Equal(h.Sum(sum[:0]), x.Checksum()) {
		return corruptf("index checksum mismatch")
	}
	if err := x.checkLarge(); err != nil {
		return err
	}
	return x.checkOrder()
}

// checkLarge checks that every reference into the 64-bit offset table
// is in range and that the table has no slot nothing refers to (Git
// writes one per large offset).
func (x *Index) checkLarge() error {
	nlarge := uint64(len(x.large) / 8)
	var used uint64
	for i := 0; i < x.n; i++ {
		v := be32(x.offs[4*i:])
		if v&largeOffsetFlag == 0 {
			continue
		}
		if uint64(v&^largeOffsetFlag) >= nlarge {
			return corruptf("index entry %d refers to 64-bit offset %d of %d", i, v&^largeOffsetFlag, nlarge)
		}
		used++
	}
	if used != nlarge {
		return corruptf("index has %d 64-bit offsets for %d references", nlarge, used)
	}
	return nil
}

// checkOrder checks that the ids are strictly increasing and that the
// fan-out counts them.
func (x *Index) checkOrder() error { return checkIDs("index", x.ids, x.hs, x.n, x.fanout) }

// checkIDs checks that the n hs-byte ids are strictly increasing and
// that fanout counts them; what names the file in errors.
func checkIDs(what string, ids []byte, hs, n int, fanout []byte) error {
	first := 0
	for i := 0; i < n; i++ {
		id := ids[i*hs : (i+1)*hs]
		if i > 0 && bytes.Compare(ids[(i-1)*hs:i*hs], id) >= 0 {
			return corruptf("%s ids are not strictly increasing at %d", what, i)
		}
		for ; first < int(id[0]); first++ {
			if int(be32(fanout[4*first:])) != i {
				return corruptf("%s fan-out is wrong at byte %#02x", what, first)
			}
		}
	}
	for ; first < 256; first++ {
		if int(be32(fanout[4*first:])) != n {
			return corruptf("%s fan-out is wrong at byte %#02x", what, first)
		}
	}
	return nil
}

// Format returns the object format the index was parsed with.
func (x *Index) Format() oid.Format { return x.f }

// Count returns the number of objects in the index.
func (x *Index) Count() int { return x.n }

// ID returns the i-th id in index order; i must be in [0, Count).
func (x *Index) ID(i int) oid.ID {
	return oid.MustFromBytes(x.f, x.ids[i*x.hs:(i+1)*x.hs])
}

// CRC32 returns the CRC-32 of the i-th object's stored bytes (entry
// header and compressed data); i must be in [0, Count).
func (x *Index) CRC32(i int) uint32 { return be32(x.crcs[4*i:]) }

// Offset returns the pack offset of the i-th object; i must be in
// [0, Count). The value comes from the file unchecked: readers of the
// pack check it against the pack's size. A reference past the 64-bit
// table (which ParseIndex does not look for) reads as BadOffset.
func (x *Index) Offset(i int) uint64 {
	v := be32(x.offs[4*i:])
	if v&largeOffsetFlag == 0 {
		return uint64(v)
	}
	k := uint64(v &^ largeOffsetFlag)
	if k >= uint64(len(x.large)/8) {
		return BadOffset
	}
	return be64(x.large[8*k:])
}

// BadOffset is the offset Index.Offset gives for a reference out of
// the 64-bit table: beyond any pack, so every reader refuses it.
const BadOffset = math.MaxUint64

// Find returns the index position of id, or false. It uses the fan-out
// and a binary search, and does not allocate.
func (x *Index) Find(id oid.ID) (int, bool) {
	key := id.Raw()
	if len(key) != x.hs {
		return 0, false
	}
	lo, hi := fanoutRange(x.fanout, key[0])
	if hi > x.n {
		hi = x.n
	}
	return searchIDs(x.ids, x.hs, lo, hi, key)
}

// fanoutRange returns the range of positions whose ids start with b.
func fanoutRange(fanout []byte, b byte) (lo, hi int) {
	if b > 0 {
		lo = int(be32(fanout[4*(int(b)-1):]))
	}
	return lo, int(be32(fanout[4*int(b):]))
}

// searchIDs finds key among the hs-byte ids in positions [lo, hi) of
// ids, which share key's first byte (a fan-out range). Ids are hash
// values, spread evenly, so the bits after the first byte say about
// where key falls: when the range is large, a window of about √n ids
// around that guess is tried first (two probes say whether key is in
// it; it is, nineteen times in twenty), which saves the binary search
// half its steps and most of its cache misses. Ids made to cluster
// only lose the two probes. The ids' first eight bytes, compared as one
// number, decide almost every comparison.
func searchIDs(ids []byte, hs, lo, hi int, key []byte) (int, bool) {
	k := binary.BigEndian.Uint64(key)
	if n := hi - lo; n >= 64 {
		w := 1 << ((bits.Len(uint(n)) + 1) / 2) // ≥ √n
		guess := lo + int(uint64(n)*(k<<8>>32)>>32)
		wlo, whi := max(lo, guess-w), min(hi, guess+w)
		switch {
		case wlo > lo && compareID(ids, hs, wlo, k, key) > 0:
			hi = wlo
		case whi < hi && compareID(ids, hs, whi-1, k, key) < 0:
			lo = whi
		default:
			lo, hi = wlo, whi
		}
	}
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		switch c := compareID(ids, hs, mid, k, key); {
		case c == 0:
			return mid, true
		case c < 0:
			lo = mid + 1
		default:
			hi = mid
		}
	}
	return 0, false
}

// compareID compares the id at position i of ids with key, whose first
// eight bytes are k.
func compareID(ids []byte, hs, i int, k uint64, key []byte) int {
	id := ids[i*hs : (i+1)*hs]
	if c := cmp.Compare(binary.BigEndian.Uint64(id), k); c != 0 {
		return c
	}
	return bytes.Compare(id[8:], key[8:])
}

// PackChecksum returns the checksum of the pack the index describes. The
// slice refers to the index's data.
func (x *Index) PackChecksum() []byte {
	end := len(x.data) - x.hs
	return x.data[end-x.hs : end : end]
}

// Checksum returns the index's own trailing checksum. The slice refers
// to the index's data.
func (x *Index) Checksum() []byte { return x.data[len(x.data)-x.hs:] }

// IndexEntry is one object of a pack as its index records it.
type IndexEntry struct {
	ID     oid.ID
	Offset uint64 // offset of the entry in the pack
	CRC32  uint32 // CRC-32 of the entry's stored bytes
}

// WriteIndex sorts entries by id, in place, and writes to w the version
// 2 index of a pack holding them, byte for byte as git index-pack writes
// it: offsets above 2^31-1 go to the 64-bit table, in id order. The
// entries must have ids of format f and no id twice, and packChecksum
// must be the pack's trailer. It returns the index's checksum.
func WriteIndex(w io.Writer, f oid.Format, entries []IndexEntry, packChecksum []byte) ([]byte, error) {
	return writeIndex(w, f, entries, packChecksum, maxSmallOffset)
}

// writeIndex is WriteIndex with offsets above limit (at most
// maxSmallOffset) in the 64-bit table, as git index-pack
// --index-version=2,<limit> does; tests use a low limit to compare the
// 64-bit table with git's on small packs.
func writeIndex(w io.Writer, f oid.Format, entries []IndexEntry, packChecksum []byte, limit uint64) ([]byte, error) {
	limit = min(limit, maxSmallOffset)
	if !f.Valid() {
		return nil, fmt.Errorf("pack: write index: invalid object format %d", f)
	}
	if len(packChecksum) != f.Size() {
		return nil, fmt.Errorf("pack: write index: pack checksum of %d bytes for %s", len(packChecksum), f)
	}
	if uint64(len(entries)) > 1<<32-1 {
		return nil, fmt.Errorf("pack: write index: %d objects do not fit an index", len(entries))
	}
	slices.SortFunc(entries, func(a, b IndexEntry) int { return a.ID.Compare(b.ID) })
	for i := range entries {
		if entries[i].ID.Format() != f {
			return nil, fmt.Errorf("pack: write index: id %s is not %s", entries[i].ID, f)
		}
		if i > 0 && entries[i-1].ID == entries[i].ID {
			return nil, fmt.Errorf("pack: write index: object %s listed twice", entries[i].ID)
		}
	}
	cw := newChecksumWriter(w, f)
	cw.write(idxMagic[:])
	cw.be32(2)
	var counts [256]uint32
	for i := range entries {
		counts[entries[i].ID.Raw()[0]]++
	}
	var total uint32
	for _, c := range counts {
		total += c
		cw.be32(total)
	}
	for i := range entries {
		cw.write(entries[i].ID.Raw())
	}
	for i := range entries {
		cw.be32(entries[i].CRC32)
	}
	var nlarge uint32
	for i := range entries {
		if entries[i].Offset > limit {
			cw.be32(largeOffsetFlag | nlarge)
			nlarge++
		} else {
			cw.be32(uint32(entries[i].Offset))
		}
	}
	for i := range entries {
		if entries[i].Offset > limit {
			cw.be64(entries[i].Offset)
		}
	}
	cw.write(packChecksum)
	sum, err := cw.finish()
	if err != nil {
		return nil, fmt.Errorf("pack: write index: %w", err)
	}
	return sum, nil
}

// checksumHash returns the hash of trailing file checksums. Git uses
// plain SHA-1 output for these; collision detection would only slow
// them down, as nothing is named by them.
func checksumHash(f oid.Format) hash.Hash {
	if f == oid.SHA256 {
		return sha256.New()
	}
	return sha1.New()
}

// checksumWriter buffers writes to w, hashing everything, and appends
// the hash at finish. It remembers the first write error.
type checksumWriter struct {
	w   io.Writer
	h   hash.Hash
	buf []byte
	err error
}

func newChecksumWriter(w io.Writer, f oid.Format) *checksumWriter {
	return &checksumWriter{w: w, h: checksumHash(f), buf: make([]byte, 0, 32<<10)}
}

func (c *checksumWriter) flush() {
	if len(c.buf) == 0 {
		return
	}
	c.h.Write(c.buf)
	if c.err == nil {
		_, c.err = c.w.Write(c.buf)
	}
	c.buf = c.buf[:0]
}

func (c *checksumWriter) write(b []byte) {
	if len(c.buf)+len(b) > cap(c.buf) {
		c.flush()
	}
	c.buf = append(c.buf, b...)
}

func (c *checksumWriter) be32(v uint32) {
	if len(c.buf)+4 > cap(c.buf) {
		c.flush()
	}
	c.buf = appendBE32(c.buf, v)
}

func (c *checksumWriter) be64(v uint64) {
	if len(c.buf)+8 > cap(c.buf) {
		c.flush()
	}
	c.buf = appendBE64(c.buf, v)
}

// finish writes the checksum of everything written and returns it.
func (c *checksumWriter) finish() ([]byte, error) {
	c.flush()
	sum := c.h.Sum(nil)
	if c.err == nil {
		_, c.err = c.w.Write(sum)
	}
	return sum, c.err
}
