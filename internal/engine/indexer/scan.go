package indexer

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"slices"

	"gotd/internal/git/inflate"
	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/pack"
)

// maxPrealloc bounds the entries allocated up front from the count in the
// pack header, which the sender chooses; a variable for tests.
var maxPrealloc uint32 = 1 << 16

// scan is the first phase: it reads the whole pack from s, recording and
// verifying every entry, hashing non-delta objects, and checking the
// trailer. atEOF says the input must end with the trailer (a file).
func (ix *indexer) scan(s *streamReader, atEOF bool) error {
	hs := uint64(ix.hashSize)
	s.atLeast(pack.HeaderSize + hs)
	var hdr [pack.HeaderSize]byte
	if _, err := io.ReadFull(s, hdr[:]); err != nil {
		return fmt.Errorf("indexer: read pack header: %w", eofIsUnexpected(err))
	}
	count, err := pack.ParseHeader(hdr[:])
	if err != nil {
		return fmt.Errorf("indexer: %w", err)
	}
	if ix.opts.MaxObjects > 0 && count > ix.opts.MaxObjects {
		return fmt.Errorf("indexer: pack has %d objects, more than the limit of %d: %w", count, ix.opts.MaxObjects, ErrTooManyObjects)
	}
	ix.count = count
	ix.entries = make([]entry, 0, min(count, maxPrealloc))
	if ix.opts.Begin != nil {
		ix.opts.Begin(count)
	}

	sc := scanner{
		ix:  ix,
		s:   s,
		z:   newInflater(),
		fz:  newFastInflater(),
		h:   oid.NewHasher(ix.f),
		buf: make([]byte, 16<<10),
	}
	if ix.threads > 1 {
		sc.pipe = newHashPipe(ix, ix.threads-1)
		defer sc.pipe.stop()
	}
	for i := uint32(0); i < count; i++ {
		if sc.pipe != nil && sc.pipe.failed.Load() {
			break
		}
		if i%256 == 0 {
			if err := ix.ctx.Err(); err != nil {
				return fmt.Errorf("indexer: %w", err)
			}
			if i%4096 == 0 {
				ix.progress("receiving objects", i, count)
			}
		}
		// Every entry after this one takes minEntrySize bytes at least.
		sc.after = uint64(count-i-1)*minEntrySize + hs
		if err := sc.entry(); err != nil {
			return fmt.Errorf("indexer: object %d at offset %d: %w", i, s.off, err)
		}
	}
	if sc.pipe != nil {
		if err := sc.pipe.stop(); err != nil {
			return err
		}
	}
	ix.progress("receiving objects", count, count)

	// The trailer: the hash of everything before it.
	if err := s.flush(); err != nil {
		return fmt.Errorf("indexer: %w", err)
	}
	want := s.sum.Sum(nil)
	s.sum = nil
	s.limit = s.off + hs
	ix.checksum = make([]byte, hs)
	if _, err := io.ReadFull(s, ix.checksum); err != nil {
		return fmt.Errorf("indexer: read pack trailer: %w", eofIsUnexpected(err))
	}
	if err := s.flush(); err != nil {
		return fmt.Errorf("indexer: %w", err)
	}
	if !bytes.Equal(want, ix.checksum) {
		return fmt.Errorf("indexer: %w: pack checksum mismatch", pack.ErrCorrupt)
	}
	ix.packLen = s.off
	if atEOF {
		var b [1]byte
		if s.buffered() > 0 {
			return fmt.Errorf("indexer: %w: junk after the pack trailer", pack.ErrCorrupt)
		}
		if n, _ := s.r.Read(b[:]); n > 0 {
			return fmt.Errorf("indexer: %w: junk after the pack trailer", pack.ErrCorrupt)
		}
	}
	return ix.link()
}

// scanner reads the entries of the pack in the first phase.
type scanner struct {
	ix    *indexer
	s     *streamReader
	z     *inflater    // from s
	fz    *inflater    // from br
	br    bytes.Reader // over the bytes s has buffered
	fast  bool         // inflating from br
	dec   inflate.Decoder
	whole []byte // content of an entry inflated in one call
	h     *oid.Hasher
	buf   []byte    // inflate output
	keep  []byte    // content kept for Check
	raw   []byte    // entry header bytes
	hdr   [32]byte  // object header to hash
	after uint64    // bytes that must follow the current entry
	pipe  *hashPipe // hashes small objects in parallel; nil with one thread
}

// entry reads one entry.
func (sc *scanner) entry() error {
	ix, s := sc.ix, sc.s
	if err := s.startEntry(); err != nil {
		return err
	}
	off := s.off
	s.atLeast(minEntrySize + sc.after)
	t, size, raw, err := pack.ReadEntryHeader(s, sc.raw[:0])
	sc.raw = raw
	if err != nil {
		return err
	}
	e := entry{off: off, size: size, ptype: t, typ: t}
	switch t {
	case object.OfsDelta:
		ofs, raw, err := pack.ReadOfs(s, sc.raw[:0])
		sc.raw = raw
		if err != nil {
			return err
		}
		switch {
		case ofs == 0:
			return fmt.Errorf("%w: ofs-delta refers to itself", pack.ErrCorrupt)
		case ofs > off-pack.HeaderSize:
			return fmt.Errorf("%w: ofs-delta base offset before the pack header", pack.ErrCorrupt)
		}
		// link turns this into the index of the base entry.
		e.base = uint32(len(ix.ofsBase))
		ix.ofsBase = append(ix.ofsBase, off-ofs)
	case object.RefDelta:
		s.atLeast(uint64(ix.hashSize) + sc.after)
		var b [oid.MaxSize]byte
		if _, err := io.ReadFull(s, b[:ix.hashSize]); err != nil {
			return fmt.Errorf("read delta base: %w", eofIsUnexpected(err))
		}
		e.base = uint32(len(ix.refBase))
		ix.refBase = append(ix.refBase, oid.MustFromBytes(ix.f, b[:ix.hashSize]))
	}
	e.hdrLen = uint8(s.off - off)
	if t.IsBase() {
		if err := sc.object(&e); err != nil {
			return err
		}
	} else {
		ix.nDeltas++
		if err := sc.delta(e.size); err != nil {
			return err
		}
	}
	if e.crc, err = s.entryCRC(); err != nil {
		return err
	}
	ix.ids.slot(len(ix.entries)) // for a delta, where its resolution will put it
	if len(ix.entries) == cap(ix.entries) {
		// Doubled, but no further than the count the header
		// declares: append's own growth left up to a quarter of the
		// entries' memory unused through the resolution of deltas.
		more := max(min(cap(ix.entries), int(ix.count)-len(ix.entries)), 1)
		grown := make([]entry, len(ix.entries), len(ix.entries)+more)
		copy(grown, ix.entries)
		ix.entries = grown
	}
	ix.entries = append(ix.entries, e)
	return nil
}

// deflateBound is how many more bytes of deflate data a stream must still
// hold when rem bytes of its declared output have not been produced yet.
func deflateBound(rem uint64) uint64 {
	if rem <= inflateSlack {
		return 0
	}
	return (rem - inflateSlack) / maxDeflateRatio
}

// tryBuffered turns inflate's first try from the buffered bytes on; tests
// turn it off to check that both ways give the same results.
var tryBuffered = true

// maxWhole is the largest entry (inflated) that the scan inflates in
// one call when its zlib stream is buffered whole; larger ones are
// read in pieces, so that a large blob is never held whole.
const maxWhole = 1 << 20

// inflate inflates the zlib stream at the current position, of an
// entry that declares size bytes. The first try works on the bytes s
// has buffered, topped up first, and consumes them only if it
// succeeds, the zlib stream having ended within them: if into is not
// nil (its capacity at least size, size at most maxWhole), the one-shot
// decoder inflates the stream into it and whole is given the content
// (and what whole returns is inflate's); else read is called with
// klauspost's inflater over them. If the try fails, for want of bytes
// or any other reason, read is called with compress/flate's inflater
// over s, from the same start, and inflate returns what that call
// returns, so the errors are those of the stream. A failed try costs
// at most inflating the buffered bytes once more. read inflates from z
// to its end (io.EOF); it must start from scratch on each call, and
// call sc.inflated as it goes.
func (sc *scanner) inflate(size uint64, into []byte, whole func(data []byte) error, read func(z *inflater) error) error {
	s := sc.s
	s.atLeast(8 + sc.after)
	if tryBuffered {
		if err := s.topUp(fastWant); err != nil {
			return err
		}
		b := s.buf[s.pos:s.end]
		if into != nil {
			if data, n, err := sc.dec.Inflate(into, b, int(size)); err == nil {
				s.pos += n
				s.off += uint64(n)
				sc.ix.nBuffered++
				return whole(data)
			}
		} else if sc.br.Reset(b); sc.fz.reset(&sc.br, true) == nil {
			// Too large to hold whole: read in pieces.
			sc.fast = true
			err := read(sc.fz)
			sc.fast = false
			if err == nil {
				n := len(b) - sc.br.Len()
				s.pos += n
				s.off += uint64(n)
				sc.ix.nBuffered++
				return nil
			}
		}
	}
	if err := sc.z.reset(s, true); err != nil {
		return err
	}
	s.tail = 4 + sc.after
	return read(sc.z)
}

// inflated records, when inflating from the stream, that rem bytes of the
// declared size are still to come (see the bound in stream.go).
func (sc *scanner) inflated(rem uint64) {
	if !sc.fast {
		sc.s.atLeast(4 + deflateBound(rem) + sc.after)
	}
}

// wholeBuf returns a buffer for inflating an entry of size bytes in one
// call, or nil if it is larger than maxWhole.
func (sc *scanner) wholeBuf(size uint64) []byte {
	if size > maxWhole {
		return nil
	}
	if uint64(cap(sc.whole)) < size {
		sc.whole = make([]byte, 0, max(size, 64<<10))
	}
	return sc.whole[:0]
}

// object inflates a non-delta entry, hashing it as it streams.
func (sc *scanner) object(e *entry) error {
	ix := sc.ix
	if e.size > ix.maxObject {
		return fmt.Errorf("%w: %s of %d bytes, limit %d", ErrObjectTooLarge, e.typ, e.size, ix.maxObject)
	}
	if e.typ != object.Blob && e.size > MaxParsedSize {
		return fmt.Errorf("%w: %s of %d bytes, limit %d", ErrParsedTooLarge, e.typ, e.size, MaxParsedSize)
	}
	if sc.pipe != nil && e.size <= maxPipedSize {
		return sc.piped(e)
	}
	h := sc.h
	keep := ix.opts.Check != nil && (e.typ != object.Blob || e.size <= MaxCheckBlobSize)
	// kept is the content Check is given: in the buffer it was
	// inflated into whole, else gathered in sc.keep.
	var kept []byte
	whole := func(data []byte) error {
		h.Reset()
		h.Write(object.AppendHeader(sc.hdr[:0], e.typ, int64(e.size)))
		h.Write(data)
		kept = data
		return nil
	}
	err := sc.inflate(e.size, sc.wholeBuf(e.size), whole, func(z *inflater) error {
		h.Reset()
		h.Write(object.AppendHeader(sc.hdr[:0], e.typ, int64(e.size)))
		sc.keep = sc.keep[:0]
		return sc.readDeclared(z, e.typ.String(), e.size, sc.upTo(e.size), func(p []byte) error {
			h.Write(p)
			if keep {
				sc.keep = append(sc.keep, p...)
			}
			kept = sc.keep
			return nil
		})
	})
	if err != nil {
		return err
	}
	id, err := h.ID()
	if err != nil {
		return fmt.Errorf("%s %s: %w", e.typ, id, err)
	}
	copy(ix.ids.slot(len(ix.entries)), id.Raw())
	if ix.opts.Check != nil {
		var data []byte
		if keep {
			data = kept
			if data == nil {
				data = []byte{}
			}
		}
		if err := ix.opts.Check(e.typ, id, data); err != nil {
			return fmt.Errorf("%s %s: %w", e.typ, id, err)
		}
	}
	return nil
}

// readDeclared reads the inflated content of an entry that declares
// size bytes (what names it in errors: its type, or "delta") from z to
// its end, in the slices next gives for the bytes read so far, each
// passed to got (if not nil) once filled: the content must have exactly
// the declared size.
func (sc *scanner) readDeclared(z *inflater, what string, size uint64, next func(n uint64) []byte, got func(p []byte) error) error {
	var n uint64
	for {
		p := next(n)
		m, err := z.Read(p)
		n += uint64(m)
		if n > size {
			return fmt.Errorf("%w: %s inflates to more than its declared %d bytes", pack.ErrCorrupt, what, size)
		}
		if got != nil {
			if err := got(p[:m]); err != nil {
				return err
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("inflate %s: %w", what, err)
		}
		sc.inflated(size - n)
	}
	if n != size {
		return fmt.Errorf("%w: %s inflates to %d bytes, declared %d", pack.ErrCorrupt, what, n, size)
	}
	return nil
}

// upTo returns sc.buf cut to at most the size+1-n bytes still allowed
// after n: one byte more than declared, to notice a longer stream
// without inflating it any further.
func (sc *scanner) upTo(size uint64) func(n uint64) []byte {
	return func(n uint64) []byte { return sc.buf[:min(uint64(len(sc.buf)), size+1-n)] }
}

// piped inflates a small non-delta object into a buffer and hands it to
// the pipe for hashing and checking.
func (sc *scanner) piped(e *entry) error {
	buf := sc.pipe.buffer()
	if uint64(cap(buf)) < e.size+1 {
		buf = make([]byte, 0, e.size+1) // e.size <= maxPipedSize
	}
	buf = buf[:e.size+1]
	err := sc.inflate(e.size, buf[:0], func([]byte) error { return nil }, func(z *inflater) error {
		return sc.readDeclared(z, e.typ.String(), e.size, func(n uint64) []byte {
			// As in object: one byte more than declared is an error.
			return buf[n:min(n+uint64(len(sc.buf)), e.size+1)]
		}, nil)
	})
	if err != nil {
		sc.pipe.free <- buf
		return err
	}
	sc.pipe.jobs <- hashJob{dst: sc.ix.ids.slot(len(sc.ix.entries)), typ: e.typ, off: e.off, data: buf[:e.size]}
	return nil
}

// maxDeltaSize is the largest delta accepted for results of at most max
// bytes: inserting every byte literally costs one opcode per 127 bytes,
// and the header up to 20 bytes.
func maxDeltaSize(max uint64) uint64 { return max + max/100 + 64 }

// delta inflates a delta entry only to verify it and find its end; its
// data is read again from the pack when deltas are resolved. The sizes in
// its header are checked at once, so a delta declaring a huge result
// fails here.
func (sc *scanner) delta(size uint64) error {
	if size > maxDeltaSize(sc.ix.maxObject) {
		return fmt.Errorf("%w: delta of %d bytes", ErrObjectTooLarge, size)
	}
	whole := func(data []byte) error {
		return sc.deltaHeader(data[:min(len(data), 2*pack.MaxDeltaSizeVarint)])
	}
	return sc.inflate(size, sc.wholeBuf(size), whole, func(z *inflater) error {
		var head [2 * pack.MaxDeltaSizeVarint]byte
		var nhead int
		err := sc.readDeclared(z, "delta", size, sc.upTo(size), func(p []byte) error {
			if nhead < len(head) {
				nhead += copy(head[nhead:], p)
				if nhead == len(head) {
					return sc.deltaHeader(head[:])
				}
			}
			return nil
		})
		if err != nil || nhead == len(head) {
			return err
		}
		return sc.deltaHeader(head[:nhead])
	})
}

// deltaHeader checks the base and result sizes at the start of a delta.
func (sc *scanner) deltaHeader(b []byte) error {
	baseSize, resultSize, _, err := pack.DeltaSizes(b)
	if err != nil {
		return err
	}
	if baseSize > sc.ix.maxObject {
		return fmt.Errorf("%w: delta base of %d bytes, limit %d", ErrObjectTooLarge, baseSize, sc.ix.maxObject)
	}
	if resultSize > sc.ix.maxObject {
		return fmt.Errorf("%w: delta result of %d bytes, limit %d", ErrObjectTooLarge, resultSize, sc.ix.maxObject)
	}
	return nil
}

// link finds the base entry of every ofs-delta and builds the tables of
// delta children.
func (ix *indexer) link() error {
	n := len(ix.entries)
	ix.nScanned = n
	ix.ofsStart = make([]uint32, n+1)
	nOfs := 0
	for i := range ix.entries {
		e := &ix.entries[i]
		if e.ptype != object.OfsDelta {
			continue
		}
		off := ix.ofsBase[e.base]
		j, found := slices.BinarySearchFunc(ix.entries[:i], off, func(e entry, off uint64) int {
			switch {
			case e.off < off:
				return -1
			case e.off > off:
				return 1
			}
			return 0
		})
		if !found {
			return fmt.Errorf("indexer: %w: ofs-delta at offset %d refers to offset %d, not the start of an object", pack.ErrCorrupt, e.off, off)
		}
		e.base = uint32(j)
		ix.ofsStart[j+1]++
		nOfs++
	}
	ix.ofsBase = nil
	for i := 1; i <= n; i++ {
		ix.ofsStart[i] += ix.ofsStart[i-1]
	}
	ix.ofsKids = make([]uint32, nOfs)
	fill := make([]uint32, n)
	for i := range ix.entries {
		e := &ix.entries[i]
		if e.ptype == object.OfsDelta {
			ix.ofsKids[ix.ofsStart[e.base]+fill[e.base]] = uint32(i)
			fill[e.base]++
		}
	}
	ix.refKids = make([]refKid, 0, len(ix.refBase))
	for i := range ix.entries {
		e := &ix.entries[i]
		if e.ptype == object.RefDelta {
			ix.refKids = append(ix.refKids, refKid{ix.refBase[e.base], uint32(i)})
		}
	}
	slices.SortFunc(ix.refKids, func(a, b refKid) int {
		if c := a.base.Compare(b.base); c != 0 {
			return c
		}
		return cmp.Compare(a.child, b.child)
	})
	ix.claimed = make([]uint32, n)
	return nil
}
