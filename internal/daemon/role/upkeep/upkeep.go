// Package upkeep is gotd's upkeep process, one per run on one
// repository: the parent starts it after a push leaves the repository
// past its thresholds (gotd.conf's upkeep directive), or at gotctl
// upkeep. After a push it repacks the repository geometrically
// (upkeep.Geometric: the small packs and the loose objects rolled into
// one, the large packs left alone, nothing pruned), and fully
// (upkeep.Repack) only when that leaves more packs than the threshold;
// gotctl upkeep repacks fully. Both keep fetches and pushes that run
// meanwhile whole, and bring the commit-graph up to date. Then, when
// more references are loose than the threshold, it packs them. It
// tells the parent what it did. It reads and writes that one repository and
// nothing else; it has no network.
package upkeep

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"gotd/internal/daemon/ipc"
	"gotd/internal/daemon/msg"
	engine "gotd/internal/engine/upkeep"
	"gotd/internal/git/refs"
	"gotd/internal/git/repo"
)

// Main runs upkeep once on r, the repository start names, and sends
// the parent an UpkeepDone saying how it went (start.Full and
// start.Packs choose the repack, as the package comment says): a run
// refused because
// another holds the repository, or because pushes kept moving its
// references, is UpkeepBusy and removed nothing. Unreachable objects
// younger than start.Grace stay; a repository whose objects are
// precious is left as it is (UpkeepPrecious). The error is the
// parent's channel's only.
func Main(ctx context.Context, log *slog.Logger, parent *msg.Conn, start *ipc.UpkeepStart, r *repo.Repo) error {
	log = log.With("repo", start.Name)
	began := time.Now()
	// The reference locks the run takes (packed-refs' and the loose
	// references' it packs) are recorded, so that if the process dies
	// holding some, the parent removes them: packed-refs.lock left by a
	// killed run failed every later push that deleted a packed
	// reference, and every later run.
	done, full := &ipc.UpkeepDone{}, false
	if j, err := refs.OpenJournal(r.GitDir, r.Shared); err != nil {
		done = failed(err)
	} else {
		defer j.Close()
		r.Refs = r.Refs.WithJournal(j)
		done, full = run(ctx, r, start)
		packRefs(r, start, done)
	}
	attrs := []any{"full", full, "objects", done.Objects, "packs_removed", done.Packs, "pruned", done.Pruned, "young", done.Young, "refs_packed", done.Refs, "elapsed", time.Since(began).Round(time.Millisecond)}
	switch done.Status {
	case ipc.UpkeepOK:
		log.Info("upkeep done", attrs...)
	case ipc.UpkeepPrecious:
		log.Info("upkeep skipped: the repository's objects are precious")
	case ipc.UpkeepBusy:
		log.Info("upkeep skipped: the repository is busy", "why", done.Message)
	default:
		log.Error("upkeep failed", "err", done.Message)
	}
	if err := ipc.Send(parent, done, nil); err != nil {
		return fmt.Errorf("upkeep: tell the parent: %w", err)
	}
	return nil
}

// run repacks r as start asks and describes the outcome; full says
// whether it repacked fully.
func run(ctx context.Context, r *repo.Repo, start *ipc.UpkeepStart) (done *ipc.UpkeepDone, full bool) {
	precious, err := r.Config.Bool("extensions", "", "preciousObjects", false)
	if err != nil {
		return failed(err), false
	}
	if precious {
		// Repack would write a new pack and remove none: each run
		// would add a copy of the repository.
		return &ipc.UpkeepDone{Status: ipc.UpkeepPrecious}, false
	}
	removed := 0
	if !start.Full {
		rep, err := engine.Geometric(ctx, r, engine.Options{})
		if err != nil {
			return outcome(err), false
		}
		removed = len(rep.RemovedPacks)
		if start.Packs == 0 || len(r.Packs()) <= int(start.Packs) {
			return &ipc.UpkeepDone{Status: ipc.UpkeepOK, Objects: uint64(rep.Objects), Packs: uint64(removed)}, false
		}
		// Packs past the threshold remain (.keep packs, or a
		// progression longer than it): a full repack.
	}
	// Loose objects past the grace period go, as C Git's gc --auto
	// prunes them.
	grace := time.Duration(start.Grace) * time.Second
	rep, err := engine.Repack(ctx, r, engine.Options{PruneLoose: true, Grace: grace})
	if err != nil {
		return outcome(err), true
	}
	return &ipc.UpkeepDone{Status: ipc.UpkeepOK, Objects: uint64(rep.Objects), Packs: uint64(removed + len(rep.RemovedPacks)),
		Pruned: uint64(len(rep.Pruned)), Young: uint64(rep.Young)}, true
}

// packRefs packs r's references into packed-refs when more than
// start.LooseRefs are loose (engine.PackRefs: under C Git's locks, so
// that pushes running meanwhile lose nothing), also in a repository
// whose objects are precious, and records in done how many it packed.
// A failure turns a run that went well into a failed or busy one.
func packRefs(r *repo.Repo, start *ipc.UpkeepStart, done *ipc.UpkeepDone) {
	before, after, err := engine.PackRefs(r, int(start.LooseRefs))
	if before > after {
		done.Refs = uint64(before - after)
	}
	if err != nil && (done.Status == ipc.UpkeepOK || done.Status == ipc.UpkeepPrecious) {
		o := outcome(err)
		done.Status, done.Message = o.Status, o.Message
	}
}

// outcome describes a run that failed with err: busy if another run
// held the repository or pushes held its prune lock.
func outcome(err error) *ipc.UpkeepDone {
	if errors.Is(err, engine.ErrRunning) || errors.Is(err, engine.ErrBusy) || errors.Is(err, refs.ErrLocked) {
		return &ipc.UpkeepDone{Status: ipc.UpkeepBusy, Message: clip(err.Error())}
	}
	return failed(err)
}

func failed(err error) *ipc.UpkeepDone {
	return &ipc.UpkeepDone{Status: ipc.UpkeepFailed, Message: clip(err.Error())}
}

// clip bounds a message to what UpkeepDone carries.
func clip(s string) string {
	if len(s) > ipc.MaxMessage {
		return s[:ipc.MaxMessage-3] + "..."
	}
	return s
}
