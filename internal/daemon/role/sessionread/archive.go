package sessionread

import (
	"context"
	"fmt"
	"log/slog"

	"gotd/internal/daemon/ipc"
	"gotd/internal/daemon/memlimit"
	"gotd/internal/daemon/stream"
	"gotd/internal/policy"
	"gotd/internal/protocol/pktline"
	"gotd/internal/protocol/uploadarchive"
	"gotd/internal/protocol/wire"
)

// serveArchive serves `git archive --remote` (ipc.ModeArchive): the
// same process, view and rules as a fetch (hidden references, the
// stream's guard: timeout, pace and deadline; the memory budget), the upload-archive
// conversation instead of upload-pack's.
func serveArchive(ctx context.Context, log *slog.Logger, s *Session) error {
	stats := &ipc.SessionStats{Kind: ipc.KindArchive}
	in, out := stream.Guard(s.In, s.Out, stream.StartLimits(&s.Start))
	res, err := uploadarchive.Serve(ctx, in, out, uploadarchive.Options{
		Repo:   s.Repo,
		Hidden: policy.Hidden(s.Start.Hidden).Func(),
		Log:    log,
		// Past the ACK the client reads side-band packets: the
		// memory watcher tells it on the error band.
		Accepted: func() {
			memlimit.SetTell(func() { pktline.NewWriter(out).WriteString("\x03" + memlimit.Message + "\n") })
		},
	})
	stats.In, stats.Out = uint64(in.Bytes()), uint64(out.Bytes())
	if err := ipc.Send(s.Parent, stats, nil); err != nil {
		return fmt.Errorf("session_read: %w", err)
	}
	end := &ipc.SessionEnd{Status: ipc.StatusOK, Bytes: stats.Out}
	if err != nil {
		end.Status = ipc.StatusFailed
		end.Error = truncate(wire.ClientMessage(err), ipc.MaxMessage)
		log.Warn("archive failed", "err", err)
	} else {
		log.Info("archive sent", "format", res.Format, "id", res.ID)
	}
	return ipc.Send(s.Parent, end, nil)
}
