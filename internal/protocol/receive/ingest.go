package receive

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"slices"
	"strings"

	"gotd/internal/engine/indexer"
	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/pack"
	"gotd/internal/git/refs"
	"gotd/internal/git/repo"
	"gotd/internal/git/walk"
	"gotd/internal/protocol/wire"
)

// Ingest takes a pack from elsewhere than a push into a repository as
// a push's pack is taken (a bundle's, an upstream's): into a quarantine
// directory, thin packs completed from the repository, every object
// checked; then the tips the references will take must be in the pack
// or the repository, commits for branches, with everything they reach;
// only then is the pack installed. On any error nothing is installed and
// the quarantine is removed.
type Ingest struct {
	Repo   *repo.Repo
	Limits wire.Limits
	Fsck   *object.Checker // nil: C Git's defaults
	// Progress, if set, is called as the indexer advances.
	Progress func(stage string, done, total uint32)
	// Begin, if set, is PackOptions.Begin: told the object count the
	// pack declares before it is read.
	Begin func(count uint32)
	// BeforeInstall, if set, is given the pack's files before they are
	// moved into place (to give them to the repository's owner).
	BeforeInstall func(files []string) error
	// MinFree, if positive, is the free space the pack must leave on
	// the repository's file system, as PackOptions.MinFree: an
	// upstream cannot fill the disk the repositories share.
	MinFree int64
}

// Tip is a reference's value to be: Name decides whether it must be a
// commit (a branch).
type Tip struct {
	Name string
	ID   oid.ID
}

// Take reads a pack from r and installs it as Ingest says, and returns
// the installed pack's path ("" for a pack without objects).
func (in *Ingest) Take(ctx context.Context, r io.Reader, tips []Tip) (string, error) {
	dir, hold, err := NewQuarantine(in.Repo.ObjectsDir())
	if err != nil {
		return "", err
	}
	defer func() {
		os.RemoveAll(dir)
		hold.Close()
	}()
	res, err := in.Index(ctx, r, dir, tips)
	if err != nil {
		return "", err
	}
	return in.install(res)
}

// Index is Take's first half, for a process that may write only in the
// quarantine directory dir (a mirror's fetch process): it reads the
// pack from r into dir and checks the tips against it and the
// repository, and installs nothing. On error nothing it wrote is left
// in dir.
func (in *Ingest) Index(ctx context.Context, r io.Reader, dir string, tips []Tip) (*indexer.Result, error) {
	res, _, err := in.IndexClosed(ctx, r, dir, tips)
	return res, err
}

// IndexClosed is Index, and also reports whether the pack is closed:
// it holds every tip and every object its objects name, so its check
// relied on no object of the repository, and no cleanup of the
// repository can have undone it since. The process that called it may
// then install the pack with InstallChecked instead of Install, under
// the prune lock all the same (an installed pack is unreachable until
// the references move). Without tips there is nothing to check (a
// process whose Install will, or deletions only): the pack is indexed
// and not found closed.
func (in *Ingest) IndexClosed(ctx context.Context, r io.Reader, dir string, tips []Tip) (*indexer.Result, bool, error) {
	rp := in.Repo
	var cl *closure
	if len(tips) > 0 {
		cl = newClosure(rp.Format)
	}
	res, err := IndexPack(ctx, r, dir, PackOptions{
		Format:     rp.Format,
		Bases:      rp,
		Limits:     in.Limits,
		Fsck:       in.Fsck,
		Progress:   in.Progress,
		Begin:      in.Begin,
		ObjectsDir: rp.ObjectsDir(),
		Shared:     rp.Shared,
		MinFree:    in.MinFree,
		closure:    cl,
	})
	if err != nil {
		return nil, false, err
	}
	if res.Count >= releaseAfter {
		// The indexer's tables are garbage now: their memory goes
		// back to the system before the pack's index is mapped and
		// read whole, rather than stay in the process's resident set
		// beside it (gotadmin clone of git.git: the peak went from
		// 81 MB of heap plus 21 of mapped files to the heap alone).
		debug.FreeOSMemory()
	}
	if len(tips) == 0 {
		return res, false, nil
	}
	if res.ThinBases > 0 {
		// Completed from the repository: its bases were not checked.
		cl = nil
	}
	closed, err := in.connected(ctx, res.PackPath, res.Count, tips, cl)
	if err != nil {
		return nil, false, err
	}
	return res, closed, nil
}

// Install is Take's second half: it checks the tips against the pack
// Index left in a quarantine directory and the repository again (the
// process that indexed it may be less trusted than the caller), then
// installs the pack and returns its path ("" for a pack without
// objects, which is left where it is). The caller removes the
// quarantine directory.
func (in *Ingest) Install(ctx context.Context, res *indexer.Result, tips []Tip) (string, error) {
	if _, err := in.connected(ctx, res.PackPath, res.Count, tips, nil); err != nil {
		return "", err
	}
	return in.install(res)
}

// InstallChecked is Install for the process that called Index itself,
// whose check of the tips it need not repeat.
func (in *Ingest) InstallChecked(res *indexer.Result) (string, error) {
	return in.install(res)
}

// install installs the pack Index left in a quarantine directory.
func (in *Ingest) install(res *indexer.Result) (string, error) {
	if res.Count == 0 {
		return "", nil
	}
	if in.BeforeInstall != nil {
		if err := in.BeforeInstall([]string{res.PackPath, res.RevPath, res.IndexPath}); err != nil {
			return "", err
		}
	}
	path, err := installPack(res, in.Repo.PackDir())
	if err != nil {
		return "", err
	}
	return path, in.Repo.Rescan()
}

// releaseAfter is the object count of a pack from which IndexClosed
// returns the indexer's memory to the system once it is done: a forced
// collection, which a small pack's few megabytes are not worth.
const releaseAfter = 1 << 16

// releaseEvery is how many objects connected's walk lists between two
// releases of the pack's pages.
const releaseEvery = 1 << 14

// connected checks the tips against the quarantined pack and the
// repository. With cl, what the pack's objects name, a pack that holds
// all of it and every tip is not walked: each object it holds reaches
// only objects it holds, and closed is true.
func (in *Ingest) connected(ctx context.Context, packPath string, count uint32, tips []Tip, cl *closure) (closed bool, err error) {
	rp := in.Repo
	store := overlay{repo: rp}
	if count > 0 {
		p, err := pack.Open(packPath, rp.Format, pack.Options{MaxObjectSize: in.Limits.MaxObjectSize, Cache: pack.NewDeltaCache(16 << 20)})
		if err != nil {
			return false, fmt.Errorf("receive: open the pack: %w", err)
		}
		defer p.Close()
		store.pack = p
	}
	var wants []oid.ID
	for _, tip := range tips {
		if tip.ID.IsNull() {
			continue // a deletion
		}
		t, _, err := store.StatObject(tip.ID)
		if err != nil {
			return false, fmt.Errorf("%s: object %s: %w", tip.Name, tip.ID, err)
		}
		if strings.HasPrefix(tip.Name, "refs/heads/") && t != object.Commit {
			return false, fmt.Errorf("%s: object %s is a %s, not a commit", tip.Name, tip.ID, t)
		}
		wants = append(wants, tip.ID)
	}
	if store.pack != nil && !slices.ContainsFunc(wants, func(id oid.ID) bool { return !store.pack.HasObject(id) }) {
		// Every tip in the pack: if the pack holds what its objects
		// name, they reach nothing else. The process that indexed it
		// knows (cl); another reads it in pack order to find out,
		// which stops at the first object that names one outside, the
		// first commit of most pushes and syncs. For session_write's
		// check of git.git's initial mirror, that read took 5.6 s and
		// 69 MB where the walk below took 11.6 s and 103 MB.
		if cl != nil {
			if cl.within(store.pack) {
				return true, nil
			}
		} else if ok, err := selfContained(ctx, store.pack); err != nil {
			return false, fmt.Errorf("the pack is incomplete: %w", err)
		} else if ok {
			return true, nil
		}
	}
	var haves []oid.ID
	rp.Refs.List("refs/", func(ref refs.Ref) error {
		// An annotated tag's peeled value, where packed-refs gives
		// it, spares the walk reading the tag to find what it marks
		// as had: git.git's ~1,000 tags cost a push 11.5 ms of its 50.
		// A want that reaches the tag itself still finds it in the
		// repository.
		id := ref.ID
		if ref.Peeled.Valid() {
			id = ref.Peeled
		}
		if ref.Target == "" && rp.HasObject(id) {
			haves = append(haves, id)
		}
		return nil
	})
	w := &walk.Walker{Store: store, Format: rp.Format}
	visit := func(oid.ID, object.Type, []byte) error { return nil }
	if store.pack != nil {
		// The walk reads the pack's commits and trees all over it:
		// the pages it read leave the resident set now and then, or
		// by the end the whole pack counts in this process's memory
		// (session_write syncing git.git: 303 MB).
		n := 0
		visit = func(oid.ID, object.Type, []byte) error {
			if n++; n%releaseEvery == 0 {
				return store.pack.ReleasePages()
			}
			return nil
		}
	}
	if err := w.Objects(ctx, wants, haves, visit); err != nil {
		return false, fmt.Errorf("the pack is incomplete: %w", err)
	}
	return false, nil
}
