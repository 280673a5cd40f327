package upkeep

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gotd/internal/git/bitmap"
	"gotd/internal/git/commitgraph"
	"gotd/internal/git/object"
	"gotd/internal/git/pack"
	"gotd/internal/git/perm"
	"gotd/internal/git/repo"
	"gotd/internal/git/walk"
)

// ErrMidxLocked is wrapped by the error of a run that could not write
// the multi-pack-index because another writer (C Git's
// multi-pack-index write) holds its lock file.
var ErrMidxLocked = errors.New("upkeep: multi-pack-index.lock exists")

// updateMultiPackIndex writes objects/pack/multi-pack-index over every
// pack, the one with the most objects preferred, when there are several
// and the one there (if any) does not name exactly them, as C Git's
// repack --geometric --write-midx keeps one: a lookup then costs one
// search whatever the number of packs. It writes under C Git's lock
// file, multi-pack-index.lock, renamed into place, with the reverse
// index a bitmap needs, then its reachability bitmap (writeMidxBitmap;
// also for one left as it was that has none), and then removes the
// bitmap and reverse index of the multi-pack-index it replaced. It
// reports whether it wrote one. With fewer than two packs it changes
// nothing.
func updateMultiPackIndex(ctx context.Context, r *repo.Repo, own func(string)) (bool, error) {
	if err := r.Rescan(); err != nil {
		return false, fmt.Errorf("upkeep: %w", err)
	}
	packs := r.Packs()
	if len(packs) < 2 {
		return false, nil
	}
	names := make([]string, 0, len(packs))
	for _, p := range packs {
		names = append(names, strings.TrimSuffix(filepath.Base(p.Path()), ".pack")+".idx")
	}
	slices.Sort(names)
	// The one there: left as it is if it names these packs, else its
	// bitmap, if any, lends the new one the bitmaps of the commits it
	// has (it stays mapped after the rename).
	var old *bitmap.Index
	if m, err := pack.OpenMultiPackIndex(r.PackDir(), r.Format); err == nil {
		defer m.Close()
		// One without a reverse index (written before they were) is
		// written again, with one.
		if slices.Equal(m.PackNames(), names) && m.HasReverse() {
			if _, err := os.Stat(midxBitmapPath(r, m.Checksum())); err == nil {
				return false, nil
			}
			x, done := earlierBitmapIndex(r)
			defer done()
			return false, writeMidxBitmap(ctx, r, m, x, own)
		}
		if old = openMidxBitmap(r, m); old != nil {
			defer old.Close()
		}
	}

	var mps []pack.MidxPack
	preferred, most := -1, -1
	for i, p := range packs {
		st, err := os.Stat(p.Path())
		if err != nil {
			return false, fmt.Errorf("upkeep: %w", err)
		}
		if p.Count() > most {
			preferred, most = i, p.Count()
		}
		mps = append(mps, pack.MidxPack{
			Name:  strings.TrimSuffix(filepath.Base(p.Path()), ".pack") + ".idx",
			Index: p.Index(),
			MTime: st.ModTime(),
		})
	}
	mps[preferred].Preferred = true

	path := filepath.Join(r.PackDir(), "multi-pack-index")
	lockPath := path + ".lock"
	lock, err := os.OpenFile(lockPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return false, ErrMidxLocked
	}
	if err != nil {
		return false, fmt.Errorf("upkeep: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			os.Remove(lockPath)
		}
	}()
	bw := bufio.NewWriterSize(lock, 64<<10)
	_, err = pack.WriteMultiPackIndexWith(bw, r.Format, mps, pack.MidxOptions{Reverse: true})
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		lock.Close()
		return false, fmt.Errorf("upkeep: %w", err)
	}
	if own != nil {
		own(lockPath)
	}
	if err := r.Shared.Seal(lock); err != nil {
		return false, fmt.Errorf("upkeep: %w", err)
	}
	if err := os.Rename(lockPath, path); err != nil {
		return false, fmt.Errorf("upkeep: %w", err)
	}
	committed = true
	if err := perm.SyncDir(r.PackDir()); err != nil {
		return true, fmt.Errorf("upkeep: %w", err)
	}
	if err := r.Rescan(); err != nil {
		return true, fmt.Errorf("upkeep: %w", err)
	}
	m, err := pack.OpenMultiPackIndex(r.PackDir(), r.Format)
	if err != nil {
		return true, fmt.Errorf("upkeep: %w", err)
	}
	defer m.Close()
	var errs []error
	if old == nil {
		// The first over these packs: the largest may have had a
		// bitmap of its own.
		var done func()
		old, done = earlierBitmapIndex(r)
		defer done()
	}
	if err := writeMidxBitmap(ctx, r, m, old, own); err != nil {
		errs = append(errs, err)
	}
	// The bitmap and reverse index of a multi-pack-index are named by
	// its checksum: others there belong to the one replaced.
	keep := midxBitmapPath(r, m.Checksum())
	extra, _ := filepath.Glob(filepath.Join(r.PackDir(), "multi-pack-index-*"))
	for _, f := range extra {
		if f == keep {
			continue
		}
		if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("upkeep: %w", err))
		}
	}
	return true, errors.Join(errs...)
}

// midxBitmapPath is where the bitmap of the multi-pack-index whose
// checksum is sum lives.
func midxBitmapPath(r *repo.Repo, sum []byte) string {
	return filepath.Join(r.PackDir(), "multi-pack-index-"+hex.EncodeToString(sum)+".bitmap")
}

// openMidxBitmap opens the bitmap of m, or returns nil when it has none
// that opens.
func openMidxBitmap(r *repo.Repo, m *pack.MultiPackIndex) *bitmap.Index {
	lk, err := walk.MidxLookup(m)
	if err != nil {
		return nil
	}
	x, err := bitmap.Open(midxBitmapPath(r, m.Checksum()), r.Format, lk)
	if err != nil {
		return nil
	}
	return x
}

// writeMidxBitmap writes the reachability bitmap of m, the repository's
// multi-pack-index, when m has a reverse index and holds every object
// the references reach (else it writes nothing: a push may have added
// a pack since). The bitmaps, types and name-hashes of from (an
// earlier bitmap, of a pack or multi-pack-index; nil if none) are
// taken for the objects it has: only the commits since are walked,
// and the other objects' types read from the packs, so that a run
// costs what the pushes added, not what the repository holds. Then
// the packs' own bitmaps go (but those of .keep packs), as C Git's
// repack --write-midx --write-bitmap-index leaves one bitmap.
func writeMidxBitmap(ctx context.Context, r *repo.Repo, m *pack.MultiPackIndex, from *bitmap.Index, own func(string)) error {
	lk, err := walk.MidxLookup(m)
	if err != nil {
		return nil
	}
	tips, err := refTips(r)
	if err != nil || len(tips) == 0 {
		return err
	}
	n := m.Count()
	known := &walk.Known{NameHashes: make([]uint32, n), FillHashes: true}
	for t := range known.Types {
		known.Types[t] = bitmap.New(n)
	}
	typed := bitmap.New(n)
	var earlier *walk.Reused
	if from != nil {
		for pos := range from.Count() {
			id, err := from.IDAtPackPos(pos)
			if err != nil {
				break // only costs reading the types from the packs
			}
			np, ok := lk.PackPos(id)
			t := from.TypeAt(pos)
			if !ok || t < object.Commit || t > object.Tag {
				continue
			}
			known.Types[t-object.Commit].Set(np)
			typed.Set(np)
			if h, ok := from.NameHashAtPackPos(pos); ok {
				known.NameHashes[np] = h
			}
		}
		if earlier, err = walk.NewReused(from, lk); err != nil {
			earlier = nil // only costs the walks it would have saved
		}
	}
	for pos := range n {
		if typed.Has(pos) {
			continue
		}
		i, err := lk.IndexAtPackPos(pos)
		if err != nil {
			return fmt.Errorf("upkeep: multi-pack bitmap: %w", err)
		}
		t, _, err := r.StatObject(m.ID(i))
		if err != nil {
			return fmt.Errorf("upkeep: multi-pack bitmap: %w", err)
		}
		if t < object.Commit || t > object.Tag {
			return fmt.Errorf("upkeep: multi-pack bitmap: %v has type %v", m.ID(i), t)
		}
		known.Types[t-object.Commit].Set(pos)
	}
	w := &walk.Walker{Store: r, Format: r.Format}
	if g, err := commitgraph.Open(r.ObjectsDir(), r.Format); err == nil {
		w.Graph = g
		defer g.Close()
	}
	bms, err := w.BuildBitmapsKnown(ctx, tips, lk, known, earlier)
	if errors.Is(err, walk.ErrNotInPack) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("upkeep: multi-pack bitmap: %w", err)
	}
	if err := writeBitmapFile(r, lk, bms, midxBitmapPath(r, m.Checksum()), own); err != nil {
		return fmt.Errorf("upkeep: multi-pack bitmap: %w", err)
	}
	return removeOtherBitmaps(r, nil)
}
