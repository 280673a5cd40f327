package fastimport

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"

	"gotd/internal/engine/indexer"
	"gotd/internal/engine/packer"
	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/pack"
	"gotd/internal/git/repo"
)

// maxDeltaDepth bounds the delta chains the import writes. C Git's
// fast-import allows 50; a shorter chain keeps reading back a tree or
// commit written earlier in the stream cheap, at some cost in size.
const maxDeltaDepth = 10

// objEntry is an object written into the pack being built.
type objEntry struct {
	off   uint64
	crc   uint32 // of the entry's stored bytes, for the .idx
	typ   object.Type
	depth uint8
}

// packFile is the pack the import writes: a temporary file in the
// repository's pack directory, entries appended one by one (whole, or as
// an ofs-delta against an earlier entry), the header's object count and
// the trailer fixed when it is finished. Objects already in the
// repository or already written are not written again.
type packFile struct {
	r    *repo.Repo
	f    *os.File
	bw   *bufio.Writer
	off  uint64 // bytes written so far, buffered ones included
	objs map[oid.ID]objEntry
	zw   *zlib.Writer
	zbuf bytes.Buffer
	hdr  []byte
	dbuf []byte
	// flushed is off at the last flush of bw: entries below it can be
	// read back from f.
	flushed uint64
}

func newPackFile(r *repo.Repo) (*packFile, error) {
	f, err := os.CreateTemp(r.PackDir(), "tmp_fastimport_")
	if err != nil {
		return nil, fmt.Errorf("create pack: %w", err)
	}
	pf := &packFile{r: r, f: f, bw: bufio.NewWriterSize(f, 256<<10), objs: make(map[oid.ID]objEntry)}
	pf.zw, _ = zlib.NewWriterLevel(&pf.zbuf, zlib.DefaultCompression)
	// The count is written when the pack is finished.
	hdr := pack.AppendHeader(nil, 0)
	if _, err := pf.bw.Write(hdr); err != nil {
		pf.abort()
		return nil, fmt.Errorf("write pack: %w", err)
	}
	pf.off = uint64(len(hdr))
	return pf, nil
}

// abort removes the temporary pack.
func (pf *packFile) abort() {
	if pf.f != nil {
		pf.f.Close()
		os.Remove(pf.f.Name())
		pf.f = nil
	}
}

// has reports whether the object id exists, in the pack being written or
// in the repository, and its type.
func (pf *packFile) has(id oid.ID) (object.Type, bool) {
	if e, ok := pf.objs[id]; ok {
		return e.typ, true
	}
	t, _, err := pf.r.StatObject(id)
	if err != nil {
		return 0, false
	}
	return t, true
}

// deltaBase is an earlier object worth trying as the base of a delta:
// its content and where the pack holds it.
type deltaBase struct {
	id   oid.ID
	data []byte
}

// store writes an object unless it exists already, as a delta against
// base when base is in this pack, its chain is short enough and the delta
// is smaller. It returns the object's id and whether it was written.
func (pf *packFile) store(t object.Type, data []byte, base *deltaBase) (oid.ID, bool, error) {
	id, err := object.ID(pf.r.Format, t, data)
	if err != nil {
		return id, false, err
	}
	if _, ok := pf.has(id); ok {
		return id, false, nil
	}
	off := pf.off
	e := objEntry{off: off, typ: t}
	payload := data
	pf.hdr = pf.hdr[:0]
	if base != nil && len(data) > 64 && len(base.data) > 0 && len(base.data) <= packer.MaxDeltaBase {
		if be, ok := pf.objs[base.id]; ok && be.depth < maxDeltaDepth {
			d, ok := packer.ComputeDelta(pf.dbuf[:0], base.data, data, len(data)/2)
			if ok {
				pf.dbuf = d
				payload = d
				e.depth = be.depth + 1
				pf.hdr = pack.AppendEntryHeader(pf.hdr, object.OfsDelta, uint64(len(d)))
				pf.hdr = pack.AppendOfs(pf.hdr, off-be.off)
			}
		}
	}
	if e.depth == 0 {
		pf.hdr = pack.AppendEntryHeader(pf.hdr, t, uint64(len(data)))
	}
	pf.zbuf.Reset()
	pf.zw.Reset(&pf.zbuf)
	if _, err := pf.zw.Write(payload); err != nil {
		return id, false, err
	}
	if err := pf.zw.Close(); err != nil {
		return id, false, err
	}
	if _, err := pf.bw.Write(pf.hdr); err != nil {
		return id, false, fmt.Errorf("write pack: %w", err)
	}
	if _, err := pf.bw.Write(pf.zbuf.Bytes()); err != nil {
		return id, false, fmt.Errorf("write pack: %w", err)
	}
	pf.off += uint64(len(pf.hdr) + pf.zbuf.Len())
	e.crc = crc32.Update(crc32.ChecksumIEEE(pf.hdr), crc32.IEEETable, pf.zbuf.Bytes())
	pf.objs[id] = e
	return id, true, nil
}

// storeStream writes a blob of size bytes read from r without holding it:
// it is hashed and compressed as it is read. A blob that exists already
// is cut off the pack again.
func (pf *packFile) storeStream(r io.Reader, size int64) (oid.ID, bool, error) {
	off := pf.off
	pf.hdr = pack.AppendEntryHeader(pf.hdr[:0], object.Blob, uint64(size))
	if _, err := pf.bw.Write(pf.hdr); err != nil {
		return oid.ID{}, false, fmt.Errorf("write pack: %w", err)
	}
	cw := &countWriter{w: pf.bw, crc: crc32.ChecksumIEEE(pf.hdr)}
	pf.zw.Reset(cw)
	h := object.Hasher(pf.r.Format, object.Blob, size)
	if _, err := io.CopyN(io.MultiWriter(h, pf.zw), r, size); err != nil {
		return oid.ID{}, false, err
	}
	if err := pf.zw.Close(); err != nil {
		return oid.ID{}, false, err
	}
	pf.off += uint64(len(pf.hdr)) + cw.n
	id, err := h.ID()
	if err != nil {
		return id, false, err
	}
	if _, ok := pf.has(id); ok {
		if err := pf.truncate(off); err != nil {
			return id, false, err
		}
		return id, false, nil
	}
	pf.objs[id] = objEntry{off: off, crc: cw.crc, typ: object.Blob}
	return id, true, nil
}

// truncate drops what was written from off on.
func (pf *packFile) truncate(off uint64) error {
	if err := pf.flush(); err != nil {
		return err
	}
	if err := pf.f.Truncate(int64(off)); err != nil {
		return fmt.Errorf("write pack: %w", err)
	}
	if _, err := pf.f.Seek(int64(off), io.SeekStart); err != nil {
		return fmt.Errorf("write pack: %w", err)
	}
	pf.off, pf.flushed = off, off
	return nil
}

// countWriter counts and checksums what goes through it.
type countWriter struct {
	w   io.Writer
	n   uint64
	crc uint32
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += uint64(n)
	c.crc = crc32.Update(c.crc, crc32.IEEETable, p[:n])
	return n, err
}

func (pf *packFile) flush() error {
	if pf.flushed == pf.off {
		return nil
	}
	if err := pf.bw.Flush(); err != nil {
		return fmt.Errorf("write pack: %w", err)
	}
	pf.flushed = pf.off
	return nil
}

// read returns an object's type and content, from the pack being
// written or from the repository; maxSize bounds what is inflated.
func (pf *packFile) read(id oid.ID, maxSize int64) (object.Type, []byte, error) {
	e, ok := pf.objs[id]
	if !ok {
		t, data, err := pf.r.ReadObject(id)
		if err != nil {
			return 0, nil, err
		}
		return t, data, nil
	}
	if err := pf.flush(); err != nil {
		return 0, nil, err
	}
	return pf.readAt(e.off, maxSize, maxDeltaDepth+1)
}

// readAt inflates the entry at off, applying its delta chain.
func (pf *packFile) readAt(off uint64, maxSize int64, depth int) (object.Type, []byte, error) {
	if depth < 0 {
		return 0, nil, fmt.Errorf("pack: delta chain too long at %d", off)
	}
	sr := io.NewSectionReader(pf.f, int64(off), int64(pf.flushed-off))
	br := bufio.NewReaderSize(sr, 4096)
	t, size, _, err := pack.ReadEntryHeader(br, nil)
	if err != nil {
		return 0, nil, err
	}
	if size > uint64(maxSize) {
		return 0, nil, fmt.Errorf("pack: object at %d is larger than %d bytes", off, maxSize)
	}
	var baseOff uint64
	if t == object.OfsDelta {
		rel, _, err := pack.ReadOfs(br, nil)
		if err != nil {
			return 0, nil, err
		}
		if rel == 0 || rel > off {
			return 0, nil, fmt.Errorf("pack: bad delta offset at %d", off)
		}
		baseOff = off - rel
	}
	zr, err := zlib.NewReader(br)
	if err != nil {
		return 0, nil, err
	}
	data := make([]byte, size)
	if _, err := io.ReadFull(zr, data); err != nil {
		return 0, nil, fmt.Errorf("pack: inflate entry at %d: %w", off, err)
	}
	if t != object.OfsDelta {
		return t, data, nil
	}
	bt, base, err := pf.readAt(baseOff, maxSize, depth-1)
	if err != nil {
		return 0, nil, err
	}
	out, err := pack.ApplyDelta(nil, base, data, uint64(maxSize))
	return bt, out, err
}

// finish writes the object count and the trailer and installs the
// pack. Unless verify is set, its .idx and .rev are written from what
// the writer recorded of each entry (the project's index writers, no
// second pass over the pack, as gotadmin pack does); with verify, the
// project's indexer reads the pack again, checks every object and
// writes them. The .idx is renamed into place last: it is what makes
// the pack visible. It returns the pack's path, or "" when nothing was
// written.
func (pf *packFile) finish(ctx context.Context, maxObjectSize int64, verify bool) (string, error) {
	defer pf.abort()
	if len(pf.objs) == 0 {
		return "", nil
	}
	if err := pf.flush(); err != nil {
		return "", err
	}
	if len(pf.objs) > 1<<32-1 {
		return "", fmt.Errorf("pack: too many objects (%d)", len(pf.objs))
	}
	var cnt [4]byte
	binary.BigEndian.PutUint32(cnt[:], uint32(len(pf.objs)))
	if _, err := pf.f.WriteAt(cnt[:], 8); err != nil {
		return "", fmt.Errorf("write pack: %w", err)
	}
	h := pf.r.Format.New()
	if _, err := io.Copy(h, io.NewSectionReader(pf.f, 0, int64(pf.off))); err != nil {
		return "", fmt.Errorf("hash pack: %w", err)
	}
	sum := h.Sum(nil)
	if _, err := pf.f.WriteAt(sum, int64(pf.off)); err != nil {
		return "", fmt.Errorf("write pack: %w", err)
	}
	if err := pf.f.Sync(); err != nil {
		return "", fmt.Errorf("write pack: %w", err)
	}
	if err := pf.r.Shared.Chmod(pf.f, 0o444); err != nil {
		return "", err
	}
	base := filepath.Join(pf.r.PackDir(), fmt.Sprintf("pack-%x", sum))
	if verify {
		if err := os.Rename(pf.f.Name(), base+".pack"); err != nil {
			return "", fmt.Errorf("install pack: %w", err)
		}
		pf.f.Close()
		pf.f = nil
		if _, err := indexer.IndexFile(ctx, base+".pack", indexer.Options{
			Format:        pf.r.Format,
			Shared:        pf.r.Shared,
			MaxObjectSize: maxObjectSize,
			WriteRev:      true,
		}); err != nil {
			os.Remove(base + ".pack")
			return "", fmt.Errorf("index pack: %w", err)
		}
		return base + ".pack", nil
	}
	entries := make([]pack.IndexEntry, 0, len(pf.objs))
	for id, e := range pf.objs {
		entries = append(entries, pack.IndexEntry{ID: id, Offset: e.off, CRC32: e.crc})
	}
	var tmps []string
	defer func() {
		for _, t := range tmps {
			os.Remove(t)
		}
	}()
	write := func(prefix string, fill func(io.Writer) error) (string, error) {
		f, err := os.CreateTemp(pf.r.PackDir(), prefix)
		if err != nil {
			return "", err
		}
		tmps = append(tmps, f.Name())
		bw := bufio.NewWriterSize(f, 64<<10)
		err = fill(bw)
		if err == nil {
			err = bw.Flush()
		}
		if err == nil {
			err = f.Sync()
		}
		if err == nil {
			err = pf.r.Shared.Chmod(f, 0o444)
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return f.Name(), err
	}
	// WriteIndex sorts the entries by id, as WriteRev needs them.
	idxTmp, err := write("tmp_idx_", func(w io.Writer) error {
		_, err := pack.WriteIndex(w, pf.r.Format, entries, sum)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("write index: %w", err)
	}
	revTmp, err := write("tmp_rev_", func(w io.Writer) error {
		_, err := pack.WriteRev(w, pf.r.Format, entries, sum)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("write rev: %w", err)
	}
	packTmp := pf.f.Name()
	pf.f.Close()
	pf.f = nil
	tmps = append(tmps, packTmp)
	for _, mv := range []struct{ from, to string }{
		{packTmp, base + ".pack"},
		{revTmp, base + ".rev"},
		{idxTmp, base + ".idx"},
	} {
		if err := os.Rename(mv.from, mv.to); err != nil {
			return "", fmt.Errorf("install pack: %w", err)
		}
	}
	tmps = nil
	d, err := os.Open(pf.r.PackDir())
	if err == nil {
		err = d.Sync()
		d.Close()
	}
	if err != nil {
		return "", fmt.Errorf("install pack: %w", err)
	}
	return base + ".pack", nil
}
