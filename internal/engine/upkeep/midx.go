package upkeep

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gotd/internal/git/pack"
	"gotd/internal/git/perm"
	"gotd/internal/git/repo"
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
// file, multi-pack-index.lock, renamed into place, and then removes the
// bitmap and reverse index of the multi-pack-index it replaced. It
// reports whether it wrote one. With fewer than two packs it changes
// nothing.
func updateMultiPackIndex(r *repo.Repo, own func(string)) (bool, error) {
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
	if m, err := pack.OpenMultiPackIndex(r.PackDir(), r.Format); err == nil {
		same := slices.Equal(m.PackNames(), names)
		m.Close()
		if same {
			return false, nil
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
	_, err = pack.WriteMultiPackIndex(bw, r.Format, mps)
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
	// The bitmap and reverse index of a multi-pack-index are named by
	// its checksum: those there belong to the one replaced.
	extra, _ := filepath.Glob(filepath.Join(r.PackDir(), "multi-pack-index-*"))
	for _, f := range extra {
		if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return true, fmt.Errorf("upkeep: %w", err)
		}
	}
	return true, r.Rescan()
}
