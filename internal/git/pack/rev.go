package pack

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"slices"

	"gotd/internal/git/oid"
)

// Reverse index, gitformat-pack(5) "pack-*.rev files have the format":
// the magic RIDX, version 1, the hash function id, then for each object
// in pack order its position in the .idx, then the pack's checksum and
// the file's own checksum.

var revMagic = [4]byte{'R', 'I', 'D', 'X'}

const revHeaderSize = 12

// RevIndex is a parsed .rev file: the index positions of a pack's
// objects in the order they are stored. Its methods are safe for
// concurrent use; one from OpenRev must be closed and not used after.
type RevIndex struct {
	n     int
	hs    int
	data  []byte
	table []byte
	idx   *Index
	m     *mapping
}

// ParseRev parses a reverse index held in data (which it keeps
// referring to) for the pack that idx describes. It checks the
// signature, version and hash id, the exact size for idx's object
// count and that it names the same pack as idx. It reads only the
// header and the trailer, whatever the object count. It does not hash
// the file nor check the positions (see Verify), so a corrupt but
// well-formed .rev yields wrong positions, never an out-of-range one
// (IndexPos reads a position out of range as 0).
func ParseRev(data []byte, f oid.Format, idx *Index) (*RevIndex, error) {
	if !f.Valid() || idx == nil || idx.f != f {
		return nil, fmt.Errorf("pack: parse reverse index: format %d does not match the index", f)
	}
	hs, n := f.Size(), idx.n
	if uint64(len(data)) != revHeaderSize+4*uint64(n)+2*uint64(hs) {
		return nil, corruptf("reverse index of %d bytes does not fit %d objects", len(data), n)
	}
	if !bytes.Equal(data[:4], revMagic[:]) {
		return nil, corruptf("reverse index has no RIDX signature")
	}
	if v := be32(data[4:]); v != 1 {
		return nil, corruptf("unsupported reverse index version %d", v)
	}
	if id := be32(data[8:]); id != f.FormatID() {
		return nil, corruptf("reverse index hash id %d is not %s", id, f)
	}
	end := revHeaderSize + 4*n
	if !bytes.Equal(data[end:end+hs], idx.PackChecksum()) {
		return nil, corruptf("reverse index belongs to another pack")
	}
	table := data[revHeaderSize:end]
	return &RevIndex{n: n, hs: hs, data: data, table: table, idx: idx}, nil
}

// OpenRev maps the .rev file at path read-only and parses it as
// ParseRev does. A missing file is an error wrapping os.ErrNotExist.
// The caller must Close the RevIndex, before closing idx.
func OpenRev(path string, f oid.Format, idx *Index) (*RevIndex, error) {
	m, err := mapFile(path)
	if err != nil {
		return nil, fmt.Errorf("pack: open reverse index: %w", err)
	}
	r, err := ParseRev(m.data, f, idx)
	if err != nil {
		m.close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	r.m = m
	return r, nil
}

// Close releases the mapping of a RevIndex from OpenRev.
func (r *RevIndex) Close() error { return r.m.close() }

// Count returns the number of objects.
func (r *RevIndex) Count() int { return r.n }

// IndexPos returns the index position of the packPos-th object in pack
// order, or -1 when packPos is out of range. A position the file gives
// out of range reads as 0: a wrong position, as a corrupt file gives,
// and one Verify finds (two pack positions then name index position 0).
func (r *RevIndex) IndexPos(packPos int) int {
	if packPos < 0 || packPos >= r.n {
		return -1
	}
	if i := be32(r.table[4*packPos:]); i < uint32(r.n) {
		return int(i)
	}
	return 0
}

// Verify recomputes the file's checksum and checks that its positions
// list the index's objects in strictly increasing pack offsets, which
// also makes it a permutation. It reads the whole file and the index's
// offsets in random order.
func (r *RevIndex) Verify() error {
	h := checksumHash(r.idx.f)
	h.Write(r.data[:len(r.data)-r.hs])
	var sum [oid.MaxSize]byte
	if !bytes.Equal(h.Sum(sum[:0]), r.data[len(r.data)-r.hs:]) {
		return corruptf("reverse index checksum mismatch")
	}
	return r.checkOrder()
}

// checkOrder checks that the positions list objects in strictly
// increasing offsets.
func (r *RevIndex) checkOrder() error {
	var prev uint64
	for k := 0; k < r.n; k++ {
		off := r.idx.Offset(r.IndexPos(k))
		if k > 0 && off <= prev {
			return corruptf("reverse index is not in pack order at %d", k)
		}
		prev = off
	}
	return nil
}

// WriteRev writes to w the .rev file of a pack whose index lists entries
// (sorted by id, as WriteIndex leaves them), byte for byte as git
// index-pack --rev-index writes it, and returns the file's checksum.
// Entries must have distinct offsets. It allocates 4 bytes per entry.
func WriteRev(w io.Writer, f oid.Format, entries []IndexEntry, packChecksum []byte) ([]byte, error) {
	if !f.Valid() {
		return nil, fmt.Errorf("pack: write reverse index: invalid object format %d", f)
	}
	if len(packChecksum) != f.Size() {
		return nil, fmt.Errorf("pack: write reverse index: pack checksum of %d bytes for %s", len(packChecksum), f)
	}
	if uint64(len(entries)) > 1<<32-1 {
		return nil, fmt.Errorf("pack: write reverse index: %d objects do not fit", len(entries))
	}
	for i := 1; i < len(entries); i++ {
		if entries[i-1].ID.Compare(entries[i].ID) >= 0 {
			return nil, fmt.Errorf("pack: write reverse index: entries are not sorted by id at %d", i)
		}
	}
	pos := make([]uint32, len(entries))
	orderByOffset(pos, func(i int) uint64 { return entries[i].Offset })
	for k := 1; k < len(pos); k++ {
		if entries[pos[k-1]].Offset == entries[pos[k]].Offset {
			return nil, fmt.Errorf("pack: write reverse index: two objects at offset %d", entries[pos[k]].Offset)
		}
	}
	cw := newChecksumWriter(w, f)
	cw.write(revMagic[:])
	cw.be32(1)
	cw.be32(f.FormatID())
	for _, p := range pos {
		cw.be32(p)
	}
	cw.write(packChecksum)
	sum, err := cw.finish()
	if err != nil {
		return nil, fmt.Errorf("pack: write reverse index: %w", err)
	}
	return sum, nil
}

// orderByOffset fills pos with the positions 0..len(pos)-1 sorted by the
// pack offset of the object at each: pack order, as a .rev file lists it.
func orderByOffset(pos []uint32, offset func(i int) uint64) {
	for i := range pos {
		pos[i] = uint32(i)
	}
	slices.SortFunc(pos, func(a, b uint32) int { return cmp.Compare(offset(int(a)), offset(int(b))) })
}
