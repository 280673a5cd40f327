package pack

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"gotd/internal/git/object"
)

// DeltaReader applies a delta as it is read: its output is the delta's
// result, produced one instruction at a time, so that a result of any
// size costs the reader a small buffer over the delta stream and
// nothing more. Copies read the base through io.ReaderAt, which may be
// a file (an object spilled to disk) as well as memory. It makes the
// checks ApplyDelta makes, in stream order: an error may come after
// part of the result was read, and the caller must then discard what
// it read. The result is exactly Size bytes long when Read reaches
// io.EOF without error.
type DeltaReader struct {
	base     io.ReaderAt
	baseSize uint64
	d        *bufio.Reader
	size     uint64 // declared result size
	done     uint64 // result bytes produced
	// The instruction being carried out: copy n bytes from off of the
	// base, or insert n literal bytes of the delta.
	insert bool
	off, n uint64
	err    error
}

// deltaReadBuffer is the buffer DeltaReader reads the delta through.
const deltaReadBuffer = 32 << 10

// NewDeltaReader reads the delta header from delta and returns a
// reader of its result. The base must hold baseSize bytes, which the
// delta's declared base size must equal; a declared result over
// maxResult is refused here, before anything is produced.
func NewDeltaReader(base io.ReaderAt, baseSize uint64, delta io.Reader, maxResult uint64) (*DeltaReader, error) {
	d := bufio.NewReaderSize(delta, deltaReadBuffer)
	bs, err := readDeltaVarint(d)
	if err != nil {
		return nil, err
	}
	rs, err := readDeltaVarint(d)
	if err != nil {
		return nil, err
	}
	if bs != baseSize {
		return nil, corruptf("delta base size %d does not match base of %d bytes", bs, baseSize)
	}
	if rs > maxResult {
		return nil, corruptf("delta result of %d bytes exceeds the limit of %d", rs, maxResult)
	}
	return &DeltaReader{base: base, baseSize: baseSize, d: d, size: rs}, nil
}

// readDeltaVarint reads a delta header size varint (deltaVarint on a
// stream).
func readDeltaVarint(r io.ByteReader) (uint64, error) {
	var buf [MaxDeltaSizeVarint]byte
	for n := 0; n < len(buf); n++ {
		c, err := r.ReadByte()
		if err != nil {
			return 0, corruptf("truncated delta header")
		}
		buf[n] = c
		if c&0x80 == 0 {
			v, _, err := deltaVarint(buf[:n+1])
			return v, err
		}
	}
	return 0, corruptf("delta size overflows")
}

// Size returns the result size the delta declares.
func (r *DeltaReader) Size() uint64 { return r.size }

// Read produces the next bytes of the result.
func (r *DeltaReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	total := 0
	for len(p) > 0 {
		if r.n == 0 {
			if err := r.next(); err != nil {
				if err == io.EOF && total > 0 {
					return total, nil
				}
				r.err = err
				return total, err
			}
		}
		k := int(min(uint64(len(p)), r.n))
		if r.insert {
			m, err := io.ReadFull(r.d, p[:k])
			if err != nil {
				r.err = corruptf("truncated delta insert instruction")
				return total + m, r.err
			}
		} else {
			m, err := r.base.ReadAt(p[:k], int64(r.off))
			if m < k {
				if err == nil || errors.Is(err, io.EOF) {
					err = corruptf("delta base ends before its declared %d bytes", r.baseSize)
				}
				r.err = err
				return total + m, err
			}
			r.off += uint64(k)
		}
		r.n -= uint64(k)
		r.done += uint64(k)
		total += k
		p = p[k:]
	}
	return total, nil
}

// next decodes the next instruction; io.EOF at the end of a delta whose
// result has its declared size.
func (r *DeltaReader) next() error {
	op, err := r.d.ReadByte()
	if err != nil {
		if err != io.EOF {
			return err
		}
		if r.done != r.size {
			return corruptf("delta result of %d bytes is not the declared %d", r.done, r.size)
		}
		return io.EOF
	}
	var size uint64
	switch {
	case op&0x80 != 0:
		// Copy from base: bits 0-3 say which offset bytes follow, bits
		// 4-6 which size bytes.
		var off uint64
		for bit := uint(0); bit < 7; bit++ {
			if op&(1<<bit) == 0 {
				continue
			}
			c, err := r.d.ReadByte()
			if err != nil {
				return corruptf("truncated delta copy instruction")
			}
			if bit < 4 {
				off |= uint64(c) << (8 * bit)
			} else {
				size |= uint64(c) << (8 * (bit - 4))
			}
		}
		if size == 0 {
			size = 0x10000
		}
		if off+size > r.baseSize {
			return corruptf("delta copies past the end of its base")
		}
		r.insert, r.off = false, off
	case op != 0:
		size = uint64(op)
		r.insert = true
	default:
		return corruptf("delta has reserved instruction 0")
	}
	if r.done+size > r.size {
		return corruptf("delta result exceeds its declared size")
	}
	r.n = size
	return nil
}

// OpenObject returns the type and size of the object whose entry starts
// at offset, and a reader of its content, for objects too large to read
// whole: a whole entry is inflated as it is read, and a delta is applied
// as it is read (DeltaReader) against its base, which is read whole as
// ReadAt reads it. A delta that makes a large object out of a small base
// so costs the base, not the object. Size limits are checked as ReadAt
// checks them, on the declared sizes, before anything is read. The
// reader ends with io.EOF only after exactly size bytes and a zlib
// stream that ends there with a good checksum; else it returns an error
// wrapping ErrCorrupt, and what was read must be discarded. The caller
// must Close the reader, and not use it after closing the Pack.
func (p *Pack) OpenObject(offset uint64) (object.Type, uint64, io.ReadCloser, error) {
	e, err := p.entryHeader(offset)
	if err != nil {
		return 0, 0, nil, err
	}
	if e.Type.IsBase() {
		er, err := p.openEntry(e)
		if err != nil {
			return 0, 0, nil, err
		}
		return e.Type, e.Size, er, nil
	}
	baseOff := e.BaseOffset
	if e.Type == object.RefDelta {
		var ok bool
		if baseOff, ok = p.OffsetOf(e.BaseID); !ok {
			return 0, 0, nil, corruptf("delta at %d has base %s, which is not in the pack", offset, e.BaseID)
		}
	}
	t, base, err := p.ReadAt(baseOff)
	if err != nil {
		return 0, 0, nil, err
	}
	er, err := p.openEntry(e)
	if err != nil {
		return 0, 0, nil, err
	}
	dr, err := NewDeltaReader(bytes.NewReader(base), uint64(len(base)), er, uint64(p.opts.MaxObjectSize))
	if err != nil {
		er.Close()
		return 0, 0, nil, fmt.Errorf("delta at %d: %w", offset, err)
	}
	if dr.Size()/maxDeltaExpansion > e.Size {
		er.Close()
		return 0, 0, nil, corruptf("delta at %d of %d bytes declares a result of %d", offset, e.Size, dr.Size())
	}
	return t, dr.Size(), &deltaObject{DeltaReader: dr, er: er}, nil
}

// deltaObject is the reader OpenObject returns for a delta.
type deltaObject struct {
	*DeltaReader
	er *entryReader
}

func (d *deltaObject) Read(b []byte) (int, error) {
	n, err := d.DeltaReader.Read(b)
	if err == io.EOF {
		// The result is whole: the delta's stream must end too.
		if err = d.er.end(); err == nil {
			err = io.EOF
		}
	}
	return n, err
}

func (d *deltaObject) Close() error { return d.er.Close() }

// entryReader inflates the data of one entry, which must be exactly
// size bytes followed by the end of its zlib stream.
type entryReader struct {
	z    *inflater
	off  uint64
	left uint64
}

// openEntry returns a reader of the inflated data of entry e.
func (p *Pack) openEntry(e Entry) (*entryReader, error) {
	if e.Size > uint64(p.opts.MaxObjectSize) {
		return nil, fmt.Errorf("entry at %d: %w: %d bytes, limit %d", e.Offset, ErrTooLarge, e.Size, p.opts.MaxObjectSize)
	}
	off := e.Offset + uint64(e.HeaderLen)
	if e.Size/maxInflateRatio > p.end-off {
		return nil, corruptf("entry data at %d declares %d bytes, more than the pack's %d remaining bytes can hold", off, e.Size, p.end-off)
	}
	z, err := p.newInflater(off)
	if err != nil {
		return nil, fmt.Errorf("entry at %d: %w", e.Offset, err)
	}
	return &entryReader{z: z, off: e.Offset, left: e.Size}, nil
}

func (r *entryReader) Read(b []byte) (int, error) {
	if r.z == nil {
		return 0, fmt.Errorf("pack: read of a closed entry at %d", r.off)
	}
	if r.left == 0 {
		if err := r.end(); err != nil {
			return 0, err
		}
		return 0, io.EOF
	}
	if uint64(len(b)) > r.left {
		b = b[:r.left]
	}
	n, err := r.z.zr.Read(b)
	r.left -= uint64(n)
	switch {
	case err == io.EOF && r.left > 0, err == io.ErrUnexpectedEOF:
		return n, corruptf("entry at %d: zlib stream ends %d bytes short", r.off, r.left)
	case err != nil && err != io.EOF:
		return n, corruptf("entry at %d: inflate: %v", r.off, err)
	}
	return n, nil
}

// end checks that the stream ends after the declared size, with a good
// checksum.
func (r *entryReader) end() error {
	if r.left != 0 {
		return corruptf("entry at %d: %d bytes left to read", r.off, r.left)
	}
	for range 4 {
		n, err := r.z.zr.Read(r.z.scratch[:1])
		switch {
		case n > 0:
			return corruptf("entry at %d: zlib stream inflates past its declared size", r.off)
		case err == io.EOF:
			return nil
		case err != nil:
			return corruptf("entry at %d: inflate: %v", r.off, err)
		}
	}
	return corruptf("entry at %d: zlib stream does not end", r.off)
}

// Close puts the inflater back; the reader must not be used afterwards.
func (r *entryReader) Close() error {
	if r.z != nil {
		r.z.release()
		r.z = nil
	}
	return nil
}
