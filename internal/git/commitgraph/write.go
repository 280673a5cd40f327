package commitgraph

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gotd/internal/git/oid"
	"gotd/internal/git/perm"
)

// CommitInfo is what the writer records of one commit.
type CommitInfo struct {
	Tree    oid.ID
	Parents []oid.ID
	// Time is the committer time in seconds since the epoch; a negative
	// one is written as 0, as C Git reads it.
	Time int64
}

// CommitReader returns what Write records of the commit id. The
// returned Parents slice must not be changed afterwards.
type CommitReader func(id oid.ID) (CommitInfo, error)

// DefaultSizeFactor is the factor a layer must be larger than the
// commits written above it by to stay a layer of its own, as C Git's
// commit-graph write --split (--size-multiple=2).
const DefaultSizeFactor = 2

// DefaultMaxLayers bounds the layers of a chain Write leaves: past it,
// the smallest layers are merged whatever their sizes.
const DefaultMaxLayers = 16

const (
	// maxLevel is the largest topological level a CDAT record holds
	// (GENERATION_NUMBER_V1_MAX); deeper commits share it.
	maxLevel = 0x3fffffff
	// maxGenOffset is the largest corrected-date offset a GDA2 entry
	// holds itself; larger ones go to GDO2.
	maxGenOffset = 0x7fffffff
	chainLock    = "commit-graph-chain.lock"
)

// ErrLocked is wrapped by Write's error when another writer (C Git's
// commit-graph write, or a Write in another process) holds the chain's
// lock file.
var ErrLocked = errors.New("commitgraph: the commit-graph chain is locked by another writer")

// WriteOptions tune Write. The zero value adds a layer as C Git's
// commit-graph write --reachable --split does.
type WriteOptions struct {
	// Replace writes one layer holding every commit the tips reach,
	// without reading the graph that exists: after commits the graph
	// holds were removed, or when it is unusable. An unusable graph is
	// replaced without it.
	Replace bool
	// SizeFactor (0: DefaultSizeFactor): the top layer of the chain is
	// merged into the new one while it holds at most SizeFactor times
	// the commits gathered for it so far.
	SizeFactor int
	// MaxLayers (0: DefaultMaxLayers) bounds the layers left.
	MaxLayers int
	// Shared gives the files' permissions.
	Shared perm.Shared
	// Own, if not nil, is called with each file Write creates, before
	// it is renamed into place, and each directory it creates.
	Own func(path string)
}

// WriteReport says what Write did.
type WriteReport struct {
	// Commits is how many commits the new layer holds (0: nothing
	// written), New how many of them no layer held before, and Merged
	// how many old layers were merged into it.
	Commits, New, Merged int
	// Layers is how many layers the chain has now.
	Layers int
	// Replaced says the existing graph was set aside (Options.Replace,
	// or it was unusable).
	Replaced bool
	// GenerationData says the new layer has corrected commit dates
	// (GDA2); it lacks them only when a layer below it does.
	GenerationData bool
}

// Write brings the commit-graph chain of the object directory
// objectsDir (gitformat-commit-graph(5), "Split commit-graph files") up
// to date with every commit the tips reach: the commits no layer holds
// yet, read with read, go into one new layer on top of the chain,
// together with the top layers that are not larger than SizeFactor
// times what is written above them (as C Git's commit-graph write
// --split merges), so that the chain stays about log2 of the history
// long. A single info/commit-graph file counts as the chain's base
// layer and is turned into one. Every tip must be a commit.
//
// The files are written as C Git writes them and under its lock file,
// info/commit-graphs/commit-graph-chain.lock (ErrLocked if held): the
// new layer first, under its final name, then the chain file renamed
// into place, then the layers and the single file no longer named are
// removed. A reader sees the old chain or the new one; one that mapped
// the old layers keeps reading them. With no commits to add, nothing is
// written; with Replace and no tips, the graph is removed. On error the
// chain is as it was, though a layer file it does not name may be left.
// A lock file left by a writer that died blocks later writes until it
// is removed, as with C Git.
func Write(objectsDir string, f oid.Format, tips []oid.ID, read CommitReader, o WriteOptions) (*WriteReport, error) {
	if !f.Valid() {
		return nil, fmt.Errorf("commitgraph: invalid object format %v", f)
	}
	if o.SizeFactor <= 0 {
		o.SizeFactor = DefaultSizeFactor
	}
	if o.MaxLayers <= 0 {
		o.MaxLayers = DefaultMaxLayers
	}
	info := filepath.Join(objectsDir, "info")
	dir := filepath.Join(info, "commit-graphs")
	for _, d := range []string{info, dir} {
		err := o.Shared.Mkdir(d)
		switch {
		case err == nil && o.Own != nil:
			o.Own(d)
		case err != nil && !errors.Is(err, fs.ErrExist):
			return nil, fmt.Errorf("commitgraph: %w", err)
		}
	}
	lockPath := filepath.Join(dir, chainLock)
	lock, err := os.OpenFile(lockPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("%w (%s exists)", ErrLocked, lockPath)
	}
	if err != nil {
		return nil, fmt.Errorf("commitgraph: %w", err)
	}
	locked := true
	defer func() {
		if locked {
			lock.Close()
			os.Remove(lockPath)
		}
	}()

	rep := &WriteReport{Replaced: o.Replace}
	var g *Graph
	single, mergeAll := false, false
	if !o.Replace {
		g, err = Open(objectsDir, f)
		switch {
		case err == nil:
			defer g.Close()
			_, serr := os.Stat(filepath.Join(info, "commit-graph"))
			single = serr == nil && len(g.layers) == 1
		case errors.Is(err, os.ErrNotExist):
			g = nil
		default:
			g, rep.Replaced = nil, true
		}
	}
	var lookup func(oid.ID) (uint32, bool)
	if g != nil {
		lookup = g.Lookup
	} else {
		lookup = func(oid.ID) (uint32, bool) { return 0, false }
	}

	// The commits no layer holds, walked from the tips down to the
	// graph.
	commits, err := gather(f, tips, lookup, read)
	if err != nil {
		return nil, err
	}
	rep.New = len(commits)
	if len(commits) == 0 && !rep.Replaced {
		if g != nil {
			rep.Layers = len(g.layers)
		}
		return rep, nil
	}

	if single {
		// The single file can stay as the chain's base layer under the
		// name a layer has (a hard link; the old name goes once the
		// chain is in place); where it cannot be linked, it is merged.
		l := g.layers[0]
		id, _ := oid.FromBytes(f, l.checksum)
		to := filepath.Join(dir, "graph-"+id.String()+".graph")
		if err := os.Link(filepath.Join(info, "commit-graph"), to); err != nil && !errors.Is(err, fs.ErrExist) {
			mergeAll = true
		}
	}
	// Which layers stay below the new one: from the top down, a layer
	// is merged while it is not larger than SizeFactor times what is
	// gathered, or while too many would be left.
	kept := 0
	if g != nil {
		kept = len(g.layers)
		total := uint64(len(commits))
		for kept > 0 {
			l := g.layers[kept-1]
			if !mergeAll && uint64(l.n) > uint64(o.SizeFactor)*total && kept+1 <= o.MaxLayers {
				break
			}
			total += uint64(l.n)
			kept--
			rep.Merged++
		}
		// The commits of the merged layers, read back from them.
		for i := kept; i < len(g.layers); i++ {
			if commits, err = g.appendLayer(commits, g.layers[i]); err != nil {
				return nil, err
			}
		}
	}
	if len(commits) == 0 {
		// Replace with nothing reachable: no graph at all.
		if err := removeGraph(info, dir, nil); err != nil {
			return nil, err
		}
		return rep, nil
	}
	var below []*layer
	if g != nil {
		below = g.layers[:kept]
	}
	lw, err := newLayerWriter(f, g, below, commits)
	if err != nil {
		return nil, err
	}
	rep.Commits = len(commits)
	rep.GenerationData = lw.genData

	// The new layer, under its final name (the checksum it ends with).
	tmp, err := os.CreateTemp(dir, "tmp_graph_")
	if err != nil {
		return nil, fmt.Errorf("commitgraph: %w", err)
	}
	defer os.Remove(tmp.Name())
	h := f.New()
	bw := bufio.NewWriterSize(io.MultiWriter(tmp, h), 64<<10)
	err = lw.write(bw)
	if err == nil {
		err = bw.Flush()
	}
	var sum []byte
	if err == nil {
		sum = h.Sum(nil)
		_, err = tmp.Write(sum)
	}
	if err == nil && o.Own != nil {
		o.Own(tmp.Name())
	}
	if err == nil {
		err = o.Shared.Seal(tmp)
	} else {
		tmp.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("commitgraph: write layer: %w", err)
	}
	name, _ := oid.FromBytes(f, sum)
	if err := os.Rename(tmp.Name(), filepath.Join(dir, "graph-"+name.String()+".graph")); err != nil {
		return nil, fmt.Errorf("commitgraph: %w", err)
	}

	// The chain, written into the lock file and renamed over the old.
	var chain strings.Builder
	var names []string
	for _, l := range below {
		id, _ := oid.FromBytes(f, l.checksum)
		names = append(names, id.String())
	}
	names = append(names, name.String())
	for _, n := range names {
		chain.WriteString(n + "\n")
	}
	rep.Layers = len(names)
	if _, err := lock.WriteString(chain.String()); err != nil {
		return nil, fmt.Errorf("commitgraph: write chain: %w", err)
	}
	if o.Own != nil {
		o.Own(lockPath)
	}
	if err := o.Shared.Seal(lock); err != nil {
		return nil, fmt.Errorf("commitgraph: write chain: %w", err)
	}
	if err := os.Rename(lockPath, filepath.Join(dir, "commit-graph-chain")); err != nil {
		os.Remove(lockPath)
		locked = false
		return nil, fmt.Errorf("commitgraph: %w", err)
	}
	locked = false
	if err := perm.SyncDir(dir); err != nil {
		return rep, fmt.Errorf("commitgraph: %w", err)
	}
	if err := removeGraph(info, dir, names); err != nil {
		return rep, err
	}
	return rep, nil
}

// removeGraph removes the single file, and in dir every layer keep does
// not name and, with keep empty, the chain file.
func removeGraph(info, dir string, keep []string) error {
	var errs []error
	rm := func(path string) {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if len(keep) == 0 {
		rm(filepath.Join(dir, "commit-graph-chain"))
	}
	rm(filepath.Join(info, "commit-graph"))
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	for _, e := range ents {
		n := e.Name()
		h, ok := strings.CutPrefix(n, "graph-")
		if !ok {
			continue
		}
		h, ok = strings.CutSuffix(h, ".graph")
		if ok && !slices.Contains(keep, h) {
			rm(filepath.Join(dir, n))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("commitgraph: remove old files: %w", errors.Join(errs...))
	}
	return nil
}

// entry is a commit of the layer being written.
type entry struct {
	id, tree oid.ID
	parents  []oid.ID
	time     int64
	level    uint32 // topological level, 0 until computed
	gen      uint64 // corrected commit date
}

// gather walks from tips to every commit that inGraph does not find,
// reading each with read.
func gather(f oid.Format, tips []oid.ID, inGraph func(oid.ID) (uint32, bool), read CommitReader) ([]*entry, error) {
	seen := oid.NewSet(f, 0)
	var out []*entry
	stack := append([]oid.ID(nil), tips...)
	for len(stack) > 0 {
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if !seen.Add(id) {
			continue
		}
		if _, ok := inGraph(id); ok {
			continue
		}
		c, err := read(id)
		if err != nil {
			return nil, fmt.Errorf("commitgraph: read commit %v: %w", id, err)
		}
		if c.Tree.Format() != f {
			return nil, fmt.Errorf("commitgraph: commit %v: tree of format %v", id, c.Tree.Format())
		}
		out = append(out, &entry{id: id, tree: c.Tree, parents: c.Parents, time: max(c.Time, 0)})
		for _, p := range c.Parents {
			if p.Format() != f {
				return nil, fmt.Errorf("commitgraph: commit %v: parent of format %v", id, p.Format())
			}
			if !seen.Has(p) {
				stack = append(stack, p)
			}
		}
	}
	return out, nil
}

// appendLayer appends the commits of l, a layer of g, to dst.
func (g *Graph) appendLayer(dst []*entry, l *layer) ([]*entry, error) {
	var c Commit
	for pos := l.base; pos < l.base+l.n; pos++ {
		if err := g.ReadCommit(pos, &c); err != nil {
			return nil, err
		}
		e := &entry{id: c.ID, tree: c.Tree, time: c.Time}
		for _, p := range c.Parents {
			id, err := g.ID(p)
			if err != nil {
				return nil, err
			}
			e.parents = append(e.parents, id)
		}
		dst = append(dst, e)
	}
	return dst, nil
}

// layerWriter lays out one layer over the layers below.
type layerWriter struct {
	f       oid.Format
	g       *Graph // the old graph, whose first layers are below
	below   []*layer
	nbelow  uint32 // commits below
	commits []*entry
	index   map[oid.ID]uint32
	genData bool
	edges   []uint32
	over    []uint64 // GDO2
}

func newLayerWriter(f oid.Format, g *Graph, below []*layer, commits []*entry) (*layerWriter, error) {
	slices.SortFunc(commits, func(a, b *entry) int { return a.id.Compare(b.id) })
	lw := &layerWriter{f: f, g: g, below: below, commits: commits, genData: true}
	for _, l := range below {
		lw.nbelow += l.n
		if l.gda2 == nil {
			// Corrected dates build on the parents': without those of
			// a lower layer, write topological levels only, as a
			// reader would use only those anyway.
			lw.genData = false
		}
	}
	if uint64(lw.nbelow)+uint64(len(commits)) > maxCommits {
		return nil, fmt.Errorf("commitgraph: %d commits is too many", uint64(lw.nbelow)+uint64(len(commits)))
	}
	lw.index = make(map[oid.ID]uint32, len(commits))
	for i, e := range commits {
		if i > 0 && commits[i-1].id == e.id {
			return nil, fmt.Errorf("commitgraph: commit %v twice in the layer", e.id)
		}
		lw.index[e.id] = uint32(i)
	}
	if err := lw.generations(); err != nil {
		return nil, err
	}
	return lw, nil
}

// parentPos returns the global position of parent p of a commit of the
// layer.
func (lw *layerWriter) parentPos(p oid.ID) (uint32, error) {
	if i, ok := lw.index[p]; ok {
		return lw.nbelow + i, nil
	}
	if lw.g != nil {
		if pos, ok := lw.g.Lookup(p); ok && pos < lw.nbelow {
			return pos, nil
		}
	}
	return 0, fmt.Errorf("commitgraph: parent %v is in no layer", p)
}

// lowerGen returns the level and corrected date of the commit at pos in
// a layer below.
func (lw *layerWriter) lowerGen(pos uint32) (uint32, uint64, error) {
	l, i, err := lw.g.locate(pos)
	if err != nil {
		return 0, 0, err
	}
	hs := lw.f.Size()
	w := l.cdat[int(i)*(hs+16)+hs+8:]
	level := binary.BigEndian.Uint32(w) >> 2
	if !lw.genData {
		return level, 0, nil
	}
	when := int64(binary.BigEndian.Uint32(w)&3)<<32 | int64(binary.BigEndian.Uint32(w[4:]))
	off := binary.BigEndian.Uint32(l.gda2[i*4:])
	if off&genOffsetFlag == 0 {
		return level, uint64(when) + uint64(off), nil
	}
	k := int(off &^ genOffsetFlag)
	if k >= len(l.gdo2)/8 {
		return 0, 0, corruptf("commit %d: generation overflow index %d out of range", pos, k)
	}
	return level, uint64(when) + binary.BigEndian.Uint64(l.gdo2[k*8:]), nil
}

// generations computes every commit's topological level and corrected
// commit date, parents first, as C Git's compute_generation_numbers:
// the level is one more than the parents' highest (capped at
// maxLevel), the corrected date the commit time or one more than the
// parents' highest, whichever is larger.
func (lw *layerWriter) generations() error {
	// Each commit is pushed once to start from and once per child
	// waiting for it: more pushes than that means a cycle, which ids
	// made by hashing cannot form, but a broken reader could.
	budget := len(lw.commits)
	for _, e := range lw.commits {
		budget += len(e.parents)
	}
	var stack []uint32
	for start := range lw.commits {
		if lw.commits[start].level != 0 {
			continue
		}
		stack = append(stack[:0], uint32(start))
		for len(stack) > 0 {
			e := lw.commits[stack[len(stack)-1]]
			if e.level != 0 {
				stack = stack[:len(stack)-1]
				continue
			}
			ready := true
			var maxLevelSeen uint32
			var maxGen uint64
			for _, p := range e.parents {
				var level uint32
				var gen uint64
				if i, ok := lw.index[p]; ok {
					pe := lw.commits[i]
					if pe.level == 0 {
						ready = false
						if budget--; budget < 0 {
							return fmt.Errorf("commitgraph: commit %v is its own ancestor", e.id)
						}
						stack = append(stack, i)
						continue
					}
					level, gen = pe.level, pe.gen
				} else {
					pos, err := lw.parentPos(p)
					if err != nil {
						return err
					}
					if level, gen, err = lw.lowerGen(pos); err != nil {
						return err
					}
				}
				maxLevelSeen = max(maxLevelSeen, level)
				maxGen = max(maxGen, gen)
			}
			if !ready {
				continue
			}
			stack = stack[:len(stack)-1]
			e.level = min(maxLevelSeen, maxLevel-1) + 1
			if e.time > 0 && uint64(e.time) > maxGen {
				maxGen = uint64(e.time) - 1
			}
			e.gen = maxGen + 1
		}
	}
	return nil
}

// write writes the layer but for its trailing checksum.
func (lw *layerWriter) write(w *bufio.Writer) error {
	f, hs := lw.f, lw.f.Size()
	n := uint64(len(lw.commits))

	// Parent words and extra edges.
	cdat := make([]byte, 0, int(n)*(hs+16))
	var word [8]byte
	for _, e := range lw.commits {
		cdat = append(cdat, e.tree.Bytes()...)
		p1, p2 := uint32(parentNone), uint32(parentNone)
		if len(e.parents) > 0 {
			pos, err := lw.parentPos(e.parents[0])
			if err != nil {
				return err
			}
			p1 = pos
		}
		switch {
		case len(e.parents) == 2:
			pos, err := lw.parentPos(e.parents[1])
			if err != nil {
				return err
			}
			p2 = pos
		case len(e.parents) > 2:
			p2 = edgeListFlag | uint32(len(lw.edges))
			for k, p := range e.parents[1:] {
				pos, err := lw.parentPos(p)
				if err != nil {
					return err
				}
				if k == len(e.parents)-2 {
					pos |= edgeLastFlag
				}
				lw.edges = append(lw.edges, pos)
			}
		}
		binary.BigEndian.PutUint32(word[:], p1)
		binary.BigEndian.PutUint32(word[4:], p2)
		cdat = append(cdat, word[:]...)
		t := uint64(e.time)
		binary.BigEndian.PutUint32(word[:], e.level<<2|uint32(t>>32)&3)
		binary.BigEndian.PutUint32(word[4:], uint32(t))
		cdat = append(cdat, word[:]...)
	}
	var gda2 []byte
	if lw.genData {
		gda2 = make([]byte, 0, n*4)
		for _, e := range lw.commits {
			off := e.gen - uint64(e.time)
			v := uint32(off)
			if off > maxGenOffset {
				v = genOffsetFlag | uint32(len(lw.over))
				lw.over = append(lw.over, off)
			}
			gda2 = binary.BigEndian.AppendUint32(gda2, v)
		}
	}

	type chunk struct {
		id   uint32
		size uint64
		fill func() error
	}
	chunks := []chunk{
		{chunkOIDFanout, fanoutSize, func() error {
			var fan [fanoutSize]byte
			k := 0
			for b := 0; b < 256; b++ {
				for k < len(lw.commits) && int(lw.commits[k].id.Bytes()[0]) <= b {
					k++
				}
				binary.BigEndian.PutUint32(fan[b*4:], uint32(k))
			}
			_, err := w.Write(fan[:])
			return err
		}},
		{chunkOIDLookup, n * uint64(hs), func() error {
			for _, e := range lw.commits {
				if _, err := w.Write(e.id.Bytes()); err != nil {
					return err
				}
			}
			return nil
		}},
		{chunkCommitData, uint64(len(cdat)), func() error { _, err := w.Write(cdat); return err }},
	}
	if lw.genData {
		chunks = append(chunks, chunk{chunkGenData, uint64(len(gda2)), func() error { _, err := w.Write(gda2); return err }})
		if len(lw.over) > 0 {
			chunks = append(chunks, chunk{chunkGenOverflow, uint64(len(lw.over)) * 8, func() error {
				for _, v := range lw.over {
					if _, err := w.Write(binary.BigEndian.AppendUint64(nil, v)); err != nil {
						return err
					}
				}
				return nil
			}})
		}
	}
	if len(lw.edges) > 0 {
		chunks = append(chunks, chunk{chunkExtraEdges, uint64(len(lw.edges)) * 4, func() error {
			for _, v := range lw.edges {
				if _, err := w.Write(binary.BigEndian.AppendUint32(nil, v)); err != nil {
					return err
				}
			}
			return nil
		}})
	}
	if len(lw.below) > 0 {
		chunks = append(chunks, chunk{chunkBaseGraphs, uint64(len(lw.below) * hs), func() error {
			for _, l := range lw.below {
				if _, err := w.Write(l.checksum); err != nil {
					return err
				}
			}
			return nil
		}})
	}

	hdr := []byte{'C', 'G', 'P', 'H', 1, byte(f.FormatID()), byte(len(chunks)), byte(len(lw.below))}
	off := uint64(headerSize + (len(chunks)+1)*tocEntrySize)
	for _, c := range chunks {
		hdr = binary.BigEndian.AppendUint32(hdr, c.id)
		hdr = binary.BigEndian.AppendUint64(hdr, off)
		off += c.size
	}
	hdr = binary.BigEndian.AppendUint32(hdr, 0)
	hdr = binary.BigEndian.AppendUint64(hdr, off)
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	for _, c := range chunks {
		if err := c.fill(); err != nil {
			return err
		}
	}
	return nil
}
