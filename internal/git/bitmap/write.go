package bitmap

import (
	"encoding/binary"
	"fmt"
	"io"
	"sort"

	"gotd/internal/git/oid"
)

// Entry is one commit bitmap to write: the pack positions of every
// object reachable from Commit.
type Entry struct {
	Commit oid.ID
	Bitmap Bitmap
}

// WriteOptions describe a .bitmap file for one pack.
type WriteOptions struct {
	// Pack is the pack the bitmaps describe (required).
	Pack IndexLookup
	// Types are the pack positions of the commits, trees, blobs and tags
	// of the pack, in that order. Every object must be in exactly one.
	Types [4]Bitmap
	// NameHashes, if not nil, holds the name-hash of each object by pack
	// position (len(NameHashes) == Pack.Count()); it is written as the
	// name-hash cache (which is in index order).
	NameHashes []uint32
	// LookupTable adds the lookup table extension.
	LookupTable bool
	// XORWindow, if positive, lets each entry be stored XORed with one of
	// the XORWindow entries before it (at most MaxXOROffset) when that is
	// smaller. It costs XORWindow encodings per entry.
	XORWindow int
}

// Write writes a .bitmap file for the entries to w, entries in the
// order given. Every bitmap's bits must be below Pack.Count() and every
// commit an object of the pack marked as a commit in Types. The whole
// file is built in memory (it is small next to the pack) and written
// with one call, followed by nothing: the caller syncs and renames.
func Write(w io.Writer, f oid.Format, o *WriteOptions, entries []Entry) error {
	hs := f.Size()
	if hs == 0 {
		return fmt.Errorf("bitmap: invalid object format %v", f)
	}
	count := o.Pack.Count()
	sum := o.Pack.Checksum()
	if len(sum) != hs {
		return fmt.Errorf("bitmap: pack checksum of %d bytes", len(sum))
	}
	if o.NameHashes != nil && len(o.NameHashes) != count {
		return fmt.Errorf("bitmap: %d name hashes for %d objects", len(o.NameHashes), count)
	}
	if len(entries) > count {
		return fmt.Errorf("bitmap: %d entries for %d objects", len(entries), count)
	}
	for t, b := range o.Types {
		if b.Len() > count {
			return fmt.Errorf("bitmap: type bitmap %d has bit %d past %d objects", t, b.Len()-1, count)
		}
	}
	flags := uint16(FlagFullDAG)
	if o.NameHashes != nil {
		flags |= FlagHashCache
	}
	if o.LookupTable {
		flags |= FlagLookupTable
	}
	buf := make([]byte, 0, 1<<16)
	buf = append(buf, signature...)
	buf = binary.BigEndian.AppendUint16(buf, 1)
	buf = binary.BigEndian.AppendUint16(buf, flags)
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(entries)))
	buf = append(buf, sum...)
	for _, b := range o.Types {
		buf = AppendEWAH(buf, b)
	}

	type row struct {
		ipos   uint32
		offset uint64
		xor    int // entry index, or -1
	}
	rows := make([]row, len(entries))
	seen := make(map[oid.ID]bool, len(entries))
	window := min(o.XORWindow, MaxXOROffset)
	var plain, trial []byte
	var diff Bitmap
	for i, e := range entries {
		if seen[e.Commit] {
			return fmt.Errorf("bitmap: two entries for %v", e.Commit)
		}
		seen[e.Commit] = true
		if e.Bitmap.Len() > count {
			return fmt.Errorf("bitmap: bitmap of %v has bit %d past %d objects", e.Commit, e.Bitmap.Len()-1, count)
		}
		ppos, ok := o.Pack.PackPos(e.Commit)
		if !ok || !o.Types[0].Has(ppos) {
			return fmt.Errorf("bitmap: %v is not a commit of the pack", e.Commit)
		}
		ipos, err := indexPos(o.Pack, e.Commit)
		if err != nil {
			return err
		}
		plain = appendEWAH(plain[:0], e.Bitmap, true)
		best, bestXOR := plain, 0
		for k := 1; k <= window && k <= i; k++ {
			diff.Reset()
			diff.Or(e.Bitmap)
			diff.Xor(entries[i-k].Bitmap)
			trial = appendEWAH(trial[:0], diff, true)
			if len(trial) < len(best) {
				best, bestXOR = append([]byte(nil), trial...), k
			}
		}
		rows[i] = row{ipos: uint32(ipos), offset: uint64(len(buf)), xor: -1}
		if bestXOR > 0 {
			rows[i].xor = i - bestXOR
		}
		buf = binary.BigEndian.AppendUint32(buf, uint32(ipos))
		buf = append(buf, byte(bestXOR), 0)
		buf = append(buf, best...)
	}
	if o.LookupTable {
		order := make([]int, len(rows))
		for i := range order {
			order[i] = i
		}
		sort.Slice(order, func(a, b int) bool { return rows[order[a]].ipos < rows[order[b]].ipos })
		rowOf := make([]uint32, len(rows))
		for r, i := range order {
			rowOf[i] = uint32(r)
		}
		for _, i := range order {
			buf = binary.BigEndian.AppendUint32(buf, rows[i].ipos)
			buf = binary.BigEndian.AppendUint64(buf, rows[i].offset)
			xr := uint32(noXORRow)
			if rows[i].xor >= 0 {
				xr = rowOf[rows[i].xor]
			}
			buf = binary.BigEndian.AppendUint32(buf, xr)
		}
	}
	if o.NameHashes != nil {
		for i := 0; i < count; i++ {
			id, err := o.Pack.IDAtIndex(i)
			if err != nil {
				return fmt.Errorf("bitmap: %w", err)
			}
			pos, ok := o.Pack.PackPos(id)
			if !ok {
				return fmt.Errorf("bitmap: pack lacks %v listed in its index", id)
			}
			buf = binary.BigEndian.AppendUint32(buf, o.NameHashes[pos])
		}
	}
	h := f.New()
	h.Write(buf)
	buf = h.Sum(buf)
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("bitmap: write: %w", err)
	}
	return nil
}
