package upkeep

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"gotd/internal/engine/packer"
	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/pack"
	"gotd/internal/git/repo"
	"gotd/internal/git/walk"
)

// GeometricFactor is the factor of the progression Geometric keeps the
// packs' object counts in, as C Git's repack --geometric=2.
const GeometricFactor = 2

// Geometric rolls the repository's small packs and its loose objects
// into one new pack and leaves its large packs alone, as C Git's
// repack --geometric=2 -d: sorted by object count, the largest packs
// whose counts each at least double the next smaller one's stay, and
// so do .keep packs; every other pack, with the loose objects, goes
// into the new pack (stored deltas reused), and is then removed the
// way Repack removes packs, so that fetches reading them keep their
// open files. The split is moved up past any large pack that the new
// pack's size would break the progression with. Nothing is pruned:
// every object of the rolled packs and every loose object is kept,
// reachable or not, in the new pack unless a pack left alone already
// holds it. With fewer than two packs to roll and no loose objects it
// changes nothing. When the new pack is left the only one and holds
// everything the references reach, it gets a reachability bitmap.
// Then the commits the commit-graph lacks are added to it as a new
// layer of its chain, and when several packs remain a multi-pack-index
// over them all is written, with a reachability bitmap that replaces
// the packs' own (updateMultiPackIndex). Only o.DryRun, o.Pack and
// o.Own are used. With extensions.preciousObjects it returns
// ErrPrecious, as C Git's repack -d refuses to delete packs there.
func Geometric(ctx context.Context, r *repo.Repo, o Options) (*Report, error) {
	precious, err := r.Config.Bool("extensions", "", "preciousObjects", false)
	if err != nil {
		return nil, fmt.Errorf("upkeep: %w", err)
	}
	if precious {
		return nil, ErrPrecious
	}
	if !o.DryRun {
		unlock, err := lock(r, o.Own)
		if err != nil {
			return nil, err
		}
		defer unlock()
	}
	if err := r.Rescan(); err != nil {
		return nil, fmt.Errorf("upkeep: %w", err)
	}
	rep := &Report{}
	var candidates, kept []*pack.Pack
	for _, p := range r.Packs() {
		if hasKeep(p) {
			rep.KeptPacks = append(rep.KeptPacks, p.Path())
			kept = append(kept, p)
			continue
		}
		candidates = append(candidates, p)
	}
	loose := oid.NewSet(r.Format, 0)
	if err := r.Loose.ForEach(func(id oid.ID) error { loose.Add(id); return nil }); err != nil {
		return nil, fmt.Errorf("upkeep: %w", err)
	}
	counts := make([]int, len(candidates))
	for i, p := range candidates {
		counts[i] = p.Count()
	}
	roll := make([]bool, len(candidates))
	for _, i := range splitGeometric(counts, loose.Len()) {
		roll[i] = true
	}
	var rolled, stay []*pack.Pack
	for i, p := range candidates {
		if roll[i] {
			rolled = append(rolled, p)
		} else {
			stay = append(stay, p)
		}
	}
	sort.SliceStable(stay, func(a, b int) bool { return stay[a].Count() > stay[b].Count() })
	rep.LeftPacks = paths(stay)
	if len(rolled) < 2 && loose.Len() == 0 {
		if !o.DryRun {
			// Nothing to roll; the pushes' commits still join the
			// commit-graph, and their packs the multi-pack-index.
			var errs []error
			if rep.Graph, err = writeCommitGraph(r, false, o.Own); err != nil {
				errs = append(errs, err)
			}
			if rep.MultiPackIndex, err = updateMultiPackIndex(ctx, r, o.Own); err != nil {
				errs = append(errs, err)
			}
			err = errors.Join(errs...)
		}
		return rep, err
	}

	// The objects to write: those of the rolled packs and the loose
	// ones, each once, unless a pack that stays holds it.
	held := func(id oid.ID) bool {
		for _, p := range stay {
			if p.HasObject(id) {
				return true
			}
		}
		for _, p := range kept {
			if p.HasObject(id) {
				return true
			}
		}
		return false
	}
	seen := oid.NewSet(r.Format, 0)
	var objs []packer.Object
	for _, p := range rolled {
		idx := p.Index()
		for i := 0; i < idx.Count(); i++ {
			id := idx.ID(i)
			if seen.Has(id) || held(id) {
				continue
			}
			seen.Add(id)
			t, _, err := p.StatObject(id)
			if err != nil {
				return nil, fmt.Errorf("upkeep: %s: %w", p.Path(), err)
			}
			objs = append(objs, packer.Object{ID: id, Type: t})
		}
	}
	for id := range loose.All() {
		if seen.Has(id) || held(id) {
			continue
		}
		t, _, err := r.Loose.StatObject(id)
		if errors.Is(err, object.ErrNotFound) {
			continue // removed by another writer meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("upkeep: %w", err)
		}
		seen.Add(id)
		objs = append(objs, packer.Object{ID: id, Type: t})
	}
	rep.Objects = len(objs)
	if o.DryRun {
		rep.RemovedPacks = paths(rolled)
		return rep, nil
	}

	var np *pack.Pack
	if len(objs) > 0 {
		var err error
		if rep.Pack, np, err = writeRepack(ctx, r, objs, o); err != nil {
			return nil, err
		}
		if len(stay) == 0 {
			if rep.Bitmap, err = bitmapIfWhole(ctx, r, np, o.Own); err != nil {
				return nil, fmt.Errorf("upkeep: %w", err)
			}
		}
	}

	if err := removeReplaced(r, rolled, np, o.Own, rep); err != nil {
		return rep, err
	}
	if err := r.Rescan(); err != nil {
		return rep, fmt.Errorf("upkeep: %w", err)
	}
	// Loose objects a pack now holds.
	var errs []error
	for id := range loose.All() {
		if _, _, ok := r.LocateObject(id); !ok {
			continue
		}
		if err := r.Loose.Remove(id); err != nil && !errors.Is(err, object.ErrNotFound) {
			errs = append(errs, err)
			continue
		}
		rep.RedundantLoose++
	}
	removeEmptyFanout(r.Loose.Dir())
	if rep.Graph, err = writeCommitGraph(r, false, o.Own); err != nil {
		errs = append(errs, err)
	}
	if rep.MultiPackIndex, err = updateMultiPackIndex(ctx, r, o.Own); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return rep, fmt.Errorf("upkeep: %w", errors.Join(errs...))
	}
	return rep, nil
}

// splitGeometric returns which of the packs whose object counts are
// counts to roll into one new pack with extra loose objects, as
// indexes into counts, smallest first; the others stay. Sorted by
// count, the packs from the largest down stay while each holds at
// least GeometricFactor times the next smaller one; then the split
// moves up past every pack that holds fewer than GeometricFactor times
// all that is rolled below it, so that the new pack does not break the
// progression either.
func splitGeometric(counts []int, extra int) []int {
	order := make([]int, len(counts))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return counts[order[a]] < counts[order[b]] })
	n := len(order)
	// split is the number of the smallest packs rolled.
	split := 0
	for i := n - 1; i > 0; i-- {
		if counts[order[i]] < GeometricFactor*counts[order[i-1]] {
			split = i + 1 // the larger of the pair is out of the progression too
			break
		}
	}
	total := extra
	for i := 0; i < split; i++ {
		total += counts[order[i]]
	}
	for split < n && counts[order[split]] < GeometricFactor*total {
		total += counts[order[split]]
		split++
	}
	return order[:split]
}

// bitmapIfWhole writes np's reachability bitmap if np holds every
// object the references reach, and reports whether it did; the
// bitmaps of other packs are removed then, so that one remains.
func bitmapIfWhole(ctx context.Context, r *repo.Repo, np *pack.Pack, own func(string)) (bool, error) {
	tips, err := refTips(r)
	if err != nil || len(tips) == 0 {
		return false, err
	}
	var objs []packer.Object
	whole := true
	w := &walk.Walker{Store: r, Format: r.Format}
	err = w.Objects(ctx, tips, nil, func(id oid.ID, t object.Type, path []byte) error {
		if !np.HasObject(id) {
			whole = false
			return errStopWalk
		}
		objs = append(objs, packer.Object{ID: id, Type: t, NameHash: packer.NameHash(path)})
		return nil
	})
	if errors.Is(err, errStopWalk) || !whole {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("find reachable objects: %w", err)
	}
	if err := writeBitmap(ctx, r, np, objs, tips, own); err != nil {
		return false, err
	}
	return true, removeOtherBitmaps(r, np)
}

var errStopWalk = errors.New("upkeep: stop the walk")
