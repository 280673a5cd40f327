package pack

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"time"

	"gotd/internal/git/oid"
)

// MidxPack is one pack a multi-pack-index is to cover.
type MidxPack struct {
	// Name is the pack's index file name, "pack-<checksum>.idx".
	Name  string
	Index *Index
	// MTime is the pack's modification time and Preferred marks the
	// preferred pack: an object several packs hold is taken from the
	// preferred pack, else from the newest (to the second), as C Git
	// chooses.
	MTime     time.Time
	Preferred bool
}

// MidxOptions are the options of WriteMultiPackIndexWith.
type MidxOptions struct {
	// Reverse adds the reverse index (RIDX: the sorted position of each
	// object in the pseudo-pack order, the preferred pack's objects
	// first, then each pack's by pack number, each by offset) and the
	// bitmapped packs (BTMP: where each pack's objects start in that
	// order, and how many), as C Git's multi-pack-index write --bitmap
	// does: a multi-pack bitmap's positions follow that order.
	Reverse bool
}

// WriteMultiPackIndex writes to w a multi-pack-index covering packs
// (gitformat-pack(5), "multi-pack-index (MIDX) files"; version 1 with
// the chunks PNAM, OIDF, OIDL, OOFF and, when an offset needs more
// than 31 bits, LOFF) as C Git's multi-pack-index write lays it out:
// packs numbered in the order of their names, each object once. It
// returns the trailing checksum. Every name must be a plain .idx file
// name, each once, and every index of format f.
func WriteMultiPackIndex(w io.Writer, f oid.Format, packs []MidxPack) ([]byte, error) {
	return WriteMultiPackIndexWith(w, f, packs, MidxOptions{})
}

// WriteMultiPackIndexWith is WriteMultiPackIndex with options: with
// Reverse, the file is the one C Git's multi-pack-index write --bitmap
// makes. At most one pack may be preferred.
func WriteMultiPackIndexWith(w io.Writer, f oid.Format, packs []MidxPack, o MidxOptions) ([]byte, error) {
	if !f.Valid() {
		return nil, fmt.Errorf("pack: write multi-pack-index: invalid object format %d", f)
	}
	hs := f.Size()
	packs = slices.Clone(packs)
	slices.SortFunc(packs, func(a, b MidxPack) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	total := 0
	for i, p := range packs {
		if !validPackIndexName(p.Name) {
			return nil, fmt.Errorf("pack: write multi-pack-index: bad pack name %q", p.Name)
		}
		if i > 0 && packs[i-1].Name == p.Name {
			return nil, fmt.Errorf("pack: write multi-pack-index: pack %s twice", p.Name)
		}
		if p.Index.Format() != f {
			return nil, fmt.Errorf("pack: write multi-pack-index: %s is of format %v", p.Name, p.Index.Format())
		}
		total += p.Index.Count()
	}
	if preferred := slices.IndexFunc(packs, func(p MidxPack) bool { return p.Preferred }); preferred >= 0 &&
		slices.ContainsFunc(packs[preferred+1:], func(p MidxPack) bool { return p.Preferred }) {
		return nil, fmt.Errorf("pack: write multi-pack-index: several preferred packs")
	}
	if uint64(total) >= 1<<32 {
		return nil, fmt.Errorf("pack: write multi-pack-index: %d objects is too many", total)
	}

	// Every copy of every object, sorted by id, then preferred pack
	// first, then newest pack first, then lowest pack number; the
	// first of each id is kept.
	type entry struct{ pack, i uint32 }
	ents := make([]entry, 0, total)
	for pi, p := range packs {
		for i := 0; i < p.Index.Count(); i++ {
			ents = append(ents, entry{uint32(pi), uint32(i)})
		}
	}
	id := func(e entry) []byte {
		x := packs[e.pack].Index
		return x.ids[int(e.i)*hs : int(e.i+1)*hs]
	}
	slices.SortFunc(ents, func(a, b entry) int {
		if c := bytes.Compare(id(a), id(b)); c != 0 {
			return c
		}
		pa, pb := &packs[a.pack], &packs[b.pack]
		switch {
		case pa.Preferred != pb.Preferred:
			if pa.Preferred {
				return -1
			}
			return 1
		case pa.MTime.Unix() > pb.MTime.Unix():
			return -1
		case pa.MTime.Unix() < pb.MTime.Unix():
			return 1
		}
		return int(a.pack) - int(b.pack)
	})
	kept := ents[:0]
	for k, e := range ents {
		if k > 0 && bytes.Equal(id(e), id(ents[k-1])) {
			continue
		}
		kept = append(kept, e)
	}
	ents = kept
	large := false
	for _, e := range ents {
		if packs[e.pack].Index.Offset(int(e.i)) > maxSmallOffset {
			large = true
			break
		}
	}

	// PNAM: the names, each NUL-terminated, padded to 4 bytes.
	var pnam []byte
	for _, p := range packs {
		pnam = append(append(pnam, p.Name...), 0)
	}
	for len(pnam)%4 != 0 {
		pnam = append(pnam, 0)
	}
	nlarge := 0
	if large {
		for _, e := range ents {
			if packs[e.pack].Index.Offset(int(e.i)) > maxSmallOffset {
				nlarge++
			}
		}
	}
	type chunk struct {
		id   string
		size int
	}
	chunks := []chunk{{"PNAM", len(pnam)}, {"OIDF", fanoutSize}, {"OIDL", len(ents) * hs}, {"OOFF", len(ents) * 8}}
	if large {
		chunks = append(chunks, chunk{"LOFF", nlarge * 8})
	}
	// The pseudo-pack order, as sorted positions: the objects taken
	// from the preferred pack first, then by pack number and offset.
	var order []uint32
	if o.Reverse {
		order = make([]uint32, len(ents))
		for k := range order {
			order[k] = uint32(k)
		}
		slices.SortFunc(order, func(a, b uint32) int {
			ea, eb := ents[a], ents[b]
			if pa, pb := packs[ea.pack].Preferred, packs[eb.pack].Preferred; pa != pb {
				if pa {
					return -1
				}
				return 1
			}
			if ea.pack != eb.pack {
				return int(ea.pack) - int(eb.pack)
			}
			oa, ob := packs[ea.pack].Index.Offset(int(ea.i)), packs[eb.pack].Index.Offset(int(eb.i))
			switch {
			case oa < ob:
				return -1
			case oa > ob:
				return 1
			}
			return 0
		})
		chunks = append(chunks, chunk{"RIDX", len(order) * 4}, chunk{"BTMP", len(packs) * 8})
	}

	cw := newChecksumWriter(w, f)
	cw.write([]byte("MIDX"))
	cw.write([]byte{1, byte(f.FormatID()), byte(len(chunks)), 0})
	cw.be32(uint32(len(packs)))
	off := uint64(midxHeaderSize + (len(chunks)+1)*12)
	for _, c := range chunks {
		cw.write([]byte(c.id))
		cw.be64(off)
		off += uint64(c.size)
	}
	cw.be32(0)
	cw.be64(off)

	cw.write(pnam)
	k := 0
	for b := 0; b < 256; b++ {
		for k < len(ents) && int(id(ents[k])[0]) <= b {
			k++
		}
		cw.be32(uint32(k))
	}
	for _, e := range ents {
		cw.write(id(e))
	}
	var larges []uint64
	for _, e := range ents {
		o := packs[e.pack].Index.Offset(int(e.i))
		cw.be32(e.pack)
		if large && o > maxSmallOffset {
			cw.be32(largeOffsetFlag | uint32(len(larges)))
			larges = append(larges, o)
			continue
		}
		cw.be32(uint32(o))
	}
	for _, o := range larges {
		cw.be64(o)
	}
	if o.Reverse {
		for _, k := range order {
			cw.be32(k)
		}
		// Each pack's first position in the pseudo-pack order and its
		// number of objects there (0 and 0 for a pack none is taken
		// from, as C Git writes it).
		first := make([]uint32, len(packs))
		nr := make([]uint32, len(packs))
		for pos, k := range order {
			p := ents[k].pack
			if nr[p] == 0 {
				first[p] = uint32(pos)
			}
			nr[p]++
		}
		for i := range packs {
			cw.be32(first[i])
			cw.be32(nr[i])
		}
	}
	sum, err := cw.finish()
	if err != nil {
		return nil, fmt.Errorf("pack: write multi-pack-index: %w", err)
	}
	return sum, nil
}
