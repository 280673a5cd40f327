// Package upkeep keeps a repository's storage tidy: it packs loose
// objects, repacks everything reachable into one pack with a
// reachability bitmap, and removes what that makes redundant and what
// nothing can reach any more (Repack, which gotadmin pack and cleanup
// call), or rolls the small packs and the loose objects into one and
// leaves the large packs alone (Geometric, which the daemon's upkeep
// runs after pushes).
//
// Everything here is safe while other processes serve the repository:
// a new pack is complete, index and all, before anything is removed;
// a pack is removed index first, so readers stop choosing it before its
// data goes, and readers holding it open keep reading it; packs and
// loose objects that appear while upkeep runs (a push) are never
// removed.
//
// An object is removed only when it is unreachable from every
// reference, every reflog entry younger than the reflog expiry and
// every push in flight (objects in objects/incoming-* directories), and
// older than a grace period, unless the caller asks for all unreachable
// objects to go (Options.All). Unreachable objects still in their grace
// period that sat in a pack about to be removed are written out loose
// with the pack's modification time, so that they age from when they
// arrived, as C Git's repack -A does.
package upkeep

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"gotd/internal/engine/packer"
	"gotd/internal/git/commitgraph"
	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/pack"
	"gotd/internal/git/refs"
	"gotd/internal/git/repo"
	"gotd/internal/git/walk"
)

// DefaultGrace is how long an unreachable object is kept after it was
// last written: two weeks, as C Git's gc.pruneExpire.
const DefaultGrace = 14 * 24 * time.Hour

// DefaultReflogExpiry is the age past which a reflog entry no longer
// keeps objects: 90 days, as C Git's gc.reflogExpire.
const DefaultReflogExpiry = 90 * 24 * time.Hour

// DefaultSettle bounds how long Repack waits, before removing
// anything, for pushes in flight to finish.
const DefaultSettle = 30 * time.Second

// ErrPrecious is returned by Repack asked to prune a repository whose
// config sets extensions.preciousObjects: no object may be removed from
// it.
var ErrPrecious = errors.New("upkeep: the repository's objects are precious (extensions.preciousObjects)")

// ErrRunning is returned by Repack when another Repack holds the
// repository's upkeep lock.
var ErrRunning = errors.New("upkeep: another cleanup or repack of the repository is running")

// LockFile is the file, in the repository directory, whose flock(2)
// lets one Repack at a time change a repository. It is left in place,
// empty.
const LockFile = "gotd-upkeep.lock"

// ErrBusy is wrapped by Repack's error when pushes kept arriving and
// moving references while it tried to settle: nothing was removed.
var ErrBusy = errors.New("upkeep: the repository kept changing")

// Options tune Repack. The zero value repacks, removes redundant packs
// and packed loose objects, and drops unreachable packed objects older
// than DefaultGrace.
type Options struct {
	// PruneLoose also removes unreachable loose objects past the grace
	// period (gotadmin cleanup). Without it they stay (gotadmin pack -a).
	PruneLoose bool
	// All removes unreachable objects whatever their age: the way to
	// purge an object that leaked. It implies PruneLoose.
	All bool
	// DryRun computes what would be written and removed and changes
	// nothing.
	DryRun bool
	// Grace is how long unreachable objects are kept (0: DefaultGrace).
	Grace time.Duration
	// ReflogExpiry is the age past which reflog entries keep nothing
	// (0: DefaultReflogExpiry; negative: every entry keeps its objects).
	ReflogExpiry time.Duration
	// Settle bounds the wait for pushes in flight before removal
	// (0: DefaultSettle).
	Settle time.Duration
	// Now is the time ages are measured from (zero: time.Now()).
	Now time.Time
	// Pack tunes the pack writer; Format, OfsDelta and ReuseDeltas are
	// set by Repack.
	Pack packer.Options
	// Own, if not nil, is called with every file and directory Repack
	// creates in the repository: a pack's files before they are
	// renamed into place, a loose object and its fan-out directory once
	// written. gotadmin run as root gives them the repository's owner,
	// so that gotd can read them.
	Own func(path string)
}

// Report says what Repack did, or would do with DryRun.
type Report struct {
	// Pack is the path of the pack written ("" if nothing is
	// reachable, or DryRun) and Objects how many objects it holds.
	Pack    string
	Objects int
	// RemovedPacks are the paths of the packs removed.
	RemovedPacks []string
	// KeptPacks are packs left alone because a .keep file protects
	// them.
	KeptPacks []string
	// RedundantLoose counts loose objects removed because the new
	// pack holds them.
	RedundantLoose int
	// Pruned are the unreachable objects removed, sorted, and
	// PrunedBytes the size their loose files and pack entries took
	// (an entry's size in its pack, a delta's size for a delta).
	Pruned      []oid.ID
	PrunedBytes int64
	// Young counts unreachable objects kept because they are younger
	// than the grace period; Loosened those of them written out loose
	// because their pack was removed.
	Young, Loosened int
	// Precious says the repository's objects are precious: packs were
	// written, nothing was removed.
	Precious bool
	// LeftPacks are the packs Geometric left alone because their sizes
	// form the progression, largest first; Bitmap says it gave the new
	// pack a reachability bitmap.
	LeftPacks []string
	Bitmap    bool
}

// garbage is an unreachable object Repack found.
type garbage struct {
	mtime  time.Time
	loose  bool       // a loose copy exists
	pack   *pack.Pack // a packed copy in a pack to be removed (the newest), or nil
	size   int64      // bytes its copies take
	expire bool       // past the grace period (or Options.All)
}

// gone reports whether Repack with o removes every copy of g: it is
// past the grace period, and loose only if o prunes loose objects.
func (g *garbage) gone(o Options) bool {
	return g.expire && (!g.loose || o.PruneLoose)
}

// Repack writes every object reachable from the references, their
// reflogs and the pushes in flight into one new pack with a
// reachability bitmap, then removes the packs that existed when it
// started (except those with a .keep file), the loose objects the new
// pack holds, and the bitmaps of other packs, so that exactly one
// remains. Unreachable objects past the grace period go with their
// packs, and with PruneLoose their loose files go too; younger ones are
// kept (see the package comment). With extensions.preciousObjects,
// Repack with PruneLoose or All returns ErrPrecious at once; without,
// it writes the pack and removes nothing. Progress goes to
// o.Pack.Progress. On error before removal begins the repository is as
// it was, plus perhaps the new pack.
func Repack(ctx context.Context, r *repo.Repo, o Options) (*Report, error) {
	if o.All {
		o.PruneLoose = true
	}
	if o.Grace == 0 {
		o.Grace = DefaultGrace
	}
	if o.ReflogExpiry == 0 {
		o.ReflogExpiry = DefaultReflogExpiry
	}
	if o.Settle == 0 {
		o.Settle = DefaultSettle
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	precious, err := r.Config.Bool("extensions", "", "preciousObjects", false)
	if err != nil {
		return nil, fmt.Errorf("upkeep: %w", err)
	}
	if precious && o.PruneLoose {
		return nil, ErrPrecious
	}
	rep := &Report{Precious: precious}
	if !o.DryRun {
		unlock, err := lock(r, o.Own)
		if err != nil {
			return nil, err
		}
		defer unlock()
	}

	// What exists now is what may be removed; anything that appears
	// later is left alone.
	if err := r.Rescan(); err != nil {
		return nil, fmt.Errorf("upkeep: %w", err)
	}
	var old []*pack.Pack
	for _, p := range r.Packs() {
		if hasKeep(p) {
			rep.KeptPacks = append(rep.KeptPacks, p.Path())
			continue
		}
		old = append(old, p)
	}
	loose := oid.NewSet(r.Format, 0)
	if err := r.Loose.ForEach(func(id oid.ID) error { loose.Add(id); return nil }); err != nil {
		return nil, fmt.Errorf("upkeep: %w", err)
	}

	tips, err := refTips(r)
	if err != nil {
		return nil, err
	}
	q, err := openQuarantines(r)
	if err != nil {
		return nil, err
	}
	defer q.close()
	roots := append([]oid.ID(nil), tips...)
	roots, err = appendReflogTips(r, roots, o.Now.Add(-o.ReflogExpiry), o.ReflogExpiry < 0)
	if err != nil {
		return nil, err
	}
	roots = q.appendIDs(roots)

	reachable := oid.NewSet(r.Format, 0)
	var objs []packer.Object
	inRepo := func(id oid.ID) bool {
		_, _, ok := r.LocateObject(id)
		return ok || loose.Has(id)
	}
	err = walkFrom(ctx, r, q, roots, func(id oid.ID, t object.Type, path []byte) error {
		reachable.Add(id)
		if inRepo(id) {
			objs = append(objs, packer.Object{ID: id, Type: t, NameHash: packer.NameHash(path)})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("upkeep: find reachable objects: %w", err)
	}
	// The walk's trees are read; the pack is written mostly from stored
	// bytes and the bitmaps from what the walk listed. Bases cached for
	// the walk would only add to the peak of what follows.
	r.PurgeDeltaCache()

	junk, err := findGarbage(r, old, loose, reachable, o)
	if err != nil {
		return nil, err
	}
	rep.Objects = len(objs)
	for _, g := range junk {
		if !g.expire {
			rep.Young++
		}
	}
	if o.DryRun {
		for id, g := range junk {
			if g.gone(o) {
				rep.Pruned = append(rep.Pruned, id)
				rep.PrunedBytes += g.size
			}
		}
		sortIDs(rep.Pruned)
		rep.RemovedPacks = paths(old)
		return rep, nil
	}

	var np *pack.Pack
	if len(objs) > 0 {
		po := o.Pack
		po.Format, po.OfsDelta, po.ReuseDeltas = r.Format, true, true
		path, err := WritePack(ctx, r, objs, po, o.Own)
		if err != nil {
			return nil, fmt.Errorf("upkeep: write pack: %w", err)
		}
		rep.Pack = path
		if np, err = openedPack(r, path); err != nil {
			return nil, fmt.Errorf("upkeep: %w", err)
		}
		if err := writeBitmap(ctx, r, np, objs, tips, o.Own); err != nil {
			return nil, fmt.Errorf("upkeep: %w", err)
		}
	}
	if err := removeOtherBitmaps(r, np); err != nil {
		return rep, err
	}
	if precious {
		return rep, nil
	}

	// Pushes in flight may have installed their packs and not yet
	// moved their references: wait for them, then keep whatever the
	// references and quarantines reach now that was not reached before.
	if err := settle(ctx, r, reachable, junk, o); err != nil {
		return rep, err
	}

	// Young garbage in packs about to go is written out loose first.
	for id, g := range junk {
		if g.expire || g.loose || g.pack == nil {
			continue
		}
		if err := loosen(r, g.pack, id, g.mtime, o.Own); err != nil {
			return rep, fmt.Errorf("upkeep: keep unreachable %v: %w", id, err)
		}
		rep.Loosened++
	}
	if err := syncDir(r.ObjectsDir()); err != nil {
		return rep, fmt.Errorf("upkeep: %w", err)
	}

	if err := removeReplaced(r, old, np, o.Own, rep); err != nil {
		return rep, err
	}

	// Loose objects the new pack holds, and expired garbage.
	var errs []error
	for id := range loose.All() {
		g, isJunk := junk[id]
		switch {
		case !isJunk && np != nil && np.HasObject(id):
			rep.RedundantLoose++
		case isJunk && g.expire && o.PruneLoose:
		default:
			continue
		}
		if err := r.Loose.Remove(id); err != nil && !errors.Is(err, object.ErrNotFound) {
			errs = append(errs, err)
		}
	}
	for id, g := range junk {
		if g.gone(o) {
			rep.Pruned = append(rep.Pruned, id)
			rep.PrunedBytes += g.size
		}
	}
	sortIDs(rep.Pruned)
	removeEmptyFanout(r.Loose.Dir())
	if err := dropStaleCommitGraph(r, rep.Pruned); err != nil {
		errs = append(errs, err)
	}
	if err := r.Rescan(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return rep, fmt.Errorf("upkeep: %w", errors.Join(errs...))
	}
	return rep, nil
}

// lock takes the repository's upkeep lock, or fails with ErrRunning if
// another process holds it. The kernel lets go of it when the process
// dies, however it dies.
func lock(r *repo.Repo, own func(string)) (func(), error) {
	path := filepath.Join(r.GitDir, LockFile)
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|syscall.O_NOFOLLOW, r.Shared.File(0o444))
	if err != nil {
		return nil, fmt.Errorf("upkeep: lock: %w", err)
	}
	if own != nil {
		own(path)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, ErrRunning
		}
		return nil, fmt.Errorf("upkeep: lock: %w", err)
	}
	return func() { f.Close() }, nil
}

// findGarbage returns the objects of old and loose that reachable
// lacks, with their ages and whether they are past o's grace period.
func findGarbage(r *repo.Repo, old []*pack.Pack, loose *oid.Set, reachable *oid.Set, o Options) (map[oid.ID]*garbage, error) {
	junk := make(map[oid.ID]*garbage)
	for _, p := range old {
		st, err := os.Stat(p.Path())
		if err != nil {
			return nil, fmt.Errorf("upkeep: %w", err)
		}
		idx := p.Index()
		var sizes map[uint64]int64 // made for the first garbage found
		for i := 0; i < idx.Count(); i++ {
			id := idx.ID(i)
			if reachable.Has(id) {
				continue
			}
			if sizes == nil {
				if sizes, err = entrySizes(p); err != nil {
					return nil, err
				}
			}
			g := junk[id]
			if g == nil {
				g = &garbage{}
				junk[id] = g
			}
			g.size += sizes[idx.Offset(i)]
			// The newest copy decides its age, and is the one read.
			if g.pack == nil || st.ModTime().After(g.mtime) {
				g.pack, g.mtime = p, st.ModTime()
			}
		}
	}
	for id := range loose.All() {
		if reachable.Has(id) {
			continue
		}
		st, err := os.Stat(loosePath(r, id))
		if errors.Is(err, fs.ErrNotExist) {
			continue // pruned by another writer meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("upkeep: %w", err)
		}
		g := junk[id]
		if g == nil {
			g = &garbage{}
			junk[id] = g
		}
		g.loose = true
		g.size += st.Size()
		if st.ModTime().After(g.mtime) {
			g.mtime = st.ModTime()
		}
	}
	limit := o.Now.Add(-o.Grace)
	for _, g := range junk {
		g.expire = o.All || g.mtime.Before(limit)
	}
	return junk, nil
}

// entrySizes maps each entry's offset in p to the bytes it takes.
func entrySizes(p *pack.Pack) (map[uint64]int64, error) {
	n := p.Count()
	offs := make([]uint64, 0, n)
	idx := p.Index()
	for i := 0; i < n; i++ {
		offs = append(offs, idx.Offset(i))
	}
	sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
	end := uint64(p.Size() - int64(len(p.Checksum())))
	sizes := make(map[uint64]int64, n)
	for i, off := range offs {
		next := end
		if i+1 < len(offs) {
			next = offs[i+1]
		}
		if next < off {
			return nil, fmt.Errorf("upkeep: %s: entry offsets out of order", p.Path())
		}
		sizes[off] = int64(next - off)
	}
	return sizes, nil
}

// PackLoose packs the loose objects, whatever reaches them, into a new
// pack with its index, and leaves them in place: Repack removes them
// once a pack holds them. own is as Options.Own. It returns the new pack's path and how many
// objects it holds; with no loose objects it writes nothing and
// returns "" and 0.
func PackLoose(ctx context.Context, r *repo.Repo, po packer.Options, own func(path string)) (string, int, error) {
	var objs []packer.Object
	err := r.Loose.ForEach(func(id oid.ID) error {
		t, _, err := r.Loose.StatObject(id)
		if err != nil {
			return err
		}
		objs = append(objs, packer.Object{ID: id, Type: t})
		return nil
	})
	if err != nil || len(objs) == 0 {
		return "", 0, err
	}
	po.Format, po.OfsDelta, po.ReuseDeltas = r.Format, true, true
	path, err := WritePack(ctx, r, objs, po, own)
	if err != nil {
		return "", 0, fmt.Errorf("upkeep: write pack: %w", err)
	}
	return path, len(objs), nil
}

// settle waits up to o.Settle for the quarantines of pushes in flight
// to go, if anything is to be removed, then walks from whatever the references, reflogs and
// quarantines reach now that reachable lacks, and takes what it finds
// out of junk. When pushes are still in flight after the wait, it
// returns an error wrapping ErrBusy if o.All would remove anything,
// since a push's pack may be installed with its references not yet
// moved; with a grace period, such a pack is younger than it.
func settle(ctx context.Context, r *repo.Repo, reachable *oid.Set, junk map[oid.ID]*garbage, o Options) error {
	expired := false
	for _, g := range junk {
		if g.expire {
			expired = true
			break
		}
	}
	deadline := time.Now().Add(o.Settle)
	busy := expired // with nothing to remove, nothing to wait for
	for busy {
		names, err := quarantineDirs(r)
		if err != nil {
			return err
		}
		if len(names) == 0 {
			busy = false
			break
		}
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	if busy && o.All {
		return fmt.Errorf("%w: pushes still in flight after %v; nothing removed", ErrBusy, o.Settle)
	}
	if err := r.Rescan(); err != nil {
		return fmt.Errorf("upkeep: %w", err)
	}
	tips, err := refTips(r)
	if err != nil {
		return err
	}
	roots, err := appendReflogTips(r, tips, o.Now.Add(-o.ReflogExpiry), o.ReflogExpiry < 0)
	if err != nil {
		return err
	}
	q, err := openQuarantines(r)
	if err != nil {
		return err
	}
	defer q.close()
	roots = q.appendIDs(roots)
	var fresh []oid.ID
	for _, id := range roots {
		if !reachable.Has(id) {
			fresh = append(fresh, id)
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	err = walkFrom(ctx, r, q, fresh, func(id oid.ID, _ object.Type, _ []byte) error {
		reachable.Add(id)
		if g := junk[id]; g != nil {
			// Reached again: kept, and loosened if its pack goes.
			g.expire = false
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("upkeep: find reachable objects again: %w", err)
	}
	return nil
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
	if err != nil {
		return nil, fmt.Errorf("upkeep: list references: %w", err)
	}
	return tips, nil
}

// appendReflogTips appends to ids the old and new values of every
// reflog entry written after since (all entries with always), deleted
// references' reflogs included, that the repository has: an entry
// whose object C Git already pruned keeps nothing.
func appendReflogTips(r *repo.Repo, ids []oid.ID, since time.Time, always bool) ([]oid.ID, error) {
	seen := make(map[oid.ID]bool, len(ids))
	for _, id := range ids {
		seen[id] = true
	}
	add := func(id oid.ID) {
		if !id.IsNull() && !seen[id] && r.HasObject(id) {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	err := r.Refs.ListLogs(func(name string) error {
		return r.Refs.ReadLog(name, func(e refs.LogEntry) error {
			if always || !e.When.Before(since) {
				add(e.Old)
				add(e.New)
			}
			return nil
		}, nil)
	})
	if err != nil {
		return nil, fmt.Errorf("upkeep: reflogs: %w", err)
	}
	return ids, nil
}

// walkFrom calls fn for every object reachable from roots, reading
// the repository and the quarantined packs.
func walkFrom(ctx context.Context, r *repo.Repo, q *quarantines, roots []oid.ID, fn func(oid.ID, object.Type, []byte) error) error {
	w := &walk.Walker{Store: overlay{r, q}, Format: r.Format}
	if g, err := commitgraph.Open(r.ObjectsDir(), r.Format); err == nil {
		w.Graph = g
		defer g.Close()
	}
	return w.Objects(ctx, roots, nil, fn)
}

func paths(ps []*pack.Pack) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Path())
	}
	return out
}

func sortIDs(ids []oid.ID) {
	sort.Slice(ids, func(i, j int) bool { return ids[i].String() < ids[j].String() })
}

// removeReplaced removes the packs a new pack np replaces (np itself
// kept, when the same objects made the same pack again), recording
// them in rep, then drops a multi-pack-index naming them and rewrites
// objects/info/packs.
func removeReplaced(r *repo.Repo, replaced []*pack.Pack, np *pack.Pack, own func(string), rep *Report) error {
	for _, p := range replaced {
		if np != nil && p.Path() == np.Path() {
			continue // the same objects written again: the same pack
		}
		if err := removePack(p.Path()); err != nil {
			return fmt.Errorf("upkeep: %w", err)
		}
		rep.RemovedPacks = append(rep.RemovedPacks, p.Path())
	}
	if err := dropStaleMultiPackIndex(r, rep.RemovedPacks); err != nil {
		return err
	}
	return updateInfoPacks(r, own)
}
