package indexer

import (
	"bufio"
	"bytes"
	"compress/flate"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"

	"gotd/internal/git/inflate"
	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/pack"
)

// resolver is the state the delta-resolving workers share.
type resolver struct {
	ix     *indexer
	next   atomic.Uint64 // next entry to consider as the root of a delta tree
	done   atomic.Uint32 // deltas resolved
	failed atomic.Bool
	errMu  sync.Mutex
	err    error
}

func (r *resolver) fail(err error) {
	if err == nil {
		return
	}
	r.errMu.Lock()
	if r.err == nil {
		r.err = err
	}
	r.errMu.Unlock()
	r.failed.Store(true)
}

// resolveAll is the second phase: it resolves every delta on ix.threads
// goroutines, and completes a thin pack.
func (ix *indexer) resolveAll() error {
	if ix.nDeltas == 0 {
		return nil
	}
	r := &resolver{ix: ix}
	threads := min(ix.threads, ix.nDeltas)
	budget := deltaBaseBudget / threads
	var wg sync.WaitGroup
	for range threads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.fail(newWorker(r, budget).roots())
		}()
	}
	wg.Wait()
	if r.err != nil {
		return r.err
	}
	if err := ix.completeThin(r); err != nil {
		return err
	}
	// finish needs none of the tables of children: they go before it
	// builds and sorts the index's entries.
	ix.ofsStart, ix.ofsKids, ix.refKids, ix.claimed, ix.refBase = nil, nil, nil, nil, nil
	ix.progress("resolving deltas", r.done.Load(), uint32(ix.nDeltas))
	return nil
}

// worker resolves delta trees depth-first. Its buffers are reused from
// object to object, so resolving a delta without children allocates
// nothing once the buffers have grown.
type worker struct {
	r       *resolver
	ix      *indexer
	z       *inflater
	dec     inflate.Decoder
	br      bytes.Reader
	zbuf    []byte        // the zlib stream of a small entry, read from the pack
	zlarge  *bufio.Reader // reads the zlib stream of a large entry
	h       *oid.Hasher
	hdr     [32]byte // object header to hash
	delta   []byte   // inflated delta being applied
	copyBuf []byte   // buffer of streamBlob
	free    [][]byte // buffers for results
	freeCap int      // the bytes of free, at most maxFreeBytes
	stack   []frame  // the path from the root to the current base
	used    int      // bytes of base data held by the stack
	budget  int
	steps   int
}

// frame is one base on the current path and the state of the walk over
// its children.
type frame struct {
	idx     uint32
	data    []byte // nil when evicted
	pinned  bool   // data cannot be read back from the pack (a thin base)
	ofsNext uint32
	ofsEnd  uint32
	refNext int
	refEnd  int
}

// maxFree is how many result buffers a worker keeps for reuse: enough
// for the bases of a typical delta chain (git's default depth is 50).
const maxFree = 64

// maxFreeBytes bounds the bytes of the result buffers a worker keeps
// for reuse: kept by count alone, the largest results of the pack
// stayed with each worker to the end (18 MiB of the 78 MiB live when
// indexing git.git, doubled by the collector's headroom). A mebibyte
// keeps the buffers of the small objects most deltas make; the largest
// ones go back to the collector (see deltaBaseBudget).
const maxFreeBytes = 1 << 20

func newWorker(r *resolver, budget int) *worker {
	return &worker{
		r:      r,
		ix:     r.ix,
		z:      newFastInflater(),
		h:      oid.NewHasher(r.ix.f),
		budget: budget,
	}
}

// roots walks the delta trees of the non-delta entries handed out by the
// shared counter.
func (w *worker) roots() error {
	ix := w.ix
	n := uint64(ix.nScanned)
	for !w.r.failed.Load() {
		i := w.r.next.Add(1) - 1
		if i >= n {
			return nil
		}
		if !ix.entries[i].ptype.IsBase() {
			continue
		}
		if err := w.walk(uint32(i), nil); err != nil {
			return err
		}
	}
	return nil
}

// children returns a frame for entry i with the ranges of its delta
// children set; ok is false when it has none.
func (w *worker) children(i uint32) (f frame, ok bool) {
	ix := w.ix
	f.idx = i
	if int(i) < ix.nScanned {
		f.ofsNext, f.ofsEnd = ix.ofsStart[i], ix.ofsStart[i+1]
	}
	if len(ix.refKids) > 0 {
		id := ix.ids.get(int(i))
		lo, _ := slices.BinarySearchFunc(ix.refKids, id, func(k refKid, id oid.ID) int {
			return k.base.Compare(id)
		})
		hi := lo
		for hi < len(ix.refKids) && ix.refKids[hi].base == id {
			hi++
		}
		f.refNext, f.refEnd = lo, hi
	}
	return f, f.ofsNext < f.ofsEnd || f.refNext < f.refEnd
}

// hasOfsChildren reports whether an ofs-delta of the scanned pack is
// based on entry i.
func (w *worker) hasOfsChildren(i uint32) bool {
	return int(i) < w.ix.nScanned && w.ix.ofsStart[i] < w.ix.ofsStart[i+1]
}

// next claims the next unresolved child of f.
func (w *worker) next(f *frame) (uint32, bool) {
	claimed := w.ix.claimed
	for f.ofsNext < f.ofsEnd {
		c := w.ix.ofsKids[f.ofsNext]
		f.ofsNext++
		if atomic.CompareAndSwapUint32(&claimed[c], 0, 1) {
			return c, true
		}
	}
	for f.refNext < f.refEnd {
		c := w.ix.refKids[f.refNext].child
		f.refNext++
		if atomic.CompareAndSwapUint32(&claimed[c], 0, 1) {
			return c, true
		}
	}
	return 0, false
}

// walk resolves the delta tree under root. data is root's content when it
// cannot be read from the pack (a thin base), else nil.
func (w *worker) walk(root uint32, data []byte) error {
	ix := w.ix
	f, ok := w.children(root)
	if !ok {
		return nil
	}
	if data == nil {
		var err error
		if data, err = w.inflate(root, w.get(ix.entries[root].size)); err != nil {
			return err
		}
	} else {
		f.pinned = true
	}
	f.data = data
	w.used = cap(data)
	w.stack = append(w.stack[:0], f)
	for len(w.stack) > 0 {
		if w.steps++; w.steps%256 == 0 {
			if w.r.failed.Load() {
				return nil
			}
			if err := ix.ctx.Err(); err != nil {
				return fmt.Errorf("indexer: %w", err)
			}
		}
		k := len(w.stack) - 1
		c, ok := w.next(&w.stack[k])
		if !ok {
			w.drop(&w.stack[k])
			w.stack = w.stack[:k]
			continue
		}
		base, err := w.base(k)
		if err != nil {
			return err
		}
		parent := &ix.entries[w.stack[k].idx]
		e := &ix.entries[c]
		if parent.depth >= maxDeltaDepth {
			return fmt.Errorf("indexer: %w: delta chain at offset %d is deeper than %d", pack.ErrCorrupt, e.off, maxDeltaDepth)
		}
		d, size, err := w.inflateDelta(c)
		if err != nil {
			return err
		}
		e.typ, e.depth = parent.typ, parent.depth+1
		if e.typ != object.Blob && size > MaxParsedSize {
			return fmt.Errorf("indexer: delta at offset %d: %w: %s of %d bytes, limit %d", e.off, ErrParsedTooLarge, e.typ, size, MaxParsedSize)
		}
		var res []byte
		if e.typ == object.Blob && size > streamThreshold && !w.hasOfsChildren(c) {
			// A large blob no ofs-delta is based on: hashed as the
			// delta makes it, never held whole. Only its id tells
			// whether a ref-delta is based on it; if one is, it is
			// built again, in memory, to serve as a base.
			if err := w.streamBlob(c, base, d); err != nil {
				return err
			}
			w.resolved()
			if _, ok := w.children(c); !ok {
				continue
			}
			if res, err = w.apply(c, base); err != nil {
				return err
			}
		} else {
			if res, err = w.applyDelta(c, base, d, size); err != nil {
				return err
			}
			if err := w.identify(c, res); err != nil {
				w.put(res)
				return err
			}
			w.resolved()
		}
		nf, ok := w.children(c)
		if !ok {
			w.put(res)
			continue
		}
		nf.data = res
		w.used += cap(res)
		w.stack = append(w.stack, nf)
		w.evict()
	}
	return nil
}

// resolved counts a delta resolved.
func (w *worker) resolved() {
	if n := w.r.done.Add(1); n%1024 == 0 {
		w.ix.progress("resolving deltas", n, uint32(w.ix.nDeltas))
	}
}

// streamThreshold is the size above which a blob rebuilt from a delta,
// when no other delta is based on it, is hashed as the delta produces
// it rather than built in memory: so a delta that makes a large blob
// out of a small base (a delta bomb, when the object size bound allows
// it) costs buffers, not its size. FuzzIndex lowers it, to reach both
// ways with small packs.
var streamThreshold uint64 = 4 << 20

// streamBlob hashes the blob delta d makes from base, through a
// DeltaReader, and names entry c after it. Like a large blob stored
// whole, it is passed to Options.Check with nil data.
func (w *worker) streamBlob(c uint32, base, d []byte) error {
	e := &w.ix.entries[c]
	w.br.Reset(base)
	dr, err := pack.NewDeltaReader(&w.br, uint64(len(base)), bytes.NewReader(d), w.ix.maxObject)
	if err != nil {
		return fmt.Errorf("indexer: delta at offset %d: %w", e.off, err)
	}
	h := w.h
	h.Reset()
	h.Write(object.AppendHeader(w.hdr[:0], e.typ, int64(dr.Size())))
	if w.copyBuf == nil {
		w.copyBuf = make([]byte, 64<<10)
	}
	if _, err := io.CopyBuffer(h, dr, w.copyBuf); err != nil {
		return fmt.Errorf("indexer: delta at offset %d: %w", e.off, err)
	}
	id, err := h.ID()
	if err != nil {
		return fmt.Errorf("indexer: %s %s at offset %d: %w", e.typ, id, e.off, err)
	}
	w.ix.ids.set(int(c), id)
	if check := w.ix.opts.Check; check != nil {
		if err := check(e.typ, id, nil); err != nil {
			return fmt.Errorf("indexer: %s %s: %w", e.typ, id, err)
		}
	}
	return nil
}

// identify hashes and checks entry c, resolved to data.
func (w *worker) identify(c uint32, data []byte) error {
	e := &w.ix.entries[c]
	h := w.h
	h.Reset()
	h.Write(object.AppendHeader(w.hdr[:0], e.typ, int64(len(data))))
	h.Write(data)
	id, err := h.ID()
	if err != nil {
		return fmt.Errorf("indexer: %s %s at offset %d: %w", e.typ, id, e.off, err)
	}
	w.ix.ids.set(int(c), id)
	if check := w.ix.opts.Check; check != nil {
		if err := check(e.typ, id, data); err != nil {
			return fmt.Errorf("indexer: %s %s: %w", e.typ, id, err)
		}
	}
	return nil
}

// base returns the content of w.stack[k], rebuilding it (and evicted
// frames below it) when it was evicted.
func (w *worker) base(k int) ([]byte, error) {
	if w.stack[k].data != nil {
		return w.stack[k].data, nil
	}
	j := k - 1
	for j >= 0 && w.stack[j].data == nil {
		j--
	}
	if j < 0 {
		j = 0
		root := w.stack[0].idx
		data, err := w.inflate(root, w.get(w.ix.entries[root].size))
		if err != nil {
			return nil, err
		}
		w.stack[0].data = data
		w.used += cap(data)
	}
	for m := j + 1; m <= k; m++ {
		data, err := w.apply(w.stack[m].idx, w.stack[m-1].data)
		if err != nil {
			return nil, err
		}
		w.stack[m].data = data
		w.used += cap(data)
	}
	data := w.stack[k].data
	w.evict()
	return data, nil
}

// evict drops the data of the bases nearest the root until the stack
// fits its budget again; the top of the stack is always kept.
func (w *worker) evict() {
	for j := 0; w.used > w.budget && j < len(w.stack)-1; j++ {
		if !w.stack[j].pinned {
			w.drop(&w.stack[j])
		}
	}
}

func (w *worker) drop(f *frame) {
	if f.data == nil {
		return
	}
	w.used -= cap(f.data)
	if !f.pinned {
		w.put(f.data)
	}
	f.data = nil
}

// get returns an empty buffer with room for n bytes.
func (w *worker) get(n uint64) []byte {
	for i, b := range w.free {
		if uint64(cap(b)) >= n {
			last := len(w.free) - 1
			w.free[i] = w.free[last]
			w.free[last] = nil
			w.free = w.free[:last]
			w.freeCap -= cap(b)
			return b[:0]
		}
	}
	return make([]byte, 0, n)
}

// put returns a buffer for reuse, or to the collector when the worker
// keeps enough.
func (w *worker) put(b []byte) {
	if cap(b) == 0 || cap(b) > maxFreeBytes {
		return
	}
	if len(w.free) < maxFree && w.freeCap+cap(b) <= maxFreeBytes {
		w.free = append(w.free, b)
		w.freeCap += cap(b)
		return
	}
	// Keep the larger buffers.
	for i, f := range w.free {
		if cap(f) < cap(b) && w.freeCap-cap(f)+cap(b) <= maxFreeBytes {
			w.free[i] = b
			w.freeCap += cap(b) - cap(f)
			return
		}
	}
}

// maxWholeRead is the largest zlib stream of an entry read from the
// pack in one pread; a larger one is read through a buffer of this
// size.
const maxWholeRead = 64 << 10

// compressed returns the zlib stream of entry i, read from the pack
// file as C Git's index-pack reads it (pread): a mapping of the pack
// would have every page of it counted in the process's memory by the
// end of the resolution, the size of the pack on top of the heap. A
// stream of at most maxWholeRead bytes comes whole in b, a larger one
// as a reader; either is valid until the next call.
func (w *worker) compressed(i uint32) (b []byte, r flate.Reader, err error) {
	ix := w.ix
	e := &ix.entries[i]
	end := ix.packLen - uint64(ix.hashSize)
	if int(i)+1 < ix.nScanned {
		end = ix.entries[i+1].off
	}
	start := e.off + uint64(e.hdrLen)
	n := end - start
	if n > maxWholeRead {
		if w.zlarge == nil {
			w.zlarge = bufio.NewReaderSize(nil, maxWholeRead)
		}
		w.zlarge.Reset(io.NewSectionReader(ix.file, int64(start), int64(n)))
		return nil, w.zlarge, nil
	}
	if uint64(cap(w.zbuf)) < n {
		w.zbuf = make([]byte, max(n, 4<<10))
	}
	b = w.zbuf[:n]
	if _, err := ix.file.ReadAt(b, int64(start)); err != nil {
		return nil, nil, fmt.Errorf("indexer: object at offset %d: read the pack: %w", e.off, eofIsUnexpected(err))
	}
	return b, nil, nil
}

// inflate appends the inflated data of entry i to dst; the scan checked
// the stream already, this only guards against a changed file.
func (w *worker) inflate(i uint32, dst []byte) ([]byte, error) {
	e := &w.ix.entries[i]
	size := int(e.size)
	if cap(dst)-len(dst) < size {
		dst = slices.Grow(dst, size)
	}
	b, src, err := w.compressed(i)
	if err != nil {
		return dst, err
	}
	start := len(dst)
	if b != nil {
		data, _, err := w.dec.Inflate(dst[start:start], b, size)
		if err != nil {
			return dst, fmt.Errorf("indexer: object at offset %d: %w", e.off, err)
		}
		return dst[:start+len(data)], nil
	}
	if err := w.z.reset(src, false); err != nil {
		return dst, fmt.Errorf("indexer: object at offset %d: %w", e.off, err)
	}
	if _, err := io.ReadFull(w.z, dst[start:start+size]); err != nil {
		return dst, fmt.Errorf("indexer: object at offset %d: %w", e.off, eofIsUnexpected(err))
	}
	return dst[:start+size], nil
}

// apply resolves delta entry c against base and returns the result in a
// buffer from w.get.
func (w *worker) apply(c uint32, base []byte) ([]byte, error) {
	d, size, err := w.inflateDelta(c)
	if err != nil {
		return nil, err
	}
	return w.applyDelta(c, base, d, size)
}

// inflateDelta inflates delta entry c into w.delta and returns it with
// the result size it declares, which it checks against the limit.
func (w *worker) inflateDelta(c uint32) ([]byte, uint64, error) {
	e := &w.ix.entries[c]
	d, err := w.inflate(c, w.delta[:0])
	w.delta = d
	if err != nil {
		return nil, 0, err
	}
	_, size, _, err := pack.DeltaSizes(d)
	if err != nil {
		return nil, 0, fmt.Errorf("indexer: delta at offset %d: %w", e.off, err)
	}
	if size > w.ix.maxObject {
		return nil, 0, fmt.Errorf("indexer: delta at offset %d: %w: result of %d bytes, limit %d", e.off, ErrObjectTooLarge, size, w.ix.maxObject)
	}
	return d, size, nil
}

// applyDelta applies d, the delta of entry c declaring a result of
// size bytes, to base and returns the result in a buffer from w.get.
func (w *worker) applyDelta(c uint32, base, d []byte, size uint64) ([]byte, error) {
	e := &w.ix.entries[c]
	res, err := pack.ApplyDelta(w.get(size), base, d, w.ix.maxObject)
	if err != nil {
		w.put(res)
		return nil, fmt.Errorf("indexer: delta at offset %d: %w", e.off, err)
	}
	return res, nil
}
