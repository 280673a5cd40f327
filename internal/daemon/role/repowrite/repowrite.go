// Package repowrite is gotd's repo_write process, one per push: on its
// session's request it reads the pack from the client's stream, which
// the session passed it, completes a thin pack from the repository,
// checks every object and indexes the pack into the push's quarantine
// directory. It reads the repository and writes only in that
// directory; the session decides what becomes of the pack.
package repowrite

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"gotd/internal/daemon/ipc"
	"gotd/internal/daemon/msg"
	"gotd/internal/daemon/stream"
	"gotd/internal/git/repo"
	"gotd/internal/policy"
	"gotd/internal/protocol/receive"
	"gotd/internal/protocol/wire"
)

// progressInterval spaces the progress messages sent to the session.
const progressInterval = 100 * time.Millisecond

// Main receives one pack, if the session asks for one.
func Main(ctx context.Context, log *slog.Logger, start *ipc.Start, session *msg.Conn, r *repo.Repo) error {
	log = log.With("client", start.Client, "repo", start.Repo)
	var req ipc.RecvPack
	in, err := ipc.Recv(session, &req, true)
	if err != nil {
		return nil // no pack: a push of deletions only, or the session ended
	}
	defer in.Close()
	var last time.Time
	progress := func(stage string, done, total uint32) {
		if now := time.Now(); done == total || now.Sub(last) >= progressInterval {
			last = now
			ipc.Send(session, &ipc.Progress{Stage: stage, Done: done, Total: total}, nil)
		}
	}
	limits := wire.Limits{MaxPackSize: int64(start.MaxPackSize), MaxObjects: uint32(start.MaxObjects),
		MaxObjectSize: int64(start.MaxObjectSize)}
	// The pack is read within the client's limits: the request's
	// deadline, the wait for each read, the minimum rate.
	pack, _ := stream.Guard(in, nil, stream.StartLimits(start))
	res, err := receive.IndexPack(ctx, pack, start.Quarantine, receive.PackOptions{
		Format:     r.Format,
		Bases:      r,
		Limits:     limits.WithDefaults(),
		Progress:   progress,
		MinFree:    int64(start.MinFree),
		Visible:    receive.Visible(r.Refs, policy.Hidden(start.Hidden).Func()),
		ObjectsDir: r.ObjectsDir(),
		Shared:     r.Shared,
	})
	if err != nil {
		log.Warn("pack refused", "err", err)
		return ipc.Send(session, &ipc.Failed{Message: wire.ClientMessage(err), Bytes: uint64(pack.Bytes())}, nil)
	}
	log.Info("pack received", "objects", res.Count, "thin-bases", res.ThinBases, "bytes", pack.Bytes())
	if err := ipc.Send(session, &ipc.PackIndexed{
		Pack: res.PackPath, Index: res.IndexPath, Rev: res.RevPath,
		Count: res.Count, ThinBases: uint32(res.ThinBases), Checksum: res.Checksum, Bytes: uint64(pack.Bytes()),
	}, nil); err != nil {
		return fmt.Errorf("repo_write: %w", err)
	}
	return nil
}
