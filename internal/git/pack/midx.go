package pack

import (
	"bytes"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"gotd/internal/git/oid"
)

// Multi-pack-index, gitformat-pack(5) "multi-pack-index (MIDX) files
// have the following format": a 12-byte header (signature, version, hash
// id, chunk count, base file count, pack count), a table of chunks as
// gitformat-chunk(5) lays them out, the chunks, and a trailing
// checksum. This package reads the chunks PNAM (pack names), OIDF
// (fan-out), OIDL (sorted ids), OOFF (pack number and offset per id),
// LOFF (64-bit offsets) and RIDX (the reverse index, which a
// multi-pack bitmap's positions follow); others (BTMP, ...) are
// skipped.

var midxMagic = [4]byte{'M', 'I', 'D', 'X'}

const midxHeaderSize = 12

// MultiPackIndex is a parsed multi-pack-index. Its methods do not
// allocate and are safe for concurrent use. One from OpenMultiPackIndex
// refers to a read-only mapping: Close it, and use nothing it returned
// afterwards.
type MultiPackIndex struct {
	f      oid.Format
	hs     int
	n      int
	data   []byte
	names  []string
	fanout []byte
	ids    []byte
	offs   []byte
	large  []byte
	ridx   []byte // nil without a RIDX chunk
	m      *mapping
}

// OpenMultiPackIndex maps packDir/multi-pack-index read-only and parses
// it as ParseMultiPackIndex does; packDir is a repository's objects/pack
// directory. A missing file is an error wrapping os.ErrNotExist. The
// caller must Close the result.
func OpenMultiPackIndex(packDir string, f oid.Format) (*MultiPackIndex, error) {
	path := filepath.Join(packDir, "multi-pack-index")
	m, err := mapFile(path)
	if err != nil {
		return nil, fmt.Errorf("pack: open multi-pack-index: %w", err)
	}
	x, err := ParseMultiPackIndex(m.data, f)
	if err != nil {
		m.close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	x.m = m
	return x, nil
}

// ParseMultiPackIndex parses a multi-pack-index held in data, which the
// result keeps referring to. It checks the header, the chunk table
// (offsets increasing and inside the file, no chunk twice, a zero
// terminating id), the sizes of the chunks it reads against the object
// and pack counts, the pack names (sorted, plain file names ending in
// .idx), and every pack number and 64-bit offset reference, so that no
// accessor can read out of bounds. It neither hashes the file nor checks
// the order of the ids (see Verify). It allocates the pack names.
func ParseMultiPackIndex(data []byte, f oid.Format) (*MultiPackIndex, error) {
	if !f.Valid() {
		return nil, fmt.Errorf("pack: parse multi-pack-index: invalid object format %d", f)
	}
	hs := f.Size()
	if len(data) < midxHeaderSize+12+hs {
		return nil, corruptf("multi-pack-index of %d bytes is too short", len(data))
	}
	if !bytes.Equal(data[:4], midxMagic[:]) {
		return nil, corruptf("multi-pack-index has no MIDX signature")
	}
	if data[4] != 1 {
		return nil, corruptf("unsupported multi-pack-index version %d", data[4])
	}
	if uint32(data[5]) != f.FormatID() {
		return nil, corruptf("multi-pack-index hash id %d is not %s", data[5], f)
	}
	nchunks := int(data[6])
	if data[7] != 0 {
		return nil, corruptf("multi-pack-index has %d base files; chains are not supported", data[7])
	}
	npacks := be32(data[8:])

	// The chunk table: nchunks rows and a terminating row whose offset
	// is the end of the last chunk.
	tableEnd := midxHeaderSize + (nchunks+1)*12
	trailer := len(data) - hs
	if tableEnd > trailer {
		return nil, corruptf("multi-pack-index chunk table is truncated")
	}
	var pnam, oidf, oidl, ooff, loff, ridx []byte
	var seen [][4]byte
	for i := 0; i < nchunks; i++ {
		row := data[midxHeaderSize+12*i:]
		var id [4]byte
		copy(id[:], row[:4])
		start, stop := be64(row[4:]), be64(row[16:])
		if id == [4]byte{} {
			return nil, corruptf("multi-pack-index chunk %d has a zero id", i)
		}
		if start < uint64(tableEnd) || stop < start || stop > uint64(trailer) {
			return nil, corruptf("multi-pack-index chunk %q is out of bounds", id[:])
		}
		if slices.Contains(seen, id) {
			return nil, corruptf("multi-pack-index has chunk %q twice", id[:])
		}
		seen = append(seen, id)
		chunk := data[start:stop:stop]
		switch string(id[:]) {
		case "PNAM":
			pnam = chunk
		case "OIDF":
			oidf = chunk
		case "OIDL":
			oidl = chunk
		case "OOFF":
			ooff = chunk
		case "LOFF":
			loff = chunk
		case "RIDX":
			ridx = chunk
		}
	}
	if last := data[midxHeaderSize+12*nchunks:]; !bytes.Equal(last[:4], []byte{0, 0, 0, 0}) {
		return nil, corruptf("multi-pack-index chunk table is not terminated")
	}
	for _, c := range []struct {
		id   string
		data []byte
	}{{"PNAM", pnam}, {"OIDF", oidf}, {"OIDL", oidl}, {"OOFF", ooff}} {
		if c.data == nil {
			return nil, corruptf("multi-pack-index lacks the %s chunk", c.id)
		}
	}

	x := &MultiPackIndex{f: f, hs: hs, data: data}
	names, err := parsePackNames(pnam, npacks)
	if err != nil {
		return nil, err
	}
	x.names = names

	if len(oidf) != fanoutSize {
		return nil, corruptf("multi-pack-index fan-out has %d bytes", len(oidf))
	}
	var prev uint32
	for i := 0; i < 256; i++ {
		v := be32(oidf[4*i:])
		if v < prev {
			return nil, corruptf("multi-pack-index fan-out decreases at byte %#02x", i)
		}
		prev = v
	}
	n := uint64(prev)
	if uint64(len(oidl)) != n*uint64(hs) || uint64(len(ooff)) != 8*n || len(loff)%8 != 0 {
		return nil, corruptf("multi-pack-index chunk sizes do not fit %d objects", n)
	}
	if ridx != nil && uint64(len(ridx)) != 4*n {
		return nil, corruptf("multi-pack-index reverse index has %d bytes for %d objects", len(ridx), n)
	}
	x.n, x.fanout, x.ids, x.offs, x.large, x.ridx = int(n), oidf, oidl, ooff, loff, ridx
	nlarge := uint32(len(loff) / 8)
	for i := 0; i < x.n; i++ {
		if be32(ooff[8*i:]) >= npacks {
			return nil, corruptf("multi-pack-index object %d names pack %d of %d", i, be32(ooff[8*i:]), npacks)
		}
		// Without a LOFF chunk a set high bit is part of a 32-bit offset.
		if v := be32(ooff[8*i+4:]); loff != nil && v&largeOffsetFlag != 0 && v&^largeOffsetFlag >= nlarge {
			return nil, corruptf("multi-pack-index object %d refers to 64-bit offset %d of %d", i, v&^largeOffsetFlag, nlarge)
		}
	}
	return x, nil
}

// parsePackNames splits the PNAM chunk: npacks NUL-terminated names in
// increasing order, then zero padding. Each name must be a plain file
// name ending in ".idx", so that joining it to the pack directory cannot
// reach another directory.
func parsePackNames(pnam []byte, npacks uint32) ([]string, error) {
	// Every name takes at least two bytes, which bounds the allocation
	// by the chunk's size whatever the header claims.
	if uint64(npacks) > uint64(len(pnam))/2 {
		return nil, corruptf("multi-pack-index names %d packs in %d bytes", npacks, len(pnam))
	}
	names := make([]string, 0, npacks)
	rest := pnam
	for len(names) < int(npacks) {
		end := bytes.IndexByte(rest, 0)
		if end < 0 {
			return nil, corruptf("multi-pack-index pack name is not terminated")
		}
		name := string(rest[:end])
		rest = rest[end+1:]
		if !validPackIndexName(name) {
			return nil, corruptf("multi-pack-index has a bad pack name %q", name)
		}
		if len(names) > 0 && names[len(names)-1] >= name {
			return nil, corruptf("multi-pack-index pack names are not sorted")
		}
		names = append(names, name)
	}
	for _, b := range rest {
		if b != 0 {
			return nil, corruptf("multi-pack-index has data after its pack names")
		}
	}
	return names, nil
}

// validPackIndexName reports whether name is a plain .idx file name.
func validPackIndexName(name string) bool {
	return len(name) > len(".idx") && strings.HasSuffix(name, ".idx") &&
		name[0] != '.' && !strings.ContainsAny(name, "/\\")
}

// Close releases the mapping of a MultiPackIndex from
// OpenMultiPackIndex.
func (m *MultiPackIndex) Close() error { return m.m.close() }

// Format returns the object format.
func (m *MultiPackIndex) Format() oid.Format { return m.f }

// PackNames returns the names of the packs' index files as stored
// ("pack-<checksum>.idx"), in the order pack numbers refer to them. Each
// is a plain file name. The caller must not modify the slice.
func (m *MultiPackIndex) PackNames() []string { return m.names }

// Count returns the number of objects.
func (m *MultiPackIndex) Count() int { return m.n }

// ID returns the i-th id in sorted order; i must be in [0, Count).
func (m *MultiPackIndex) ID(i int) oid.ID {
	return oid.MustFromBytes(m.f, m.ids[i*m.hs:(i+1)*m.hs])
}

// Object returns the pack number and offset of the i-th object; i must
// be in [0, Count). The pack number is below len(PackNames()); the
// offset is unchecked against the pack.
func (m *MultiPackIndex) Object(i int) (pack int, offset uint64) {
	pack = int(be32(m.offs[8*i:]))
	v := be32(m.offs[8*i+4:])
	if m.large != nil && v&largeOffsetFlag != 0 {
		return pack, be64(m.large[8*(v&^largeOffsetFlag):])
	}
	return pack, uint64(v)
}

// Find returns the pack number and offset of id, or false. It uses the
// fan-out and a binary search, and does not allocate.
func (m *MultiPackIndex) Find(id oid.ID) (pack int, offset uint64, ok bool) {
	i, ok := m.FindIndex(id)
	if !ok {
		return 0, 0, false
	}
	pack, offset = m.Object(i)
	return pack, offset, true
}

// FindIndex returns the position of id in sorted order, or false.
func (m *MultiPackIndex) FindIndex(id oid.ID) (int, bool) {
	key := id.Raw()
	if len(key) != m.hs {
		return 0, false
	}
	lo, hi := fanoutRange(m.fanout, key[0])
	if hi > m.n {
		hi = m.n
	}
	return searchIDs(m.ids, m.hs, lo, hi, key)
}

// Checksum returns the trailing checksum, which names the files that
// belong to this multi-pack-index (its bitmap,
// multi-pack-index-<checksum>.bitmap). The caller must not modify it.
func (m *MultiPackIndex) Checksum() []byte { return m.data[len(m.data)-m.hs:] }

// HasReverse reports whether the multi-pack-index has a reverse index
// (RIDX chunk), without which C Git uses no multi-pack bitmap.
func (m *MultiPackIndex) HasReverse() bool { return m.ridx != nil }

// IndexAtPseudoPos returns the sorted position of the object at
// position pos, 0 ≤ pos < Count(), of the pseudo-pack order (objects by
// pack, the preferred pack first, then by offset), from the reverse
// index. It fails without one or when the stored value is out of
// range; it does not check that the values form a permutation.
func (m *MultiPackIndex) IndexAtPseudoPos(pos int) (int, error) {
	if m.ridx == nil {
		return 0, corruptf("multi-pack-index has no reverse index")
	}
	if pos < 0 || pos >= m.n {
		return 0, fmt.Errorf("pack: pseudo-pack position %d out of range [0, %d)", pos, m.n)
	}
	i := be32(m.ridx[4*pos:])
	if uint64(i) >= uint64(m.n) {
		return 0, corruptf("multi-pack-index reverse index names object %d of %d", i, m.n)
	}
	return int(i), nil
}

// Verify recomputes the trailing checksum and checks that the ids are
// strictly increasing and counted by the fan-out. It reads the whole
// file.
func (m *MultiPackIndex) Verify() error {
	h := checksumHash(m.f)
	h.Write(m.data[:len(m.data)-m.hs])
	var sum [oid.MaxSize]byte
	if !bytes.Equal(h.Sum(sum[:0]), m.data[len(m.data)-m.hs:]) {
		return corruptf("multi-pack-index checksum mismatch")
	}
	return m.checkOrder()
}

// checkOrder checks that the ids are strictly increasing and that the
// fan-out counts them.
func (m *MultiPackIndex) checkOrder() error {
	return checkIDs("multi-pack-index", m.ids, m.hs, m.n, m.fanout)
}
