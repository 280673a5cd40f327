package indexer

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/pack"
)

// completeThin resolves the ref-deltas left after the parallel phase by
// appending their bases from opts.Bases to the pack, as `git index-pack
// --fix-thin` does: in the order of the first delta that needs each
// base, resolving the tree under each appended base before looking for
// the next, so the appended objects are the ones C Git would append.
// Then it rewrites the header count and the trailer.
func (ix *indexer) completeThin(r *resolver) error {
	if int(r.done.Load()) == ix.nDeltas {
		return nil
	}
	if p, ok := ix.opts.Bases.(BasePreparer); ok {
		var ids []oid.ID
		seen := map[oid.ID]bool{}
		for i := 0; i < ix.nScanned; i++ {
			if ix.entries[i].ptype == object.RefDelta && ix.claimed[i] == 0 {
				if id := ix.refBase[ix.entries[i].base]; !seen[id] {
					seen[id] = true
					ids = append(ids, id)
				}
			}
		}
		if err := p.PrepareBases(ids); err != nil {
			return fmt.Errorf("indexer: delta bases: %w", err)
		}
	}
	w := newWorker(r, deltaBaseBudget)
	hs := uint64(ix.hashSize)
	end := ix.packLen - hs // appended objects replace the trailer
	var buf bytes.Buffer
	for i := 0; i < ix.nScanned; i++ {
		if ix.entries[i].ptype != object.RefDelta || ix.claimed[i] != 0 {
			continue
		}
		id := ix.refBase[ix.entries[i].base]
		if ix.opts.Bases == nil {
			return fmt.Errorf("%w: %d deltas unresolved; the delta at offset %d needs %s",
				ErrThin, ix.nDeltas-int(r.done.Load()), ix.entries[i].off, id)
		}
		if err := ix.ctx.Err(); err != nil {
			return fmt.Errorf("indexer: %w", err)
		}
		t, data, err := ix.opts.Bases.ReadObject(id)
		if errors.Is(err, object.ErrNotFound) {
			return fmt.Errorf("%w: %s (for the delta at offset %d)", ErrThin, id, ix.entries[i].off)
		}
		if err != nil {
			return fmt.Errorf("indexer: read delta base %s: %w", id, err)
		}
		if !t.IsBase() || uint64(len(data)) > ix.maxObject {
			return fmt.Errorf("indexer: delta base %s: bad object from the repository", id)
		}
		if got, err := object.ID(ix.f, t, data); err != nil || got != id {
			return fmt.Errorf("indexer: delta base %s: repository returned object %s", id, got)
		}

		buf.Reset()
		var hdr [pack.MaxEntryHeaderSize]byte
		buf.Write(pack.AppendEntryHeader(hdr[:0], t, uint64(len(data))))
		zw := zlib.NewWriter(&buf)
		zw.Write(data)
		if err := zw.Close(); err != nil {
			return fmt.Errorf("indexer: compress delta base: %w", err)
		}
		if ix.opts.Room != nil {
			if err := ix.opts.Room(int64(buf.Len())); err != nil {
				return fmt.Errorf("indexer: %w", err)
			}
		}
		if _, err := ix.file.WriteAt(buf.Bytes(), int64(end)); err != nil {
			return fmt.Errorf("indexer: append delta base: %w", err)
		}
		if len(ix.entries) >= math.MaxUint32 {
			return fmt.Errorf("indexer: too many objects")
		}
		n := uint32(len(ix.entries))
		copy(ix.ids.slot(int(n)), id.Raw())
		ix.entries = append(ix.entries, entry{
			off: end, size: uint64(len(data)),
			crc: crc32.ChecksumIEEE(buf.Bytes()), ptype: t, typ: t,
		})
		ix.claimed = append(ix.claimed, 1)
		end += uint64(buf.Len())
		if err := w.walk(n, data); err != nil {
			return err
		}
		if r.err != nil {
			return r.err
		}
	}
	if left := ix.nDeltas - int(r.done.Load()); left > 0 {
		return fmt.Errorf("indexer: %w: %d deltas cannot be resolved (a cycle of ref-deltas)", pack.ErrCorrupt, left)
	}
	return ix.rewriteTrailer(end)
}

// rewriteTrailer sets the object count in the header of the pack file
// and writes a new trailer at end.
func (ix *indexer) rewriteTrailer(end uint64) error {
	var cnt [4]byte
	binary.BigEndian.PutUint32(cnt[:], uint32(len(ix.entries)))
	if _, err := ix.file.WriteAt(cnt[:], 8); err != nil {
		return fmt.Errorf("indexer: rewrite pack header: %w", err)
	}
	h := ix.f.New()
	if _, err := io.Copy(h, io.NewSectionReader(ix.file, 0, int64(end))); err != nil {
		return fmt.Errorf("indexer: rehash pack: %w", err)
	}
	ix.checksum = h.Sum(nil)
	if _, err := ix.file.WriteAt(ix.checksum, int64(end)); err != nil {
		return fmt.Errorf("indexer: write pack trailer: %w", err)
	}
	if err := ix.file.Truncate(int64(end) + int64(len(ix.checksum))); err != nil {
		return fmt.Errorf("indexer: %w", err)
	}
	return nil
}
