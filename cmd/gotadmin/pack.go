package main

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
	"gotd/internal/git/refs"
	"gotd/internal/git/repo"
	"gotd/internal/git/walk"
)

// cmdPack packs objects: gotadmin pack [-a] [-q] [-r repository-path].
// Without -a it packs the loose objects into a new pack. With -a it
// writes every object reachable from the references into one pack with
// a reachability bitmap, then removes the packs and loose objects the
// new pack makes redundant.
func cmdPack(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("pack")
	all := fs.Bool("a", false, "pack all reachable objects into one pack, with a bitmap")
	quiet := fs.Bool("q", false, "suppress progress output")
	rflag := fs.String("r", "", "repository path")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return errUsage
	}
	r, err := openRepo(*rflag)
	if err != nil {
		return err
	}
	defer r.Close()

	progress := func(stage string, done, total int) {}
	if !*quiet {
		progress = func(stage string, done, total int) {
			if done == total {
				fmt.Fprintf(os.Stderr, "\r%s: 100%% (%d/%d), done.\n", stage, done, total)
			} else if total > 0 && done%1000 == 0 {
				fmt.Fprintf(os.Stderr, "\r%s: %3d%% (%d/%d)", stage, done*100/total, done, total)
			}
		}
	}

	oldPacks := r.Packs()
	var objs []packer.Object
	if *all {
		objs, err = reachableObjects(ctx, r)
	} else {
		objs, err = looseObjects(r)
	}
	if err != nil {
		return err
	}
	if !*all && len(objs) == 0 {
		fmt.Fprintln(stdout, "no loose objects to pack")
		return nil
	}
	packPath, err := writePack(ctx, r, objs, packer.Options{
		Format:      r.Format,
		OfsDelta:    true,
		ReuseDeltas: true,
		Progress:    progress,
	})
	if err != nil {
		return err
	}
	if *all {
		np, err := openedPack(r, packPath)
		if err != nil {
			return err
		}
		if err := writeBitmap(ctx, r, np); err != nil {
			return err
		}
		if err := pruneRedundant(r, np, oldPacks); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "wrote %s (%d objects)\n", filepath.Base(packPath), len(objs))
	return nil
}

// reachableObjects lists every object reachable from HEAD and the
// references, in the order the walk finds them.
func reachableObjects(ctx context.Context, r *repo.Repo) ([]packer.Object, error) {
	tips, err := refTips(r)
	if err != nil {
		return nil, err
	}
	w := &walk.Walker{Store: r, Format: r.Format}
	var objs []packer.Object
	err = w.Objects(ctx, tips, nil, func(id oid.ID, t object.Type, path []byte) error {
		objs = append(objs, packer.Object{ID: id, Type: t, NameHash: packer.NameHash(path)})
		return nil
	})
	return objs, err
}

// refTips returns the distinct ids HEAD and the references point at.
func refTips(r *repo.Repo) ([]oid.ID, error) {
	var tips []oid.ID
	seen := make(map[oid.ID]bool)
	add := func(id oid.ID) {
		if !seen[id] {
			seen[id] = true
			tips = append(tips, id)
		}
	}
	if head, err := r.Refs.Resolve("HEAD"); err == nil {
		add(head.ID)
	}
	err := r.Refs.List("refs/", func(ref refs.Ref) error {
		add(ref.ID)
		return nil
	})
	return tips, err
}

// looseObjects lists the loose objects, whatever reaches them.
func looseObjects(r *repo.Repo) ([]packer.Object, error) {
	var objs []packer.Object
	err := r.Loose.ForEach(func(id oid.ID) error {
		t, _, err := r.Loose.StatObject(id)
		if err != nil {
			return err
		}
		objs = append(objs, packer.Object{ID: id, Type: t})
		return nil
	})
	return objs, err
}

// writePack writes objs into a new pack in the repository's pack
// directory, with its .idx and .rev made from what the writer reports
// of each entry (no second pass over the pack). The .idx is renamed
// into place last: readers use a pack only once its index exists, so
// they never see half of one.
func writePack(ctx context.Context, r *repo.Repo, objs []packer.Object, opts packer.Options) (string, error) {
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
		return f.Name(), finish(f, r.Shared)
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
	if err := syncDir(r.PackDir()); err != nil {
		return "", err
	}
	return base + ".pack", nil
}

// finish makes a written file durable and read-only, with the
// repository's permissions, and closes it.
func finish(f *os.File, sh perm.Shared) error {
	err := f.Sync()
	if err == nil {
		err = sh.Chmod(f, 0o444)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// pruneRedundant removes the packs that existed before the new pack was
// written and whose every object the new pack holds, and the loose
// objects it holds. Packs that arrived meanwhile (a push) are kept.
func pruneRedundant(r *repo.Repo, np *pack.Pack, old []*pack.Pack) error {
	for _, p := range old {
		if p.Path() == np.Path() {
			continue
		}
		idx := p.Index()
		redundant := true
		for i := 0; i < idx.Count() && redundant; i++ {
			redundant = np.HasObject(idx.ID(i))
		}
		if !redundant {
			continue
		}
		base := strings.TrimSuffix(p.Path(), ".pack")
		if _, err := os.Stat(base + ".keep"); err == nil {
			continue
		}
		// The .idx goes first so that readers stop using the pack before
		// its data disappears.
		for _, ext := range []string{".idx", ".pack", ".rev", ".bitmap"} {
			if err := os.Remove(base + ext); err != nil && !os.IsNotExist(err) {
				return err
			}
		}
	}
	var packed []oid.ID
	err := r.Loose.ForEach(func(id oid.ID) error {
		if np.HasObject(id) {
			packed = append(packed, id)
		}
		return nil
	})
	for _, id := range packed {
		if err == nil {
			err = r.Loose.Remove(id)
		}
	}
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
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

// writeBitmap writes the reachability bitmap of np, just written, which
// holds every object reachable from the references.
func writeBitmap(ctx context.Context, r *repo.Repo, np *pack.Pack) error {
	tips, err := refTips(r)
	if err != nil {
		return err
	}
	w := &walk.Walker{Store: r, Format: r.Format}
	bms, err := w.BuildBitmaps(ctx, tips, np)
	if err != nil {
		return fmt.Errorf("build bitmaps: %w", err)
	}
	tmp, err := os.CreateTemp(r.PackDir(), "tmp_bitmap_")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	err = bitmap.Write(tmp, r.Format, &bitmap.WriteOptions{
		Pack:        np,
		Types:       bms.Types,
		NameHashes:  bms.NameHashes,
		LookupTable: true,
		XORWindow:   10,
	}, bms.Entries)
	if err == nil {
		err = finish(tmp, r.Shared)
	} else {
		tmp.Close()
	}
	if err != nil {
		return fmt.Errorf("write bitmap: %w", err)
	}
	return os.Rename(tmp.Name(), strings.TrimSuffix(np.Path(), ".pack")+".bitmap")
}
