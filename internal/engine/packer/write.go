package packer

import (
	"bufio"
	"fmt"
	"io"

	"github.com/klauspost/compress/zlib"

	"gotd/internal/git/object"
	"gotd/internal/git/pack"
)

const stageWrite = "Writing objects"

// writeBuffer is the size of the buffer small entries are gathered in;
// larger stored entries go from the pack's mapping to w directly.
const writeBuffer = 64 << 10

// packWriter is the state of the writing stage.
type packWriter struct {
	wr  *writer
	hw  hashWriter
	zw  *zlib.Writer
	hdr []byte
	// for deltas recomputed because they were not kept
	index DeltaIndex
	delta []byte
	buf   []byte // buffer of streamed
}

// write streams the pack: header, entries, trailer.
func (wr *writer) write(w io.Writer) ([]byte, error) {
	pw := &packWriter{wr: wr, hw: hashWriter{
		bw:    bufio.NewWriterSize(w, writeBuffer),
		h:     trailerHash(wr.opts.Format),
		crcOn: wr.opts.OnEntry != nil,
	}}
	zw, err := zlib.NewWriterLevel(&pw.hw, wr.opts.Compression)
	if err != nil {
		return nil, err
	}
	pw.zw = zw
	sent := wr.sent
	if _, err := pw.hw.Write(pack.AppendHeader(pw.hdr[:0], uint32(wr.count))); err != nil {
		return nil, fmt.Errorf("write pack header: %w", err)
	}
	if p := wr.opts.Prefix; p != nil {
		// The prefix's entries, between its header and its trailer,
		// at the offsets they have there.
		b, err := p.Bytes(pack.HeaderSize, uint64(p.Size())-uint64(len(p.Checksum())))
		if err != nil {
			return nil, fmt.Errorf("prefix %s: %w", p.Path(), err)
		}
		if _, err := pw.hw.Write(b); err != nil {
			return nil, fmt.Errorf("write prefix: %w", err)
		}
	}
	wr.prog.report(stageWrite, 0, sent)
	var chain []int32
	written := 0
	for i := range sent {
		if wr.ents[i].out != 0 {
			continue
		}
		if err := wr.ctx.Err(); err != nil {
			return nil, err
		}
		// A base sent in this pack goes first, so that an ofs-delta
		// points backward as the format requires.
		chain = chain[:0]
		for j := int32(i); j >= 0 && !wr.ents[j].external && wr.ents[j].out == 0; j = wr.ents[j].base {
			chain = append(chain, j)
		}
		for k := len(chain) - 1; k >= 0; k-- {
			if err := pw.entry(&wr.ents[chain[k]]); err != nil {
				return nil, err
			}
			written++
			if written&255 == 0 {
				wr.prog.report(stageWrite, written, sent)
			}
			if written%releaseEvery == 0 {
				wr.releasePages()
			}
		}
	}
	sum := pw.hw.h.Sum(nil)
	if _, err := pw.hw.bw.Write(sum); err != nil {
		return nil, fmt.Errorf("write pack trailer: %w", err)
	}
	if err := pw.hw.bw.Flush(); err != nil {
		return nil, fmt.Errorf("write pack: %w", err)
	}
	wr.prog.report(stageWrite, sent, sent)
	wr.releasePages()
	return sum, nil
}

// entry writes one entry and reports it to Options.OnEntry.
func (pw *packWriter) entry(e *entry) error {
	start := pw.hw.n
	pw.hw.crc = 0
	if err := pw.writeEntry(e); err != nil {
		return err
	}
	if on := pw.wr.opts.OnEntry; on != nil {
		on(pack.IndexEntry{ID: e.id, Offset: start, CRC32: pw.hw.crc})
	}
	return nil
}

// writeEntry writes the bytes of one entry.
func (pw *packWriter) writeEntry(e *entry) error {
	wr := pw.wr
	e.out = pw.hw.n + 1
	switch e.kind {
	case kindWhole:
		if e.stored.IsBase() {
			// Stored whole: copy the entry, header included.
			return pw.copyStored(e, e.offset)
		}
		if e.size == 0 || e.size > streamThreshold {
			// Large, or of a size not learnt: stored as a delta
			// against an object not sent, applied as it is
			// compressed; loose, inflated so.
			if e.pack >= 0 {
				p := wr.packs[e.pack]
				t, size, r, err := p.OpenObject(e.offset)
				return pw.streamed(e, t, size, r, err)
			}
			if op, ok := wr.src.(ObjectOpener); ok {
				t, size, r, err := op.OpenObject(e.id)
				return pw.streamed(e, t, uint64(size), r, err)
			}
		}
		t, data, err := wr.src.ReadObject(e.id)
		if err != nil {
			return fmt.Errorf("read %s: %w", e.id, err)
		}
		if t != e.typ {
			return fmt.Errorf("object %s is a %s, not a %s", e.id, t, e.typ)
		}
		pw.hdr = pack.AppendEntryHeader(pw.hdr[:0], t, uint64(len(data)))
		return pw.compressed(e, data)
	case kindReuse:
		pw.deltaHeader(e, e.stSize)
		if _, err := pw.hw.Write(pw.hdr); err != nil {
			return fmt.Errorf("write %s: %w", e.id, err)
		}
		return pw.copyStored(e, e.offset+uint64(e.hdrLen))
	case kindNew:
		d := e.delta
		if d == nil {
			var err error
			if d, err = pw.recompute(e); err != nil {
				return err
			}
		}
		pw.deltaHeader(e, uint64(len(d)))
		err := pw.compressed(e, d)
		e.delta = nil
		return err
	}
	return fmt.Errorf("object %s: unknown entry kind %d", e.id, e.kind)
}

// deltaHeader puts in pw.hdr the header of a delta entry for e: an
// ofs-delta when the receiver accepts them and the base is in this
// pack, else a ref-delta.
func (pw *packWriter) deltaHeader(e *entry, size uint64) {
	b := &pw.wr.ents[e.base]
	if pw.wr.opts.OfsDelta && !b.external {
		pw.hdr = pack.AppendEntryHeader(pw.hdr[:0], object.OfsDelta, size)
		pw.hdr = pack.AppendOfs(pw.hdr, e.out-b.out)
		return
	}
	pw.hdr = pack.AppendEntryHeader(pw.hdr[:0], object.RefDelta, size)
	pw.hdr = append(pw.hdr, b.id.Raw()...)
}

// copyStored writes the stored bytes of e from start to its end.
func (pw *packWriter) copyStored(e *entry, start uint64) error {
	p := pw.wr.packs[e.pack]
	b, err := p.Bytes(start, e.end)
	if err != nil {
		return fmt.Errorf("object %s in %s: %w", e.id, p.Path(), err)
	}
	if _, err := pw.hw.Write(b); err != nil {
		return fmt.Errorf("write %s: %w", e.id, err)
	}
	return nil
}

// streamThreshold is the size above which an object stored as a delta
// and sent whole is not read whole: its delta is applied as its result
// is compressed (pack.Pack.OpenObject), so that a delta making a large
// object out of a small base costs buffers, not the object's size.
const streamThreshold = 4 << 20

// streamed writes e whole from r, the reader of its content of type t
// and size bytes that an OpenObject returned with err: its header, then
// its content compressed as r produces it.
func (pw *packWriter) streamed(e *entry, t object.Type, size uint64, r io.ReadCloser, err error) error {
	if err != nil {
		return fmt.Errorf("read %s: %w", e.id, err)
	}
	defer r.Close()
	if t != e.typ {
		return fmt.Errorf("object %s is a %s, not a %s", e.id, t, e.typ)
	}
	pw.hdr = pack.AppendEntryHeader(pw.hdr[:0], t, size)
	if _, err := pw.hw.Write(pw.hdr); err != nil {
		return fmt.Errorf("write %s: %w", e.id, err)
	}
	if pw.buf == nil {
		pw.buf = make([]byte, 64<<10)
	}
	pw.zw.Reset(&pw.hw)
	// r ends with io.EOF only after exactly size bytes of a sound
	// stream; an error leaves a broken pack, which Write's caller
	// discards.
	if _, err := io.CopyBuffer(pw.zw, r, pw.buf); err != nil {
		return fmt.Errorf("read %s: %w", e.id, err)
	}
	if err := pw.zw.Close(); err != nil {
		return fmt.Errorf("write %s: %w", e.id, err)
	}
	return nil
}

// compressed writes pw.hdr and then data compressed.
func (pw *packWriter) compressed(e *entry, data []byte) error {
	if _, err := pw.hw.Write(pw.hdr); err != nil {
		return fmt.Errorf("write %s: %w", e.id, err)
	}
	pw.zw.Reset(&pw.hw)
	if _, err := pw.zw.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", e.id, err)
	}
	if err := pw.zw.Close(); err != nil {
		return fmt.Errorf("write %s: %w", e.id, err)
	}
	return nil
}

// recompute computes again the delta the search found for e and did not
// keep. The encoder is deterministic, so it finds the same delta.
func (pw *packWriter) recompute(e *entry) ([]byte, error) {
	src := pw.wr.src
	b := &pw.wr.ents[e.base]
	_, base, err := src.ReadObject(b.id)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", b.id, err)
	}
	_, target, err := src.ReadObject(e.id)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", e.id, err)
	}
	pw.index.Reset(base)
	// Not limited to the size found: giving up early is a heuristic
	// that a tighter limit could trigger where the search did not.
	d, ok := pw.index.Delta(pw.delta[:0], target, 2*len(target)+64)
	if pw.index.Size() > bigIndex {
		pw.index = DeltaIndex{}
	} else {
		pw.index.Reset(nil)
	}
	if !ok || uint64(len(d)) != e.dsize {
		return nil, fmt.Errorf("object %s: delta against %s changed between search and write", e.id, b.id)
	}
	pw.delta = d
	return d, nil
}
