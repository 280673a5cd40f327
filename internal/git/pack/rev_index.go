package pack

import (
	"bytes"
	"fmt"
	"io"
	"slices"

	"gotd/internal/git/oid"
	"gotd/internal/mmapfile"
)

// Reverse index (gitformat-pack(5), "pack-*.rev files have the format"):
// magic RIDX, version 1, hash function id, then for each object in pack
// order its position in the .idx, then the pack checksum and the file's
// own checksum.

var revMagic = []byte{'R', 'I', 'D', 'X'}

const revHeaderSize = 12

// parseRev checks a .rev file against its index and returns the table of
// index positions in pack order.
func parseRev(data []byte, idx *Index) ([]byte, error) {
	hs := idx.hs
	n := idx.n
	if len(data) != revHeaderSize+4*n+2*hs {
		return nil, corruptf("reverse index has %d bytes; want %d", len(data), revHeaderSize+4*n+2*hs)
	}
	if !bytes.Equal(data[:4], revMagic) {
		return nil, corruptf("bad reverse index signature")
	}
	if v := be32(data[4:]); v != 1 {
		return nil, corruptf("unsupported reverse index version %d", v)
	}
	if id := be32(data[8:]); id != idx.f.FormatID() {
		return nil, corruptf("reverse index hash id %d does not match %s", id, idx.f)
	}
	table := data[revHeaderSize : revHeaderSize+4*n]
	if !bytes.Equal(data[revHeaderSize+4*n:revHeaderSize+4*n+hs], idx.PackChecksum()) {
		return nil, corruptf("reverse index belongs to another pack")
	}
	// Every index position once, in increasing pack offset.
	prev := uint64(0)
	for k := 0; k < n; k++ {
		pos := int(be32(table[4*k:]))
		if pos >= n {
			return nil, corruptf("reverse index position out of range")
		}
		off := idx.Offset(pos)
		if k > 0 && off <= prev {
			return nil, corruptf("reverse index is not in pack order")
		}
		prev = off
	}
	return table, nil
}

// buildRev computes the table a .rev file would hold by sorting index
// positions by offset: 4 bytes per object.
func buildRev(idx *Index) []byte {
	pos := make([]uint32, idx.n)
	for i := range pos {
		pos[i] = uint32(i)
	}
	slices.SortFunc(pos, func(a, b uint32) int {
		oa, ob := idx.Offset(int(a)), idx.Offset(int(b))
		switch {
		case oa < ob:
			return -1
		case oa > ob:
			return 1
		}
		return 0
	})
	table := make([]byte, 0, 4*len(pos))
	for _, p := range pos {
		table = appendBE32(table, p)
	}
	return table
}

// WriteRev writes the .rev file of a pack whose index lists entries (in
// id order, as WriteIndex leaves them), exactly as git writes it, and
// returns its checksum.
func WriteRev(w io.Writer, f oid.Format, entries []IndexEntry, packChecksum []byte) ([]byte, error) {
	if len(packChecksum) != f.Size() {
		return nil, fmt.Errorf("pack: pack checksum of %d bytes for %s", len(packChecksum), f)
	}
	pos := make([]uint32, len(entries))
	for i := range pos {
		pos[i] = uint32(i)
	}
	slices.SortFunc(pos, func(a, b uint32) int {
		oa, ob := entries[a].Offset, entries[b].Offset
		switch {
		case oa < ob:
			return -1
		case oa > ob:
			return 1
		}
		return 0
	})
	h := f.New()
	buf := make([]byte, 0, revHeaderSize+4*len(pos)+f.Size())
	buf = append(buf, revMagic...)
	buf = appendBE32(buf, 1)
	buf = appendBE32(buf, f.FormatID())
	for _, p := range pos {
		buf = appendBE32(buf, p)
	}
	buf = append(buf, packChecksum...)
	h.Write(buf)
	buf = h.Sum(buf)
	if _, err := w.Write(buf); err != nil {
		return nil, fmt.Errorf("pack: write reverse index: %w", err)
	}
	return buf[len(buf)-f.Size():], nil
}

// openRev maps the .rev file at path and checks it against idx.
func openRev(path string, idx *Index) (*mmapfile.File, []byte, error) {
	mf, err := mmapfile.Open(path)
	if err != nil {
		return nil, nil, err
	}
	table, err := parseRev(mf.Data, idx)
	if err != nil {
		mf.Close()
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return mf, table, nil
}
