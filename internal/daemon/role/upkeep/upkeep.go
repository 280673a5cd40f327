// Package upkeep is gotd's upkeep process, one per run on one
// repository: the parent starts it after a push leaves the repository
// past its thresholds (gotd.conf's upkeep directive), or at gotctl
// upkeep. It repacks the repository with the engine's upkeep.Repack,
// which keeps fetches and pushes that run meanwhile whole, and tells
// the parent what it did. It reads and writes that one repository and
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
	"gotd/internal/git/repo"
)

// Main runs upkeep once on r, the repository start names, and sends
// the parent an UpkeepDone saying how it went: a run refused because
// another holds the repository, or because pushes kept moving its
// references, is UpkeepBusy and removed nothing. Unreachable objects
// younger than start.Grace stay; a repository whose objects are
// precious is left as it is (UpkeepPrecious). The error is the
// parent's channel's only.
func Main(ctx context.Context, log *slog.Logger, parent *msg.Conn, start *ipc.UpkeepStart, r *repo.Repo) error {
	log = log.With("repo", start.Name)
	began := time.Now()
	done := run(ctx, r, time.Duration(start.Grace)*time.Second)
	attrs := []any{"objects", done.Objects, "packs_removed", done.Packs, "pruned", done.Pruned, "young", done.Young, "elapsed", time.Since(began).Round(time.Millisecond)}
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

// run repacks r and describes the outcome.
func run(ctx context.Context, r *repo.Repo, grace time.Duration) *ipc.UpkeepDone {
	precious, err := r.Config.Bool("extensions", "", "preciousObjects", false)
	if err != nil {
		return failed(err)
	}
	if precious {
		// Repack would write a new pack and remove none: each run
		// would add a copy of the repository.
		return &ipc.UpkeepDone{Status: ipc.UpkeepPrecious}
	}
	// Loose objects past the grace period go, as C Git's gc --auto
	// prunes them.
	rep, err := engine.Repack(ctx, r, engine.Options{PruneLoose: true, Grace: grace})
	switch {
	case errors.Is(err, engine.ErrRunning), errors.Is(err, engine.ErrBusy):
		return &ipc.UpkeepDone{Status: ipc.UpkeepBusy, Message: clip(err.Error())}
	case err != nil:
		return failed(err)
	}
	return &ipc.UpkeepDone{Status: ipc.UpkeepOK, Objects: uint64(rep.Objects), Packs: uint64(len(rep.RemovedPacks)),
		Pruned: uint64(len(rep.Pruned)), Young: uint64(rep.Young)}
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
