package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"gotd/internal/engine/indexer"
	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/pack"
	"gotd/internal/git/perm"
	"gotd/internal/git/repo"
)

// cmdIndexPack writes the .idx of a pack file: gotadmin indexpack
// packfile-path. Every object is verified (hashes, deltas, and the same
// object checks a push gets).
func cmdIndexPack(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("indexpack")
	algo := fs.String("A", "", "object format (default: the enclosing repository's, else sha1)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errUsage
	}
	path := fs.Arg(0)
	if !strings.HasSuffix(path, ".pack") {
		return fmt.Errorf("%s: pack file names end in .pack", path)
	}
	format, err := packFormat(path, *algo, false)
	if err != nil {
		return err
	}
	res, err := indexer.IndexFile(ctx, path, indexer.Options{
		Format:   format,
		Check:    checkObject(format),
		WriteRev: true,
		Shared:   perm.Private(),
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%x\n", res.Checksum)
	return nil
}

// checkObject returns the validation run on every indexed object.
func checkObject(f oid.Format) func(object.Type, oid.ID, []byte) error {
	return func(t object.Type, id oid.ID, data []byte) error {
		if err := object.Check(f, t, data); err != nil {
			return fmt.Errorf("%s %s: %w", t, id, err)
		}
		return nil
	}
}

// packFormat decides the object format of a pack file: the -A argument
// if given, else what its .idx's size says (useIdx), else the format of
// the repository the pack sits in, else SHA-1.
func packFormat(packPath, algo string, useIdx bool) (oid.Format, error) {
	if algo != "" {
		return oid.ParseFormat(algo)
	}
	if useIdx {
		if f, ok := idxFormat(strings.TrimSuffix(packPath, ".pack") + ".idx"); ok {
			return f, nil
		}
	}
	dir, err := filepath.Abs(filepath.Dir(packPath))
	if err != nil {
		return 0, err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if r, err := repo.Open(d, repo.Options{}); err == nil {
			f := r.Format
			r.Close()
			return f, nil
		} else if !errors.Is(err, repo.ErrNotRepository) {
			return 0, err
		}
		if d == filepath.Dir(d) {
			return oid.SHA1, nil
		}
	}
}

// idxFormat infers the hash size of a version 2 .idx from its length:
// 8 bytes of header, 1024 of fan-out, per object an id, a CRC and an
// offset, 8 bytes per large offset, and two trailing ids.
func idxFormat(path string) (oid.Format, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, false
	}
	var fanout [4]byte
	if _, err := f.ReadAt(fanout[:], 8+255*4); err != nil {
		return 0, false
	}
	n := int64(binary.BigEndian.Uint32(fanout[:]))
	for _, format := range []oid.Format{oid.SHA1, oid.SHA256} {
		hs := int64(format.Size())
		rest := st.Size() - 8 - 1024 - n*(hs+8) - 2*hs
		if rest >= 0 && rest%8 == 0 && rest/8 <= n {
			return format, true
		}
	}
	return 0, false
}

// cmdListPack lists the objects of a pack file in pack order:
// gotadmin listpack [-hs] packfile-path.
func cmdListPack(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("listpack")
	human := fs.Bool("h", false, "show sizes in human-readable units")
	statsOnly := fs.Bool("s", false, "show statistics only")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errUsage
	}
	path := fs.Arg(0)
	if !strings.HasSuffix(path, ".pack") {
		path = strings.TrimSuffix(path, ".idx") + ".pack"
	}
	format, err := packFormat(path, "", true)
	if err != nil {
		return err
	}
	p, err := pack.Open(path, format, pack.Options{})
	if err != nil {
		return err
	}
	defer p.Close()

	size := func(n uint64) string {
		if *human {
			return humanSize(int64(n))
		}
		return fmt.Sprint(n)
	}
	var (
		byType   [8]int
		stored   [8]uint64
		maxChain int
	)
	depth := make(map[uint64]int) // offset → delta depth, for ofs-deltas
	for pos := 0; pos < p.Count(); pos++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		off := p.OffsetAtPackPos(pos)
		e, err := p.Entry(off)
		if err != nil {
			return err
		}
		id, err := p.IDAtPackPos(pos)
		if err != nil {
			return err
		}
		byType[e.Type]++
		stored[e.Type] += e.End - e.Offset
		d := 0
		switch e.Type {
		case object.OfsDelta:
			d = depth[e.BaseOffset] + 1
		case object.RefDelta:
			if boff, ok := p.OffsetOf(e.BaseID); ok {
				d = depth[boff] + 1
			} else {
				d = 1
			}
		}
		if d > 0 {
			depth[off] = d
		}
		maxChain = max(maxChain, d)
		if *statsOnly {
			continue
		}
		switch e.Type {
		case object.OfsDelta:
			base, _ := p.IDAt(e.BaseOffset)
			fmt.Fprintf(stdout, "%s %s at %d size %s base %s\n", id, e.Type, off, size(e.End-e.Offset), base)
		case object.RefDelta:
			fmt.Fprintf(stdout, "%s %s at %d size %s base %s\n", id, e.Type, off, size(e.End-e.Offset), e.BaseID)
		default:
			fmt.Fprintf(stdout, "%s %s at %d size %s\n", id, e.Type, off, size(e.End-e.Offset))
		}
	}
	if !*statsOnly {
		return nil
	}
	fmt.Fprintf(stdout, "objects: %d\n", p.Count())
	for _, t := range []object.Type{object.Commit, object.Tree, object.Blob, object.Tag, object.OfsDelta, object.RefDelta} {
		fmt.Fprintf(stdout, "%s: %d (%s)\n", t, byType[t], size(stored[t]))
	}
	fmt.Fprintf(stdout, "max delta chain: %d\n", maxChain)
	fmt.Fprintf(stdout, "pack size: %s\n", size(uint64(p.Size())))
	fmt.Fprintf(stdout, "checksum: %x\n", p.Checksum())
	return nil
}
