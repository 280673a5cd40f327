// Package commitgraph reads the commit-graph files C Git writes to speed
// up history walks (gitformat-commit-graph(5)): the single file
// objects/info/commit-graph and the split chain listed in
// objects/info/commit-graphs/commit-graph-chain.
//
// A Graph maps each commit it covers to a dense position. Positions are
// global over a chain: the commits of the base layer come first, then
// those of each later layer, each layer sorted by id. The files are
// mapped read-only; a Graph holds no per-commit memory, so opening one
// costs the same whatever the size of the history.
//
// Structure (header, chunk table, chunk sizes, fan-out, chain hashes) is
// validated when a file is opened; what depends on a single commit
// (parent positions, extra-edge lists, generation overflow entries) is
// validated when that commit is read, and a bad value is an error, never
// a panic or an out-of-range read.
package commitgraph

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"gotd/internal/git/oid"
	"gotd/internal/mmapfile"
)

// Chunk identifiers (gitformat-commit-graph(5), "CHUNK DATA").
const (
	chunkOIDFanout   = 0x4f494446 // "OIDF"
	chunkOIDLookup   = 0x4f49444c // "OIDL"
	chunkCommitData  = 0x43444154 // "CDAT"
	chunkGenData     = 0x47444132 // "GDA2"
	chunkGenOverflow = 0x47444f32 // "GDO2"
	chunkExtraEdges  = 0x45444745 // "EDGE"
	chunkBaseGraphs  = 0x42415345 // "BASE"
)

const (
	headerSize    = 8
	tocEntrySize  = 12
	fanoutSize    = 256 * 4
	parentNone    = 0x70000000 // CDAT: no parent in this slot
	edgeListFlag  = 0x80000000 // CDAT second parent: index into EDGE
	edgeLastFlag  = 0x80000000 // EDGE: last parent of the list
	genOffsetFlag = 0x80000000 // GDA2: index into GDO2

	// maxChain bounds the layers of a split chain; C Git merges layers
	// long before this.
	maxChain = 512
	// maxParents bounds the parents read for one commit, so a corrupt
	// extra-edge list costs at most this much work. Real octopus merges
	// stay far below it.
	maxParents = 1 << 16
	// maxCommits keeps every position below the CDAT parent markers.
	maxCommits = parentNone
)

// ErrCorrupt is wrapped by every error about malformed graph data.
var ErrCorrupt = errors.New("commitgraph: corrupt commit-graph")

func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
}

// Commit is what the graph records about one commit.
type Commit struct {
	ID   oid.ID
	Tree oid.ID
	// Parents are the parents' graph positions, in commit order. The
	// slice is reused by ReadCommit; copy it to keep it.
	Parents []uint32
	// Time is the committer time in seconds since the epoch (34 bits).
	Time int64
	// Generation is the corrected commit date when every layer carries
	// generation data (GDA2), else the topological level. Either way a
	// commit's generation is greater than each of its parents', except
	// that 0 means "not computed" (graphs from very old Git).
	Generation uint64
}

// Graph is an open commit-graph or commit-graph chain. It is safe for
// concurrent reads; Close must not race with them.
type Graph struct {
	format  oid.Format
	layers  []*layer // base first
	count   uint32
	genData bool // every layer has GDA2
}

// layer is one mapped file.
type layer struct {
	data     []byte
	base     uint32 // commits in earlier layers
	n        uint32
	fanout   []byte
	oids     []byte
	cdat     []byte
	edges    []byte
	gda2     []byte
	gdo2     []byte
	bases    []byte // BASE chunk
	nbase    int
	checksum []byte
}

// Open opens the commit-graph of the object directory objectsDir: the
// single file info/commit-graph if present, else the chain under
// info/commit-graphs. An error wrapping os.ErrNotExist means there is
// none; any other error means one exists but cannot be used, and the
// caller should walk without it. The caller must Close the Graph.
func Open(objectsDir string, f oid.Format) (*Graph, error) {
	if !f.Valid() {
		return nil, fmt.Errorf("commitgraph: invalid object format %v", f)
	}
	single := filepath.Join(objectsDir, "info", "commit-graph")
	data, err := mmapfile.Map(single)
	if err == nil {
		l, err := parseLayer(data, f)
		if err != nil {
			mmapfile.Unmap(data)
			return nil, fmt.Errorf("commitgraph: %s: %w", single, err)
		}
		if l.nbase != 0 {
			mmapfile.Unmap(data)
			return nil, fmt.Errorf("commitgraph: %s: %w", single, corruptf("single file names %d base graphs", l.nbase))
		}
		return newGraph(f, []*layer{l}), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("commitgraph: %w", err)
	}
	// A writer removes the layers it merged once its chain is in
	// place: a layer missing after the chain was read means the chain
	// changed meanwhile, so read it again.
	for try := 0; ; try++ {
		g, err := openChain(filepath.Join(objectsDir, "info", "commit-graphs"), f)
		if errors.Is(err, errLayerGone) && try < 3 {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("commitgraph: %w", err)
		}
		return g, nil
	}
}

// errLayerGone is wrapped by openChain's error when a layer the chain
// names does not exist.
var errLayerGone = errors.New("layer named by the chain is missing")

// openChain opens the layers listed in dir/commit-graph-chain.
func openChain(dir string, f oid.Format) (*Graph, error) {
	chainPath := filepath.Join(dir, "commit-graph-chain")
	names, err := readChain(chainPath, f)
	if err != nil {
		return nil, err
	}
	var layers []*layer
	fail := func(err error) (*Graph, error) {
		for _, l := range layers {
			mmapfile.Unmap(l.data)
		}
		return nil, err
	}
	for i, name := range names {
		path := filepath.Join(dir, "graph-"+name.String()+".graph")
		data, err := mmapfile.Map(path)
		if err != nil {
			// A chain naming a missing layer is broken, not absent:
			// do not let the caller mistake it for "no graph".
			if errors.Is(err, os.ErrNotExist) {
				return fail(corruptf("%w: %v", errLayerGone, err))
			}
			return fail(corruptf("%v", err))
		}
		l, err := parseLayer(data, f)
		if err != nil {
			mmapfile.Unmap(data)
			return fail(fmt.Errorf("%s: %w", path, err))
		}
		layers = append(layers, l)
		if err := checkChainLayer(l, i, names); err != nil {
			return fail(fmt.Errorf("%s: %w", path, err))
		}
	}
	var total uint64
	for _, l := range layers {
		l.base = uint32(total)
		total += uint64(l.n)
		if total > maxCommits {
			return fail(corruptf("chain holds %d commits or more", total))
		}
	}
	return newGraph(f, layers), nil
}

// readChain reads a commit-graph-chain file: one hex id per line, base
// layer first.
func readChain(path string, f oid.Format) ([]oid.ID, error) {
	fd, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fd.Close()
	// A chain of maxChain layers fits in limit bytes; read one more to
	// notice a longer file without reading all of it.
	limit := int64(maxChain * (f.HexSize() + 1))
	buf, err := io.ReadAll(io.LimitReader(fd, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(buf)) > limit {
		return nil, corruptf("%s: longer than %d layers", path, maxChain)
	}
	return parseChain(buf, f)
}

// parseChain parses the contents of a commit-graph-chain file.
func parseChain(buf []byte, f oid.Format) ([]oid.ID, error) {
	var names []oid.ID
	for len(buf) > 0 {
		line, rest, ok := bytes.Cut(buf, []byte{'\n'})
		if !ok {
			return nil, corruptf("chain file: last line not terminated")
		}
		buf = rest
		id, err := oid.ParseHexBytes(f, line)
		if err != nil {
			return nil, corruptf("chain file: %v", err)
		}
		if len(names) == maxChain {
			return nil, corruptf("chain file: longer than %d layers", maxChain)
		}
		names = append(names, id)
	}
	if len(names) == 0 {
		return nil, corruptf("chain file: empty")
	}
	return names, nil
}

// checkChainLayer checks that layer i of a chain is the file the chain
// names (its trailing checksum) and that its BASE chunk lists exactly the
// layers below it.
func checkChainLayer(l *layer, i int, names []oid.ID) error {
	if !bytes.Equal(l.checksum, names[i].Bytes()) {
		return corruptf("checksum does not match the chain")
	}
	if l.nbase != i {
		return corruptf("layer %d names %d base graphs", i, l.nbase)
	}
	size := len(l.checksum)
	for j := 0; j < i; j++ {
		if !bytes.Equal(l.bases[j*size:(j+1)*size], names[j].Bytes()) {
			return corruptf("base graph %d does not match the chain", j)
		}
	}
	return nil
}

func newGraph(f oid.Format, layers []*layer) *Graph {
	g := &Graph{format: f, layers: layers, genData: true}
	for _, l := range layers {
		g.count += l.n
		if l.gda2 == nil {
			g.genData = false
		}
	}
	return g
}

// parseLayer validates the structure of one commit-graph file.
func parseLayer(data []byte, f oid.Format) (*layer, error) {
	hs := f.Size()
	if len(data) < headerSize+tocEntrySize+hs {
		return nil, corruptf("file too short (%d bytes)", len(data))
	}
	if string(data[:4]) != "CGPH" {
		return nil, corruptf("bad signature %q", data[:4])
	}
	if data[4] != 1 {
		return nil, corruptf("unsupported version %d", data[4])
	}
	if uint32(data[5]) != f.FormatID() {
		return nil, corruptf("hash version %d, want %d for %v", data[5], f.FormatID(), f)
	}
	nchunks := int(data[6])
	l := &layer{data: data, nbase: int(data[7])}
	end := len(data) - hs
	l.checksum = data[end:]
	tocEnd := headerSize + (nchunks+1)*tocEntrySize
	if tocEnd > end {
		return nil, corruptf("chunk table of %d entries overruns the file", nchunks)
	}
	seen := make(map[uint32]bool, nchunks)
	for i := 0; i < nchunks; i++ {
		e := data[headerSize+i*tocEntrySize:]
		id := binary.BigEndian.Uint32(e)
		start := binary.BigEndian.Uint64(e[4:])
		stop := binary.BigEndian.Uint64(e[4+tocEntrySize:])
		if id == 0 {
			return nil, corruptf("chunk %d has id 0 before the end of the table", i)
		}
		if start < uint64(tocEnd) || start > stop || stop > uint64(end) {
			return nil, corruptf("chunk %08x spans [%d, %d) outside [%d, %d)", id, start, stop, tocEnd, end)
		}
		if seen[id] {
			return nil, corruptf("duplicate chunk %08x", id)
		}
		seen[id] = true
		c := data[start:stop:stop]
		switch id {
		case chunkOIDFanout:
			l.fanout = c
		case chunkOIDLookup:
			l.oids = c
		case chunkCommitData:
			l.cdat = c
		case chunkGenData:
			l.gda2 = c
		case chunkGenOverflow:
			l.gdo2 = c
		case chunkExtraEdges:
			l.edges = c
		case chunkBaseGraphs:
			l.bases = c
		}
		// Other chunks (BIDX, BDAT bloom filters, the buggy GDAT/GDOV
		// that Git 2.36 stopped reading) are ignored.
	}
	if id := binary.BigEndian.Uint32(data[headerSize+nchunks*tocEntrySize:]); id != 0 {
		return nil, corruptf("chunk table not terminated (id %08x)", id)
	}
	if l.fanout == nil || l.oids == nil || l.cdat == nil {
		return nil, corruptf("missing a required chunk (OIDF, OIDL, CDAT)")
	}
	if len(l.fanout) != fanoutSize {
		return nil, corruptf("fan-out chunk is %d bytes, want %d", len(l.fanout), fanoutSize)
	}
	var prev uint32
	for i := 0; i < 256; i++ {
		v := binary.BigEndian.Uint32(l.fanout[i*4:])
		if v < prev {
			return nil, corruptf("fan-out decreases at byte %02x", i)
		}
		prev = v
	}
	if prev >= maxCommits {
		return nil, corruptf("%d commits is too many", prev)
	}
	l.n = prev
	n := uint64(l.n)
	if uint64(len(l.oids)) != n*uint64(hs) {
		return nil, corruptf("OID lookup chunk is %d bytes, want %d", len(l.oids), n*uint64(hs))
	}
	if uint64(len(l.cdat)) != n*uint64(hs+16) {
		return nil, corruptf("commit data chunk is %d bytes, want %d", len(l.cdat), n*uint64(hs+16))
	}
	if l.gda2 != nil && uint64(len(l.gda2)) != n*4 {
		return nil, corruptf("generation data chunk is %d bytes, want %d", len(l.gda2), n*4)
	}
	if len(l.gdo2)%8 != 0 {
		return nil, corruptf("generation overflow chunk is %d bytes", len(l.gdo2))
	}
	if len(l.edges)%4 != 0 {
		return nil, corruptf("extra edges chunk is %d bytes", len(l.edges))
	}
	if len(l.bases) != l.nbase*hs {
		return nil, corruptf("base graphs chunk is %d bytes, want %d", len(l.bases), l.nbase*hs)
	}
	return l, nil
}

// Close unmaps the files. The Graph must not be used afterwards.
func (g *Graph) Close() error {
	var first error
	for _, l := range g.layers {
		if err := mmapfile.Unmap(l.data); err != nil && first == nil {
			first = fmt.Errorf("commitgraph: %w", err)
		}
		l.data = nil
	}
	g.layers = nil
	g.count = 0
	return first
}

// Format returns the object format of the graph's ids.
func (g *Graph) Format() oid.Format { return g.format }

// Count returns the number of commits in the graph; valid positions are
// 0 through Count()-1.
func (g *Graph) Count() uint32 { return g.count }

// HasGenerationData reports whether Generation values are corrected
// commit dates (true) or topological levels (false).
func (g *Graph) HasGenerationData() bool { return g.genData }

// Lookup returns the position of commit id, if the graph has it.
func (g *Graph) Lookup(id oid.ID) (pos uint32, ok bool) {
	key := id.Bytes()
	if len(key) != g.format.Size() {
		return 0, false
	}
	hs := len(key)
	for i := len(g.layers) - 1; i >= 0; i-- {
		l := g.layers[i]
		lo := uint32(0)
		if key[0] > 0 {
			lo = binary.BigEndian.Uint32(l.fanout[(int(key[0])-1)*4:])
		}
		hi := binary.BigEndian.Uint32(l.fanout[int(key[0])*4:])
		for lo < hi {
			mid := lo + (hi-lo)/2
			switch c := bytes.Compare(l.oids[int(mid)*hs:int(mid+1)*hs], key); {
			case c == 0:
				return l.base + mid, true
			case c < 0:
				lo = mid + 1
			default:
				hi = mid
			}
		}
	}
	return 0, false
}

// locate returns the layer holding pos and pos's index in it.
func (g *Graph) locate(pos uint32) (*layer, uint32, error) {
	for i := len(g.layers) - 1; i >= 0; i-- {
		l := g.layers[i]
		if pos >= l.base {
			if pos-l.base >= l.n {
				break
			}
			return l, pos - l.base, nil
		}
	}
	return nil, 0, fmt.Errorf("commitgraph: position %d out of range [0, %d)", pos, g.count)
}

// ID returns the id of the commit at pos.
func (g *Graph) ID(pos uint32) (oid.ID, error) {
	l, i, err := g.locate(pos)
	if err != nil {
		return oid.ID{}, err
	}
	hs := g.format.Size()
	return oid.FromBytes(g.format, l.oids[int(i)*hs:int(i+1)*hs])
}

// Commit returns what the graph records about the commit at pos. The
// Parents slice is newly allocated; ReadCommit reuses one.
func (g *Graph) Commit(pos uint32) (Commit, error) {
	var c Commit
	err := g.ReadCommit(pos, &c)
	return c, err
}

// ReadCommit fills c with the commit at pos, appending the parents to
// c.Parents[:0] so that a caller reusing c allocates nothing.
func (g *Graph) ReadCommit(pos uint32, c *Commit) error {
	l, i, err := g.locate(pos)
	if err != nil {
		return err
	}
	hs := g.format.Size()
	c.ID, _ = oid.FromBytes(g.format, l.oids[int(i)*hs:int(i+1)*hs])
	rec := l.cdat[int(i)*(hs+16) : int(i+1)*(hs+16)]
	c.Tree, _ = oid.FromBytes(g.format, rec[:hs])
	c.Parents, err = g.appendParents(c.Parents[:0], l, pos, rec[hs:])
	if err != nil {
		return err
	}
	c.Time, c.Generation, err = g.timeGen(l, i, rec[hs+8:])
	return err
}

// AppendParents appends the positions of the parents of the commit at
// pos to dst.
func (g *Graph) AppendParents(dst []uint32, pos uint32) ([]uint32, error) {
	l, i, err := g.locate(pos)
	if err != nil {
		return dst, err
	}
	hs := g.format.Size()
	return g.appendParents(dst, l, pos, l.cdat[int(i)*(hs+16)+hs:])
}

// Tree returns the root tree of the commit at pos.
func (g *Graph) Tree(pos uint32) (oid.ID, error) {
	l, i, err := g.locate(pos)
	if err != nil {
		return oid.ID{}, err
	}
	hs := g.format.Size()
	off := int(i) * (hs + 16)
	return oid.FromBytes(g.format, l.cdat[off:off+hs])
}

// TimeGeneration returns the committer time and generation of the
// commit at pos (see Commit).
func (g *Graph) TimeGeneration(pos uint32) (when int64, gen uint64, err error) {
	l, i, err := g.locate(pos)
	if err != nil {
		return 0, 0, err
	}
	hs := g.format.Size()
	return g.timeGen(l, i, l.cdat[int(i)*(hs+16)+hs+8:])
}

// appendParents decodes the two parent words of a CDAT record (p) of the
// commit at global position pos in layer l. A parent must come before
// the end of l: commits only point into their own layer or lower ones.
func (g *Graph) appendParents(dst []uint32, l *layer, pos uint32, p []byte) ([]uint32, error) {
	limit := l.base + l.n
	check := func(v uint32) error {
		if v >= limit {
			return corruptf("commit %d: parent position %d out of range [0, %d)", pos, v, limit)
		}
		return nil
	}
	p1 := binary.BigEndian.Uint32(p)
	p2 := binary.BigEndian.Uint32(p[4:])
	if p1 == parentNone {
		if p2 != parentNone {
			return dst, corruptf("commit %d: second parent without a first", pos)
		}
		return dst, nil
	}
	if err := check(p1); err != nil {
		return dst, err
	}
	dst = append(dst, p1)
	switch {
	case p2 == parentNone:
		return dst, nil
	case p2&edgeListFlag == 0:
		if err := check(p2); err != nil {
			return dst, err
		}
		return append(dst, p2), nil
	}
	// An octopus merge: parents two onwards are in the extra-edge list,
	// the last one flagged.
	nedges := uint32(len(l.edges) / 4)
	for k := p2 &^ edgeListFlag; ; k++ {
		if k >= nedges {
			return dst, corruptf("commit %d: extra-edge list runs past the chunk", pos)
		}
		if len(dst) >= maxParents {
			return dst, corruptf("commit %d: more than %d parents", pos, maxParents)
		}
		e := binary.BigEndian.Uint32(l.edges[k*4:])
		v := e &^ edgeLastFlag
		if err := check(v); err != nil {
			return dst, err
		}
		dst = append(dst, v)
		if e&edgeLastFlag != 0 {
			return dst, nil
		}
	}
}

// timeGen decodes the time and generation of commit i of l; w is the last
// 8 bytes of its CDAT record.
func (g *Graph) timeGen(l *layer, i uint32, w []byte) (int64, uint64, error) {
	hi := binary.BigEndian.Uint32(w)
	when := int64(hi&3)<<32 | int64(binary.BigEndian.Uint32(w[4:]))
	if !g.genData {
		return when, uint64(hi >> 2), nil
	}
	off := binary.BigEndian.Uint32(l.gda2[i*4:])
	if off&genOffsetFlag == 0 {
		return when, uint64(when) + uint64(off), nil
	}
	k := int(off &^ genOffsetFlag)
	if k >= len(l.gdo2)/8 {
		return 0, 0, corruptf("commit %d: generation overflow index %d out of range", l.base+i, k)
	}
	return when, uint64(when) + binary.BigEndian.Uint64(l.gdo2[k*8:]), nil
}
