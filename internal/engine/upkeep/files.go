package upkeep

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gotd/internal/git/oid"
	"gotd/internal/git/pack"
	"gotd/internal/git/repo"
)

// loosen writes the object id of p as a loose object whose
// modification time is mtime.
func loosen(r *repo.Repo, p *pack.Pack, id oid.ID, mtime time.Time, own func(string)) error {
	t, data, err := p.ReadObject(id)
	if err != nil {
		return err
	}
	if _, err := r.Loose.WriteObject(t, data); err != nil {
		return err
	}
	path := loosePath(r, id)
	if own != nil {
		own(filepath.Dir(path))
		own(path)
	}
	return os.Chtimes(path, mtime, mtime)
}

// loosePath is the file of the loose object id.
func loosePath(r *repo.Repo, id oid.ID) string {
	h := id.String()
	return filepath.Join(r.Loose.Dir(), h[:2], h[2:])
}

// hasKeep reports whether p has a .keep file.
func hasKeep(p *pack.Pack) bool {
	_, err := os.Stat(strings.TrimSuffix(p.Path(), ".pack") + ".keep")
	return err == nil
}

// removePack removes the files of the pack at path. The .idx goes
// first so that readers stop choosing the pack before its data
// disappears; those that hold it open keep reading it.
func removePack(path string) error {
	base := strings.TrimSuffix(path, ".pack")
	for _, ext := range []string{".idx", ".pack", ".rev", ".bitmap", ".mtimes"} {
		if err := os.Remove(base + ext); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// removeOtherBitmaps removes the .bitmap of every pack but np and those
// kept by a .keep file: C Git uses one bitmap and warns about others.
func removeOtherBitmaps(r *repo.Repo, np *pack.Pack) error {
	bms, err := filepath.Glob(filepath.Join(r.PackDir(), "pack-*.bitmap"))
	if err != nil {
		return err
	}
	for _, bm := range bms {
		base := strings.TrimSuffix(bm, ".bitmap")
		if np != nil && base+".pack" == np.Path() {
			continue
		}
		if _, err := os.Stat(base + ".keep"); err == nil {
			continue
		}
		if err := os.Remove(bm); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("upkeep: %w", err)
		}
	}
	return nil
}

// dropStaleMultiPackIndex removes the multi-pack-index (and its bitmap
// and reverse index) if it names a pack that was removed: C Git refuses
// to use one that names missing packs.
func dropStaleMultiPackIndex(r *repo.Repo, removed []string) error {
	if len(removed) == 0 {
		return nil
	}
	m, err := pack.OpenMultiPackIndex(r.PackDir(), r.Format)
	if err != nil {
		return nil // none, or unusable: nothing names the removed packs
	}
	gone := make(map[string]bool, len(removed))
	for _, p := range removed {
		gone[strings.TrimSuffix(filepath.Base(p), ".pack")] = true
	}
	stale := false
	for _, name := range m.PackNames() {
		if gone[strings.TrimSuffix(name, ".idx")] {
			stale = true
		}
	}
	m.Close()
	if !stale {
		return nil
	}
	extra, _ := filepath.Glob(filepath.Join(r.PackDir(), "multi-pack-index-*"))
	for _, f := range append([]string{filepath.Join(r.PackDir(), "multi-pack-index")}, extra...) {
		if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("upkeep: %w", err)
		}
	}
	return nil
}

// updateInfoPacks rewrites objects/info/packs, the list of packs C
// Git's update-server-info keeps for clients of the dumb HTTP
// protocol, if the repository has one: it named the removed packs.
func updateInfoPacks(r *repo.Repo, own func(string)) error {
	path := filepath.Join(r.ObjectsDir(), "info", "packs")
	if _, err := os.Lstat(path); err != nil {
		return nil
	}
	names, err := filepath.Glob(filepath.Join(r.PackDir(), "pack-*.pack"))
	if err != nil {
		return fmt.Errorf("upkeep: %w", err)
	}
	var b strings.Builder
	for _, n := range names {
		if _, err := os.Stat(strings.TrimSuffix(n, ".pack") + ".idx"); err == nil {
			fmt.Fprintf(&b, "P %s\n", filepath.Base(n))
		}
	}
	b.WriteString("\n")
	tmp, err := os.CreateTemp(filepath.Dir(path), "tmp_packs_")
	if err != nil {
		return fmt.Errorf("upkeep: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(b.String()); err != nil {
		tmp.Close()
		return fmt.Errorf("upkeep: %w", err)
	}
	if own != nil {
		own(tmp.Name())
	}
	if err := r.Shared.Seal(tmp); err != nil {
		return fmt.Errorf("upkeep: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("upkeep: %w", err)
	}
	return nil
}

// removeEmptyFanout removes the loose objects' fan-out directories left
// empty, as C Git's prune does; one that is not empty stays.
func removeEmptyFanout(dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if n := e.Name(); len(n) == 2 && e.IsDir() && isHex(n) {
			os.Remove(filepath.Join(dir, n)) // fails unless empty
		}
	}
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// RemoveLonelyIndexes removes, unless dryRun, the pack indexes (.idx,
// with the pack's .rev and .bitmap) whose .pack is missing, and
// returns their paths. A pack is installed data first and removed
// index first, so an index without its pack is always left over.
func RemoveLonelyIndexes(r *repo.Repo, dryRun bool) ([]string, error) {
	idxs, err := filepath.Glob(filepath.Join(r.PackDir(), "pack-*.idx"))
	if err != nil {
		return nil, fmt.Errorf("upkeep: %w", err)
	}
	var lonely []string
	for _, idx := range idxs {
		base := strings.TrimSuffix(idx, ".idx")
		if _, err := os.Lstat(base + ".pack"); !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		lonely = append(lonely, idx)
		if dryRun {
			continue
		}
		for _, ext := range []string{".idx", ".rev", ".bitmap"} {
			if err := os.Remove(base + ext); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return lonely, fmt.Errorf("upkeep: %w", err)
			}
		}
	}
	return lonely, nil
}
