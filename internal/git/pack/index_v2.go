package pack

import (
	"bytes"
	"fmt"
	"io"
	"slices"

	"gotd/internal/git/oid"
	"gotd/internal/mmapfile"
)

// Version 2 pack index (gitformat-pack(5), "Version 2 pack-*.idx files
// support packs larger than 4 GiB"): magic, version, 256-entry fan-out,
// sorted ids, CRC32s, 31-bit offsets, 64-bit offsets for those with the
// high bit set, the pack's checksum and the index's own checksum.

var idxMagic = []byte{0xff, 't', 'O', 'c'}

const (
	idxHeaderSize = 8
	fanoutSize    = 256 * 4
	largeOffset   = 0x80000000
)

// Index is a parsed .idx file. Its methods do not allocate and are safe
// for concurrent use.
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
	file   *mmapfile.File
}

// ParseIndex parses a version 2 index held in data, which the Index
// keeps referring to. It checks the structure (magic, version, fan-out
// order, exact size for the object count, large-offset references) but
// not the trailing checksum; see Verify.
func ParseIndex(data []byte, f oid.Format) (*Index, error) {
	hs := f.Size()
	if hs == 0 {
		return nil, fmt.Errorf("pack: invalid object format")
	}
	if len(data) < idxHeaderSize+fanoutSize+2*hs {
		return nil, corruptf("index too short")
	}
	if !bytes.Equal(data[:4], idxMagic) {
		return nil, corruptf("index is not version 2 (no magic)")
	}
	if v := be32(data[4:]); v != 2 {
		return nil, corruptf("unsupported index version %d", v)
	}
	fanout := data[idxHeaderSize : idxHeaderSize+fanoutSize]
	prev := uint32(0)
	for i := 0; i < 256; i++ {
		v := be32(fanout[4*i:])
		if v < prev {
			return nil, corruptf("index fan-out is not monotonic")
		}
		prev = v
	}
	n := int(prev)
	body := len(data) - idxHeaderSize - fanoutSize - 2*hs
	if n > body/(hs+8) {
		return nil, corruptf("index declares %d objects but is %d bytes", n, len(data))
	}
	rest := body - n*(hs+8)
	if rest%8 != 0 {
		return nil, corruptf("index has a bad size for %d objects", n)
	}
	nlarge := rest / 8
	x := &Index{f: f, hs: hs, n: n, data: data, fanout: fanout}
	p := idxHeaderSize + fanoutSize
	x.ids = data[p : p+n*hs]
	p += n * hs
	x.crcs = data[p : p+4*n]
	p += 4 * n
	x.offs = data[p : p+4*n]
	p += 4 * n
	x.large = data[p : p+8*nlarge]
	used := 0
	for i := 0; i < n; i++ {
		v := be32(x.offs[4*i:])
		if v&largeOffset != 0 {
			if int(v&^largeOffset) >= nlarge {
				return nil, corruptf("index large offset reference out of range")
			}
			used++
		}
	}
	if used > nlarge {
		return nil, corruptf("index large offset table too small")
	}
	for i := 1; i < n; i++ {
		if bytes.Compare(x.ids[(i-1)*hs:i*hs], x.ids[i*hs:(i+1)*hs]) >= 0 {
			return nil, corruptf("index ids are not sorted")
		}
	}
	return x, nil
}

// OpenIndex maps and parses the .idx file at path. Close releases it.
func OpenIndex(path string, f oid.Format) (*Index, error) {
	mf, err := mmapfile.Open(path)
	if err != nil {
		return nil, fmt.Errorf("pack: open index: %w", err)
	}
	x, err := ParseIndex(mf.Data, f)
	if err != nil {
		mf.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	x.file = mf
	return x, nil
}

// Close releases the index's mapping, if it has one.
func (x *Index) Close() error { return x.file.Close() }

// Verify checks the index's trailing checksum.
func (x *Index) Verify() error {
	h := x.f.New()
	h.Write(x.data[:len(x.data)-x.hs])
	if !bytes.Equal(h.Sum(nil), x.data[len(x.data)-x.hs:]) {
		return corruptf("index checksum mismatch")
	}
	return nil
}

// Format returns the object format of the index.
func (x *Index) Format() oid.Format { return x.f }

// Count returns the number of objects in the index.
func (x *Index) Count() int { return x.n }

// ID returns the i-th id in sorted order, 0 ≤ i < Count.
func (x *Index) ID(i int) oid.ID {
	return oid.MustFromBytes(x.f, x.ids[i*x.hs:(i+1)*x.hs])
}

// CRC32 returns the CRC-32 of the i-th object's packed bytes.
func (x *Index) CRC32(i int) uint32 { return be32(x.crcs[4*i:]) }

// Offset returns the pack offset of the i-th object.
func (x *Index) Offset(i int) uint64 {
	v := be32(x.offs[4*i:])
	if v&largeOffset == 0 {
		return uint64(v)
	}
	return be64(x.large[8*(v&^largeOffset):])
}

// Find returns the position of id in the index.
func (x *Index) Find(id oid.ID) (int, bool) {
	key := id.Raw()
	if len(key) != x.hs {
		return 0, false
	}
	lo := 0
	if key[0] > 0 {
		lo = int(be32(x.fanout[4*(int(key[0])-1):]))
	}
	hi := int(be32(x.fanout[4*int(key[0]):]))
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		switch c := bytes.Compare(x.ids[mid*x.hs:(mid+1)*x.hs], key); {
		case c == 0:
			return mid, true
		case c < 0:
			lo = mid + 1
		default:
			hi = mid
		}
	}
	return lo, false
}

// PackChecksum returns the checksum of the pack the index describes.
func (x *Index) PackChecksum() []byte {
	end := len(x.data) - x.hs
	return x.data[end-x.hs : end]
}

// Checksum returns the index's own trailing checksum.
func (x *Index) Checksum() []byte { return x.data[len(x.data)-x.hs:] }

// IndexEntry is one object of a pack, as its index records it.
type IndexEntry struct {
	ID     oid.ID
	Offset uint64
	CRC32  uint32
}

func sortEntries(entries []IndexEntry) {
	slices.SortFunc(entries, func(a, b IndexEntry) int { return a.ID.Compare(b.ID) })
}

// WriteIndex sorts entries by id and writes the version 2 index of a
// pack holding them to w, exactly as git index-pack writes it: offsets
// above 2^31-1 go to the 64-bit table in id order. It returns the
// index's checksum.
func WriteIndex(w io.Writer, f oid.Format, entries []IndexEntry, packChecksum []byte) ([]byte, error) {
	if len(packChecksum) != f.Size() {
		return nil, fmt.Errorf("pack: pack checksum of %d bytes for %s", len(packChecksum), f)
	}
	sortEntries(entries)
	for i := 1; i < len(entries); i++ {
		if entries[i-1].ID == entries[i].ID {
			return nil, fmt.Errorf("pack: duplicate object %s in index", entries[i].ID)
		}
	}
	h := f.New()
	bw := &hashWriter{w: w, h: h}
	buf := make([]byte, 0, 64<<10)
	flush := func(force bool) {
		if len(buf) > 60<<10 || force {
			bw.Write(buf)
			buf = buf[:0]
		}
	}
	buf = append(buf, idxMagic...)
	buf = appendBE32(buf, 2)
	var counts [256]uint32
	for _, e := range entries {
		counts[e.ID.Raw()[0]]++
	}
	total := uint32(0)
	for i := 0; i < 256; i++ {
		total += counts[i]
		buf = appendBE32(buf, total)
	}
	for _, e := range entries {
		buf = append(buf, e.ID.Raw()...)
		flush(false)
	}
	for _, e := range entries {
		buf = appendBE32(buf, e.CRC32)
		flush(false)
	}
	nlarge := uint32(0)
	for _, e := range entries {
		if e.Offset > largeOffset-1 {
			buf = appendBE32(buf, largeOffset|nlarge)
			nlarge++
		} else {
			buf = appendBE32(buf, uint32(e.Offset))
		}
		flush(false)
	}
	for _, e := range entries {
		if e.Offset > largeOffset-1 {
			buf = appendBE64(buf, e.Offset)
			flush(false)
		}
	}
	buf = append(buf, packChecksum...)
	flush(true)
	if bw.err != nil {
		return nil, fmt.Errorf("pack: write index: %w", bw.err)
	}
	sum := h.Sum(nil)
	if _, err := w.Write(sum); err != nil {
		return nil, fmt.Errorf("pack: write index: %w", err)
	}
	return sum, nil
}

// hashWriter writes to w and hashes what it wrote, remembering the first
// error.
type hashWriter struct {
	w   io.Writer
	h   io.Writer
	err error
}

func (hw *hashWriter) Write(p []byte) (int, error) {
	if hw.err != nil {
		return 0, hw.err
	}
	hw.h.Write(p)
	n, err := hw.w.Write(p)
	hw.err = err
	return n, err
}
