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
// objects to go (Options.All). The last reachability walk and the
// removal hold the repository's prune lock exclusive, and pushes hold
// it shared from their connectivity check to their reference updates
// (repo.LockPrune): a push that relies on an object unreachable at the
// first walk either moves its references before the last walk sees
// them or checks after the removal and finds the object gone. Unreachable objects still in their grace
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
	"runtime/debug"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"gotd/internal/engine/packer"
	"gotd/internal/git/commitgraph"
	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/pack"
	"gotd/internal/git/perm"
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
// anything, for the prune lock (repo.PruneLockFile), which pushes hold
// shared from their connectivity check to their reference updates, and
// for pushes C Git's receive-pack has in flight.
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

// ErrBusy is wrapped by Repack's error when pushes kept the prune lock
// (or C Git's pushes stayed in flight) for all of Options.Settle:
// nothing was removed.
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
	// Settle bounds the wait for the prune lock and for C Git's pushes
	// in flight before removal (0: DefaultSettle).
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
	// MultiPackIndex says a multi-pack-index was written over the
	// packs, several of which remain.
	MultiPackIndex bool
	// Graph is what writing the commit-graph did: a layer of the
	// commits it lacked, or all of them afresh after a prune removed
	// some it held (nil: nothing written, as with DryRun or in a
	// shallow repository).
	Graph *commitgraph.WriteReport
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
// remains, and brings the commit-graph up to date (rewriting it whole
// if it held a pruned commit). Unreachable objects past the grace period go with their
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

	// At most every object stored is reachable: sized for them all, the
	// set and the list are never copied as they grow.
	stored := loose.Len()
	for _, p := range r.Packs() {
		stored += p.Count()
	}
	reachable := oid.NewSet(r.Format, stored)
	objs := make([]packer.Object, 0, stored)
	rel := &pageRelease{packs: r.Packs()}
	// An object the walk lists was read from, or found in, the
	// repository unless a quarantine holds it.
	inRepo := func(id oid.ID) bool {
		if len(q.packs) == 0 {
			return true
		}
		_, _, ok := r.LocateObject(id)
		return ok || loose.Has(id)
	}
	err = walkReachable(ctx, r, q, roots, nil, func(id oid.ID, t object.Type, path []byte) error {
		rel.tick()
		if !reachable.Add(id) {
			return nil // reached from another quarantine too
		}
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
	// the walk would only add to the peak of what follows. So would the
	// walk's garbage (its seen-set and commit nodes, a third of the
	// heap's peak on git.git) if left to the collector's pace: the heap
	// would grow to twice what the walk held before the next collection,
	// and its freed pages stay resident long after.
	r.PurgeDeltaCache()
	debug.FreeOSMemory()

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
		var err error
		if rep.Pack, np, err = writeRepack(ctx, r, objs, o); err != nil {
			return nil, err
		}
		if err := writeBitmap(ctx, r, np, objs, tips, o.Own); err != nil {
			return nil, fmt.Errorf("upkeep: %w", err)
		}
	}
	if err := removeOtherBitmaps(r, np); err != nil {
		return rep, err
	}
	if precious {
		rep.Graph, err = writeCommitGraph(r, false, o.Own)
		return rep, err
	}

	// The last walk and the removal hold the prune lock exclusive; a
	// push holds it shared from its connectivity check to its
	// reference updates. So every push either checked before the last
	// walk, which then sees its references, or checks after the
	// removal, which it then sees: none relies on an object it found
	// that is then removed.
	if err := waitForeignPushes(ctx, r, junk, o); err != nil {
		return rep, err
	}
	unlockPrune, err := r.LockPrune(ctx, true, o.Settle, o.Own)
	if errors.Is(err, repo.ErrPruneLocked) {
		return rep, fmt.Errorf("%w: pushes held the prune lock for %v; nothing removed", ErrBusy, o.Settle)
	}
	if err != nil {
		return rep, fmt.Errorf("upkeep: %w", err)
	}
	errs, err := removeGarbage(ctx, r, old, loose, np, reachable, junk, o, rep)
	unlockPrune()
	if err != nil {
		return rep, err
	}
	for id, g := range junk {
		if g.gone(o) {
			rep.Pruned = append(rep.Pruned, id)
			rep.PrunedBytes += g.size
		}
	}
	sortIDs(rep.Pruned)
	removeEmptyFanout(r.Loose.Dir())
	// The commit-graph: a layer of the new commits, or written afresh
	// when it held a commit just pruned.
	if rep.Graph, err = writeCommitGraph(r, graphHolds(r, rep.Pruned), o.Own); err != nil {
		errs = append(errs, err)
	}
	// Packs left beside the new one (.keep packs, pushes meanwhile).
	if rep.MultiPackIndex, err = updateMultiPackIndex(ctx, r, o.Own); err != nil {
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

// removeGarbage is the end of Repack, under the prune lock: it walks
// from what the references, reflogs and quarantines reach now that
// they did not reach before (settle), writes out loose the young
// garbage of the packs about to go, then removes the packs old (but
// np), the loose objects np holds and the expired garbage. It returns
// the failures to remove loose objects, which stop nothing, apart
// from the error that stopped it.
func removeGarbage(ctx context.Context, r *repo.Repo, old []*pack.Pack, loose *oid.Set, np *pack.Pack, reachable *oid.Set, junk map[oid.ID]*garbage, o Options, rep *Report) ([]error, error) {
	if err := settle(ctx, r, reachable, junk, o); err != nil {
		return nil, err
	}
	pauseBeforeRemoval()

	// Young garbage in packs about to go is written out loose first.
	for id, g := range junk {
		if g.expire || g.loose || g.pack == nil {
			continue
		}
		if err := loosen(r, g.pack, id, g.mtime, o.Own); err != nil {
			return nil, fmt.Errorf("upkeep: keep unreachable %v: %w", id, err)
		}
		rep.Loosened++
	}
	if err := perm.SyncDir(r.ObjectsDir()); err != nil {
		return nil, fmt.Errorf("upkeep: %w", err)
	}

	if err := removeReplaced(r, old, np, o.Own, rep); err != nil {
		return nil, err
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
	return errs, nil
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
	removeStaleLocks(r)
	return func() { f.Close() }, nil
}

// staleLockAge is the age past which removeStaleLocks takes a lock
// file of the commit-graph or multi-pack-index for a dead writer's:
// writing either for git.git takes seconds.
const staleLockAge = time.Hour

// removeStaleLocks removes the commit-graph chain's and the
// multi-pack-index's lock files when they are older than staleLockAge:
// an upkeep process killed while writing one (by its memory limit, or
// gotctl stop) would otherwise make every later run fail on it. The
// caller holds the upkeep lock, so no other upkeep is writing them.
func removeStaleLocks(r *repo.Repo) {
	for _, path := range []string{
		filepath.Join(r.ObjectsDir(), "info", "commit-graphs", "commit-graph-chain.lock"),
		filepath.Join(r.PackDir(), "multi-pack-index.lock"),
	} {
		if st, err := os.Lstat(path); err == nil && st.Mode().IsRegular() && time.Since(st.ModTime()) > staleLockAge {
			os.Remove(path)
		}
	}
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

// waitForeignPushes waits up to o.Settle, if anything is to be
// removed, for the quarantines of pushes in flight that C Git's
// receive-pack made (those that do not begin "incoming-gotd-") to go:
// C Git takes no prune lock, and may have installed a push's objects
// without moving its references yet. It returns an error wrapping
// ErrBusy if some remain and o.All would remove anything; with a grace
// period, such a push's objects are younger than it. gotd's pushes hold
// the prune lock instead (see Repack), and are not waited for.
func waitForeignPushes(ctx context.Context, r *repo.Repo, junk map[oid.ID]*garbage, o Options) error {
	expired := false
	for _, g := range junk {
		if g.expire {
			expired = true
			break
		}
	}
	deadline := time.Now().Add(o.Settle)
	for expired { // with nothing to remove, nothing to wait for
		names, err := quarantineDirs(r)
		if err != nil {
			return err
		}
		foreign := 0
		for _, n := range names {
			if !strings.HasPrefix(filepath.Base(n), gotdQuarantine) {
				foreign++
			}
		}
		if foreign == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			if o.All {
				return fmt.Errorf("%w: pushes of C Git still in flight after %v; nothing removed", ErrBusy, o.Settle)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// settle, under the prune lock, walks from whatever the references,
// reflogs and quarantines reach now that reachable lacks, and takes
// what it finds out of junk: kept, and written out loose if its pack
// goes. The quarantines of gotd's pushes are walked whole, so that a
// push whose pack is in but not yet checked keeps the objects its pack
// names as parents or bases.
func settle(ctx context.Context, r *repo.Repo, reachable *oid.Set, junk map[oid.ID]*garbage, o Options) error {
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
	// What the roots already reached reach is in reachable: the walk
	// stops there, so that it costs what changed since the first.
	var fresh, known []oid.ID
	for _, id := range roots {
		if reachable.Has(id) {
			known = append(known, id)
		} else {
			fresh = append(fresh, id)
		}
	}
	err = walkReachable(ctx, r, q, fresh, known, func(id oid.ID, _ object.Type, _ []byte) error {
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

// walkReachable calls fn for every object reachable from roots and not
// from known, whose closure the caller has, reading the repository and
// the quarantined packs; then for what the objects of each quarantined
// pack reach beyond those. An object missing under roots is an error;
// one missing under a quarantined pack is not: that push will be
// refused as incomplete, so what its walk reached before is kept and
// the rest of it does not matter (nor can a client that pushes a pack
// naming a missing parent, slowly, make every cleanup fail). fn may be
// called more than once for an object reached from two packs.
func walkReachable(ctx context.Context, r *repo.Repo, q *quarantines, roots, known []oid.ID, fn func(oid.ID, object.Type, []byte) error) error {
	w := &walk.Walker{Store: overlay{r, q}, Format: r.Format}
	if g, err := commitgraph.Open(r.ObjectsDir(), r.Format); err == nil {
		w.Graph = g
		defer g.Close()
	}
	if len(roots) > 0 {
		if err := w.Objects(ctx, roots, known, fn); err != nil {
			return err
		}
	}
	haves := append(append([]oid.ID(nil), known...), roots...)
	for _, p := range q.packs {
		idx := p.Index()
		ids := make([]oid.ID, 0, idx.Count())
		for i := 0; i < idx.Count(); i++ {
			ids = append(ids, idx.ID(i))
		}
		err := w.Objects(ctx, ids, haves, fn)
		if err != nil && !errors.Is(err, object.ErrNotFound) {
			return err
		}
	}
	return nil
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
// them in rep, and rewrites objects/info/packs. A multi-pack-index
// naming them is dropped first, so that no reader finds a pack through
// it that is going or gone (C Git looks in a pack the index covers only
// through the index).
func removeReplaced(r *repo.Repo, replaced []*pack.Pack, np *pack.Pack, own func(string), rep *Report) error {
	var gone []string
	for _, p := range replaced {
		if np != nil && p.Path() == np.Path() {
			continue // the same objects written again: the same pack
		}
		gone = append(gone, p.Path())
	}
	if err := dropStaleMultiPackIndex(r, gone); err != nil {
		return err
	}
	for _, path := range gone {
		if err := removePack(path); err != nil {
			return fmt.Errorf("upkeep: %w", err)
		}
		rep.RemovedPacks = append(rep.RemovedPacks, path)
	}
	return updateInfoPacks(r, own)
}

// writeRepack writes objs as a pack of r with o's packing options
// (offset deltas, stored deltas reused) and returns its path and the
// pack, opened among r's. The pages of the packs it reads leave the
// process's resident set as it goes (packer.Options.ReleasePages).
func writeRepack(ctx context.Context, r *repo.Repo, objs []packer.Object, o Options) (string, *pack.Pack, error) {
	po := o.Pack
	po.Format, po.OfsDelta, po.ReuseDeltas, po.ReleasePages = r.Format, true, true, true
	path, err := WritePack(ctx, r, objs, po, o.Own)
	if err != nil {
		return "", nil, fmt.Errorf("upkeep: write pack: %w", err)
	}
	np, err := openedPack(r, path)
	if err != nil {
		return "", nil, fmt.Errorf("upkeep: %w", err)
	}
	return path, np, nil
}
