package upkeep

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"gotd/internal/engine/packer"
	"gotd/internal/git/bitmap"
	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/pack"
	"gotd/internal/git/perm"
	"gotd/internal/git/repo"
	"gotd/internal/git/walk"
)

// WritePack writes objs into a new pack in the repository's pack
// directory, with its .idx and .rev made from what the writer reports
// of each entry (no second pass over the pack). The .idx is renamed
// into place last: readers use a pack only once its index exists, so
// they never see half of one. It returns the new pack's path. On error
// no file it wrote is left behind. own, if not nil, is called with each
// file before it is renamed into place (see Options.Own).
func WritePack(ctx context.Context, r *repo.Repo, objs []packer.Object, opts packer.Options, own func(path string)) (string, error) {
	var tmps []string
	defer func() {
		for _, t := range tmps {
			os.Remove(t)
		}
	}()
	// write fills a new temporary file in the pack directory, makes it
	// durable and read-only, and returns its name.
	write := func(prefix string, fill func(io.Writer) error) (string, error) {
		f, err := os.CreateTemp(r.PackDir(), prefix)
		if err != nil {
			return "", err
		}
		tmps = append(tmps, f.Name())
		if err := fill(f); err != nil {
			f.Close()
			return "", err
		}
		if own != nil {
			own(f.Name())
		}
		return f.Name(), r.Shared.Seal(f)
	}
	entries := make([]pack.IndexEntry, 0, len(objs))
	opts.OnEntry = func(e pack.IndexEntry) { entries = append(entries, e) }
	var sum []byte
	packTmp, err := write("tmp_pack_", func(w io.Writer) (err error) {
		sum, err = packer.Write(ctx, w, r, objs, opts)
		return err
	})
	if err != nil {
		return "", err
	}
	idxTmp, err := write("tmp_idx_", func(w io.Writer) error {
		_, err := pack.WriteIndex(w, r.Format, entries, sum)
		return err
	})
	if err != nil {
		return "", err
	}
	revTmp, err := write("tmp_rev_", func(w io.Writer) error {
		_, err := pack.WriteRev(w, r.Format, entries, sum)
		return err
	})
	if err != nil {
		return "", err
	}
	base := filepath.Join(r.PackDir(), fmt.Sprintf("pack-%x", sum))
	for _, mv := range []struct{ from, to string }{
		{packTmp, base + ".pack"},
		{revTmp, base + ".rev"},
		{idxTmp, base + ".idx"},
	} {
		if err := os.Rename(mv.from, mv.to); err != nil {
			return "", err
		}
	}
	tmps = nil
	if err := perm.SyncDir(r.PackDir()); err != nil {
		return "", err
	}
	return base + ".pack", nil
}

// openedPack rescans the repository's packs and returns the one at path,
// just written.
func openedPack(r *repo.Repo, path string) (*pack.Pack, error) {
	if err := r.Rescan(); err != nil {
		return nil, err
	}
	for _, p := range r.Packs() {
		if p.Path() == path {
			return p, nil
		}
	}
	return nil, fmt.Errorf("new pack %s not found after writing it", path)
}

// writeBitmap writes the reachability bitmap of np, just written from
// objs, which hold every object reachable from tips in the order the
// walk listed them. Their types, name-hashes and commits are not walked
// for again.
func writeBitmap(ctx context.Context, r *repo.Repo, np *pack.Pack, objs []packer.Object, tips []oid.ID, own func(string)) error {
	known := &walk.Known{NameHashes: make([]uint32, np.Count())}
	for t := range known.Types {
		known.Types[t] = bitmap.New(np.Count())
	}
	for _, o := range objs {
		pos, ok := np.PackPos(o.ID)
		if !ok || o.Type < object.Commit || o.Type > object.Tag {
			return fmt.Errorf("build bitmaps: %v %v is not in the new pack", o.Type, o.ID)
		}
		known.Types[o.Type-object.Commit].Set(pos)
		known.NameHashes[pos] = o.NameHash
		if o.Type == object.Commit {
			// The walk listed the commits newest first.
			known.Commits = append(known.Commits, o.ID)
		}
	}
	reused, done := earlierBitmaps(r, walk.PackLookup(np))
	defer done()
	w := &walk.Walker{Store: r, Format: r.Format}
	bms, err := w.BuildBitmapsKnown(ctx, tips, np, known, reused)
	if err != nil {
		return fmt.Errorf("build bitmaps: %w", err)
	}
	return writeBitmapFile(r, np, bms, strings.TrimSuffix(np.Path(), ".pack")+".bitmap", own)
}

// writeBitmapFile writes bms, the bitmaps of pack (a pack or a
// multi-pack-index), to a temporary file of r's pack directory, given to
// own if not nil, sealed, and renamed to dst.
func writeBitmapFile(r *repo.Repo, pack bitmap.IndexLookup, bms *walk.Bitmaps, dst string, own func(string)) error {
	tmp, err := os.CreateTemp(r.PackDir(), "tmp_bitmap_")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	err = bitmap.Write(tmp, r.Format, &bitmap.WriteOptions{
		Pack:        pack,
		Types:       bms.Types,
		NameHashes:  bms.NameHashes,
		LookupTable: true,
		XORWindow:   10,
	}, bms.Entries)
	if err == nil {
		if own != nil {
			own(tmp.Name())
		}
		err = r.Shared.Seal(tmp)
	} else {
		tmp.Close()
	}
	if err != nil {
		return fmt.Errorf("write bitmap: %w", err)
	}
	return os.Rename(tmp.Name(), dst)
}

// earlierBitmaps returns the bitmaps of earlierBitmapIndex moved to
// the positions of to (a new pack or multi-pack-index), and a function
// that releases them; nil if no bitmap opens. Bitmaps that cannot be
// reused are built by walking, so any error here only costs time.
func earlierBitmaps(r *repo.Repo, to bitmap.IndexLookup) (*walk.Reused, func()) {
	x, done := earlierBitmapIndex(r)
	if x == nil {
		return nil, done
	}
	u, err := walk.NewReused(x, to)
	if err != nil {
		done()
		return nil, func() {}
	}
	return u, done
}

// earlierBitmapIndex opens the bitmap of a pack of the repository that
// has a .bitmap (the pack a repack replaces: there is at most one, as
// C Git and Repack leave them), or else that of the multi-pack-index,
// and returns it with a function that releases it; nil if none opens.
func earlierBitmapIndex(r *repo.Repo) (*bitmap.Index, func()) {
	for _, p := range r.Packs() {
		path := strings.TrimSuffix(p.Path(), ".pack") + ".bitmap"
		if _, err := os.Stat(path); err != nil {
			continue
		}
		if x, err := bitmap.Open(path, r.Format, walk.PackLookup(p)); err == nil {
			return x, func() { x.Close() }
		}
	}
	m, err := pack.OpenMultiPackIndex(r.PackDir(), r.Format)
	if err != nil {
		return nil, func() {}
	}
	x := openMidxBitmap(r, m)
	if x == nil {
		m.Close()
		return nil, func() {}
	}
	return x, func() { x.Close(); m.Close() }
}
