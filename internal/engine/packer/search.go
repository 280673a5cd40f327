package packer

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/zlib"

	"gotd/internal/git/object"
	"gotd/internal/git/pack"
)

// The delta search follows C Git's (builtin/pack-objects.c, and
// Documentation/technical/pack-heuristics): candidates sorted by type,
// name hash and decreasing size, each compared with the few objects
// before it in a sliding window; a delta is kept when it is smaller than
// half the object (less for bases deep in a chain); the base a delta was
// found against is moved forward in the window so it stays longer.

const stageCompress = "Compressing objects"

// findDeltas runs the delta search over the objects that need it.
func (wr *writer) findDeltas() error {
	list, targets, err := wr.searchList()
	if err != nil || targets == 0 {
		return err
	}
	slices.SortStableFunc(list, func(a, b int32) int {
		ea, eb := &wr.ents[a], &wr.ents[b]
		switch {
		case ea.typ != eb.typ:
			return int(eb.typ) - int(ea.typ)
		case ea.nameHash != eb.nameHash:
			if ea.nameHash > eb.nameHash {
				return -1
			}
			return 1
		case ea.baseOnly != eb.baseOnly:
			// Bases that are sent anyway come first, so every target
			// of the group can try them.
			if ea.baseOnly {
				return -1
			}
			return 1
		case ea.size != eb.size:
			if ea.size > eb.size {
				return -1
			}
			return 1
		}
		return int(a) - int(b) // recency
	})

	threads := wr.opts.Threads
	if n := len(list) / (4 * wr.opts.Window); n < threads {
		threads = max(n, 1)
	}
	budget := &budget{left: wr.opts.DeltaMemory / 2}
	winLimit := wr.opts.DeltaMemory / 2 / int64(threads)
	var done atomic.Int64
	report := func(n int) {
		wr.prog.report(stageCompress, int(done.Add(int64(n))), targets)
	}
	wr.prog.report(stageCompress, 0, targets)

	// Split the list into one run per thread, each ending at a change
	// of name hash so that versions of one file stay together.
	var wg sync.WaitGroup
	errs := make([]error, threads)
	start := 0
	for t := range threads {
		end := len(list)
		if t < threads-1 {
			end = min(start+(len(list)-start)/(threads-t), len(list))
			for end > start && end < len(list) && wr.ents[list[end]].nameHash == wr.ents[list[end-1]].nameHash &&
				wr.ents[list[end]].typ == wr.ents[list[end-1]].typ {
				end++
			}
		}
		s := &searcher{wr: wr, list: list[start:end], budget: budget, limit: winLimit, report: report}
		start = end
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[t] = s.run()
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	wr.prog.report(stageCompress, targets, targets)
	return nil
}

// searchList returns the entries of the delta search and how many of
// them are targets (the others are bases only).
func (wr *writer) searchList() (list []int32, targets int, err error) {
	if wr.opts.Window < 0 {
		return nil, 0, nil
	}
	type group struct {
		typ      object.Type
		nameHash uint32
	}
	groups := map[group]struct{}{}
	var zr inflater
	for i := range wr.ents {
		e := &wr.ents[i]
		if e.external || e.prefixed || e.kind == kindReuse {
			continue
		}
		if wr.opts.ReuseDeltas && e.stored.IsBase() {
			continue
		}
		if i&255 == 0 {
			if err := wr.ctx.Err(); err != nil {
				return nil, 0, err
			}
		}
		switch {
		case e.stored.IsBase():
			// size known from the stored header
		case e.pack >= 0:
			// A stored delta whose base is not sent: its size is in
			// the delta's header.
			if e.size, err = wr.deltaResultSize(&zr, e); err != nil {
				return nil, 0, err
			}
		default:
			var t object.Type
			if sz, ok := wr.src.(ObjectSizer); ok {
				var n int64
				t, n, err = sz.StatObject(e.id)
				e.size = uint64(n)
			} else {
				var data []byte
				t, data, err = wr.src.ReadObject(e.id)
				e.size = uint64(len(data))
			}
			if err != nil {
				return nil, 0, fmt.Errorf("read %s: %w", e.id, err)
			}
			if t != e.typ {
				return nil, 0, fmt.Errorf("object %s is a %s, not a %s", e.id, t, e.typ)
			}
		}
		if e.size < minDeltaSize || e.size > BigFileThreshold {
			continue
		}
		e.search = true
		list = append(list, int32(i))
		groups[group{e.typ, e.nameHash}] = struct{}{}
	}
	targets = len(list)
	if targets == 0 || !wr.opts.ReuseDeltas {
		return list, targets, nil
	}
	// Objects sent as stored may still serve as bases for the targets:
	// add those in a target's group (same type and name hash), which is
	// where the window would find them.
	for i := range wr.ents {
		e := &wr.ents[i]
		if e.external || !e.stored.IsBase() || e.size < minDeltaSize || e.size > BigFileThreshold {
			continue
		}
		if _, ok := groups[group{e.typ, e.nameHash}]; ok {
			e.baseOnly = true
			list = append(list, int32(i))
		}
	}
	return list, targets, nil
}

// inflater is a reusable zlib reader over stored bytes.
type inflater struct {
	br bytes.Reader
	zr io.ReadCloser
}

func (z *inflater) reset(b []byte) (io.Reader, error) {
	z.br.Reset(b)
	if z.zr == nil {
		zr, err := zlib.NewReader(&z.br)
		if err != nil {
			return nil, err
		}
		z.zr = zr
		return zr, nil
	}
	return z.zr, z.zr.(zlib.Resetter).Reset(&z.br, nil)
}

// deltaResultSize returns the size of the object a stored delta
// produces, read from the delta's header.
func (wr *writer) deltaResultSize(z *inflater, e *entry) (uint64, error) {
	p := wr.packs[e.pack]
	b, err := p.Bytes(e.offset+uint64(e.hdrLen), e.end)
	if err != nil {
		return 0, fmt.Errorf("object %s in %s: %w", e.id, p.Path(), err)
	}
	r, err := z.reset(b)
	if err != nil {
		return 0, fmt.Errorf("object %s in %s: %w", e.id, p.Path(), err)
	}
	var hdr [2 * pack.MaxDeltaSizeVarint]byte
	n, err := io.ReadFull(r, hdr[:])
	if err != nil && err != io.ErrUnexpectedEOF {
		return 0, fmt.Errorf("object %s in %s: inflate delta: %w", e.id, p.Path(), err)
	}
	_, size, _, err := pack.DeltaSizes(hdr[:n])
	if err != nil {
		return 0, fmt.Errorf("object %s in %s: %w", e.id, p.Path(), err)
	}
	return size, nil
}

// budget is the memory shared by all searchers for deltas kept until
// they are written.
type budget struct {
	left int64 // atomic
}

func (b *budget) take(n int64) bool {
	if atomic.AddInt64(&b.left, -n) >= 0 {
		return true
	}
	atomic.AddInt64(&b.left, n)
	return false
}

// slot is one place in a search window.
type slot struct {
	e       int32 // entry, -1 when empty
	data    []byte
	index   DeltaIndex
	indexed bool
	depth   int
}

// bigIndex is the index table size above which a freed slot releases
// its tables instead of keeping them for the next object.
const bigIndex = 4 << 20

// slabSize is the size of the blocks kept deltas are carved from, so
// that keeping a delta does not cost an allocation each.
const slabSize = 1 << 20

// searcher runs the search over one run of the sorted list.
type searcher struct {
	wr     *writer
	list   []int32
	budget *budget
	limit  int64 // memory for window objects and indexes
	report func(int)

	win   []slot
	mem   int64
	cur   []byte // delta being computed
	best  []byte // best delta so far for the current target
	slab  []byte
	count int
}

func (s *searcher) free(sl *slot) {
	s.mem -= int64(len(sl.data))
	if sl.indexed {
		s.mem -= int64(sl.index.Size())
	}
	if sl.index.Size() > bigIndex {
		sl.index = DeltaIndex{}
	}
	sl.data = nil
	sl.index.base = nil
	sl.indexed = false
	sl.e = -1
	sl.depth = 0
}

func (s *searcher) run() error {
	wr := s.wr
	window := wr.opts.Window + 1 // the current object takes a slot
	s.win = make([]slot, window)
	for i := range s.win {
		s.win[i].e = -1
	}
	idx, count := 0, 0
	processed := 0
	for li, n := range s.list {
		if li&63 == 0 {
			if err := wr.ctx.Err(); err != nil {
				return err
			}
		}
		e := &wr.ents[n]
		cur := &s.win[idx]
		s.free(cur)
		cur.e = n
		// Keep within the window's memory by dropping the oldest
		// objects (but never the only other one).
		for s.mem > s.limit && count > 1 {
			old := (idx + window - count) % window
			s.free(&s.win[old])
			count--
		}
		if e.baseOnly {
			goto next
		}
		processed++
		if processed&31 == 0 {
			s.report(32)
		}
		if e.size > uint64(s.limit) {
			// Too large to hold in the window: sent without a delta.
			goto next
		}
		{
			maxD := wr.opts.Depth - int(e.height)
			if maxD <= 0 {
				goto next
			}
			best := -1
			for j := window - 1; j > 0; j-- {
				other := (idx + j) % window
				m := &s.win[other]
				if m.e < 0 {
					break
				}
				ret, err := s.try(cur, m, maxD)
				if err != nil {
					return err
				}
				if ret < 0 {
					break
				}
				if ret > 0 {
					best = other
				}
			}
			if best >= 0 {
				s.keep(e)
				// An object already at the depth limit is useless as a
				// base: reuse its slot for the next object.
				if maxD <= cur.depth {
					continue
				}
				// Move the base found up in the window, just after the
				// current object, so it is tried first and kept longer.
				moved := s.win[best]
				dist := (window + idx - best) % window
				d := best
				for ; dist > 0; dist-- {
					src := (d + 1) % window
					s.win[d] = s.win[src]
					d = src
				}
				s.win[d] = moved
			}
		}
	next:
		idx++
		if count+1 < window {
			count++
		}
		if idx >= window {
			idx = 0
		}
	}
	s.report(processed & 31)
	for i := range s.win {
		s.free(&s.win[i])
	}
	return nil
}

// try computes a delta of the object in trg against the one in src and
// keeps it when it beats the best so far. It returns -1 when src can
// never serve (another type: the window holds no more of this type), 1
// when the delta was kept, 0 otherwise.
func (s *searcher) try(trg, src *slot, maxD int) (int, error) {
	wr := s.wr
	te, se := &wr.ents[trg.e], &wr.ents[src.e]
	if te.typ != se.typ {
		return -1, nil
	}
	if src.depth >= maxD {
		return 0, nil
	}
	// Size heuristics, as C Git's try_delta: a first delta must be
	// under half the object, a better one under the best so far, and
	// both less for bases deeper in a chain.
	var maxSize uint64
	refDepth := 1
	if te.kind != kindNew {
		hs := uint64(wr.opts.Format.Size())
		if te.size/2 <= hs {
			return 0, nil
		}
		maxSize = te.size/2 - hs
	} else {
		maxSize = te.dsize
		refDepth = trg.depth
	}
	maxSize = maxSize * uint64(maxD-src.depth) / uint64(maxD-refDepth+1)
	if maxSize == 0 {
		return 0, nil
	}
	if se.size < te.size && te.size-se.size >= maxSize {
		return 0, nil
	}
	if te.size < se.size/32 {
		return 0, nil
	}
	if trg.data == nil {
		if err := s.load(trg, te); err != nil {
			return 0, err
		}
	}
	if src.data == nil {
		if se.size > uint64(s.limit) {
			return 0, nil
		}
		if err := s.load(src, se); err != nil {
			return 0, err
		}
	}
	if !src.indexed {
		src.index.Reset(src.data)
		src.indexed = true
		s.mem += int64(src.index.Size())
	}
	if cap(s.cur) < int(maxSize) {
		s.cur = make([]byte, 0, maxSize)
	}
	d, ok := src.index.Delta(s.cur[:0], trg.data, int(maxSize))
	if !ok {
		return 0, nil
	}
	if te.kind == kindNew && uint64(len(d)) == te.dsize && src.depth+1 >= trg.depth {
		// Same size: prefer only a shallower chain.
		return 0, nil
	}
	te.kind = kindNew
	te.base = src.e
	te.dsize = uint64(len(d))
	trg.depth = src.depth + 1
	te.depth = uint16(trg.depth)
	s.cur, s.best = s.best, d
	return 1, nil
}

// keep stores the best delta found for e when the memory budget allows;
// otherwise it is recomputed when written. Small deltas are carved from
// slabs taken from the budget whole, so keeping one rarely allocates.
func (s *searcher) keep(e *entry) {
	n := len(s.best)
	e.delta = nil
	if n > slabSize/4 {
		if s.budget.take(int64(n)) {
			e.delta = append([]byte(nil), s.best...)
		}
		return
	}
	if cap(s.slab)-len(s.slab) < n {
		if !s.budget.take(slabSize) {
			return
		}
		s.slab = make([]byte, 0, slabSize)
	}
	at := len(s.slab)
	s.slab = append(s.slab, s.best...)
	e.delta = s.slab[at:len(s.slab):len(s.slab)]
}

// load reads the object of e into sl.
func (s *searcher) load(sl *slot, e *entry) error {
	t, data, err := s.wr.src.ReadObject(e.id)
	if err != nil {
		return fmt.Errorf("read %s: %w", e.id, err)
	}
	if t != e.typ {
		return fmt.Errorf("object %s is a %s, not a %s", e.id, t, e.typ)
	}
	if uint64(len(data)) != e.size {
		return fmt.Errorf("object %s has %d bytes, not the %d its pack entry says", e.id, len(data), e.size)
	}
	sl.data = data
	s.mem += int64(len(data))
	return nil
}
