package sessionread

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"gotd/internal/daemon/ipc"
	"gotd/internal/daemon/stream"
	"gotd/internal/policy"
	"gotd/internal/protocol/dumb"
)

// serveDumb answers one file of the dumb HTTP protocol (ipc.ModeDumb):
// the path comes from the HTTP front-end on the client's stream, the
// answer goes back on it in protocol/dumb's frames, under the same
// rules as a fetch (hidden references, the stream's guard).
func serveDumb(ctx context.Context, log *slog.Logger, s *Session) error {
	stats := &ipc.SessionStats{Kind: ipc.KindLsRefs}
	in, out := stream.Guard(s.In, s.Out, stream.StartLimits(&s.Start))
	err := func() error {
		path, err := dumb.ReadRequest(in)
		if err != nil {
			return err
		}
		log = log.With("path", path)
		f, err := dumb.Open(s.Repo, path, policy.Hidden(s.Start.Hidden).Func())
		switch {
		case errors.Is(err, dumb.ErrNotFound):
			return dumb.WriteHeader(out, nil)
		case errors.Is(err, dumb.ErrHidden):
			log.Info("dumb read of objects refused: the repository hides references")
			return dumb.WriteHeader(out, nil)
		case err != nil:
			return err
		}
		defer f.Body.Close()
		if strings.HasPrefix(path, "objects/") {
			stats.Kind = ipc.KindFetch
		}
		if err := dumb.WriteHeader(out, f); err != nil {
			return err
		}
		if _, err := io.CopyN(out, f.Body, f.Size); err != nil {
			return fmt.Errorf("session_read: send %s: %w", path, err)
		}
		return nil
	}()
	stats.In, stats.Out = uint64(in.Bytes()), uint64(out.Bytes())
	if err := ipc.Send(s.Parent, stats, nil); err != nil {
		return fmt.Errorf("session_read: %w", err)
	}
	end := &ipc.SessionEnd{Status: ipc.StatusOK, Bytes: stats.Out}
	if err != nil {
		end.Status = ipc.StatusFailed
		end.Error = "internal server error"
		log.Warn("dumb read failed", "err", err)
	}
	return ipc.Send(s.Parent, end, nil)
}
