package pack

import (
	"bytes"
	"fmt"
	"path/filepath"

	"gotd/internal/git/oid"
	"gotd/internal/mmapfile"
)

// Multi-pack-index (gitformat-pack(5), "multi-pack-index (MIDX) files
// have the following format"): a 12-byte header, a chunk table
// (gitformat-chunk(5)), then the chunks PNAM (pack names), OIDF
// (fan-out), OIDL (sorted ids), OOFF (pack number and offset per id) and
// LOFF (64-bit offsets), and a trailing checksum. Other chunks (RIDX,
// BTMP) are ignored.

var midxMagic = []byte{'M', 'I', 'D', 'X'}

// MaxMultiPackIndexPacks bounds the number of packs a multi-pack-index
// may name.
const MaxMultiPackIndexPacks = 1 << 20

// MultiPackIndex is an open multi-pack-index. Its methods are safe for
// concurrent use.
type MultiPackIndex struct {
	f      oid.Format
	hs     int
	n      int
	names  []string
	fanout []byte
	ids    []byte
	offs   []byte
	large  []byte
	file   *mmapfile.File
}

// OpenMultiPackIndex opens packDir/multi-pack-index. A missing file is
// an error wrapping os.ErrNotExist.
func OpenMultiPackIndex(packDir string, f oid.Format) (*MultiPackIndex, error) {
	path := filepath.Join(packDir, "multi-pack-index")
	mf, err := mmapfile.Open(path)
	if err != nil {
		return nil, fmt.Errorf("pack: %w", err)
	}
	m, err := ParseMultiPackIndex(mf.Data, f)
	if err != nil {
		mf.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	m.file = mf
	return m, nil
}

// ParseMultiPackIndex parses a multi-pack-index held in data, which it
// keeps referring to. Every chunk is bounds-checked and every pack
// number and large-offset reference validated; the checksum is not.
func ParseMultiPackIndex(data []byte, f oid.Format) (*MultiPackIndex, error) {
	hs := f.Size()
	if len(data) < 12+hs {
		return nil, corruptf("multi-pack-index too short")
	}
	if !bytes.Equal(data[:4], midxMagic) {
		return nil, corruptf("bad multi-pack-index signature")
	}
	if data[4] != 1 {
		return nil, corruptf("unsupported multi-pack-index version %d", data[4])
	}
	if uint32(data[5]) != f.FormatID() {
		return nil, corruptf("multi-pack-index hash id %d does not match %s", data[5], f)
	}
	nchunks := int(data[6])
	if data[7] != 0 {
		return nil, corruptf("incremental multi-pack-index chains are not supported")
	}
	npacks := be32(data[8:])
	if npacks > MaxMultiPackIndexPacks {
		return nil, corruptf("multi-pack-index names %d packs", npacks)
	}
	tableEnd := 12 + (nchunks+1)*12
	end := len(data) - hs
	if tableEnd > end {
		return nil, corruptf("multi-pack-index chunk table truncated")
	}
	chunks := map[string][]byte{}
	for i := 0; i < nchunks; i++ {
		row := data[12+i*12:]
		start, stop := be64(row[4:]), be64(row[16:])
		if start < uint64(tableEnd) || stop < start || stop > uint64(end) {
			return nil, corruptf("multi-pack-index chunk %q out of bounds", row[:4])
		}
		chunks[string(row[:4])] = data[start:stop]
	}
	m := &MultiPackIndex{f: f, hs: hs}
	for _, id := range []string{"PNAM", "OIDF", "OIDL", "OOFF"} {
		if chunks[id] == nil {
			return nil, corruptf("multi-pack-index lacks chunk %s", id)
		}
	}
	for _, name := range bytes.Split(chunks["PNAM"], []byte{0}) {
		if len(name) > 0 {
			m.names = append(m.names, string(name))
		}
	}
	if len(m.names) != int(npacks) {
		return nil, corruptf("multi-pack-index names %d packs; header says %d", len(m.names), npacks)
	}
	m.fanout = chunks["OIDF"]
	if len(m.fanout) != fanoutSize {
		return nil, corruptf("multi-pack-index fan-out has %d bytes", len(m.fanout))
	}
	prev := uint32(0)
	for i := 0; i < 256; i++ {
		v := be32(m.fanout[4*i:])
		if v < prev {
			return nil, corruptf("multi-pack-index fan-out is not monotonic")
		}
		prev = v
	}
	m.n = int(prev)
	m.ids, m.offs, m.large = chunks["OIDL"], chunks["OOFF"], chunks["LOFF"]
	if len(m.ids) != m.n*hs || len(m.offs) != m.n*8 || len(m.large)%8 != 0 {
		return nil, corruptf("multi-pack-index chunk sizes do not match %d objects", m.n)
	}
	for i := 0; i < m.n; i++ {
		if be32(m.offs[8*i:]) >= npacks {
			return nil, corruptf("multi-pack-index pack number out of range")
		}
		if v := be32(m.offs[8*i+4:]); v&largeOffset != 0 && int(v&^largeOffset) >= len(m.large)/8 {
			return nil, corruptf("multi-pack-index large offset reference out of range")
		}
		if i > 0 && bytes.Compare(m.ids[(i-1)*hs:i*hs], m.ids[i*hs:(i+1)*hs]) >= 0 {
			return nil, corruptf("multi-pack-index ids are not sorted")
		}
	}
	return m, nil
}

// Close releases the mapping.
func (m *MultiPackIndex) Close() error { return m.file.Close() }

// PackNames returns the names of the packs' index files, as stored
// ("pack-<hash>.idx"), in the order pack numbers refer to them.
func (m *MultiPackIndex) PackNames() []string { return m.names }

// Count returns the number of objects.
func (m *MultiPackIndex) Count() int { return m.n }

// ID returns the i-th id in sorted order.
func (m *MultiPackIndex) ID(i int) oid.ID { return oid.MustFromBytes(m.f, m.ids[i*m.hs:(i+1)*m.hs]) }

// Find returns the pack number and offset of id.
func (m *MultiPackIndex) Find(id oid.ID) (pack int, offset uint64, ok bool) {
	key := id.Raw()
	if len(key) != m.hs {
		return 0, 0, false
	}
	lo := 0
	if key[0] > 0 {
		lo = int(be32(m.fanout[4*(int(key[0])-1):]))
	}
	hi := int(be32(m.fanout[4*int(key[0]):]))
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		switch c := bytes.Compare(m.ids[mid*m.hs:(mid+1)*m.hs], key); {
		case c == 0:
			pack = int(be32(m.offs[8*mid:]))
			v := be32(m.offs[8*mid+4:])
			if v&largeOffset != 0 {
				return pack, be64(m.large[8*(v&^largeOffset):]), true
			}
			return pack, uint64(v), true
		case c < 0:
			lo = mid + 1
		default:
			hi = mid
		}
	}
	return 0, 0, false
}
