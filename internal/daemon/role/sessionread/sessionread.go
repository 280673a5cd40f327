// Package sessionread is gotd's session_read process, one per fetch,
// clone, `git archive --remote` (serveArchive) or file of the dumb
// HTTP protocol (serveDumb): it runs the upload-pack conversation with
// the client (the reference advertisement, wants, negotiation, shallow
// boundaries) on the client's stream, with a read-only view of the
// repository, and builds and writes the pack itself. Negotiating and
// packing need the same privileges (a read-only view of one repository
// and the one client's stream), so one process does both: a second
// process would add its start-up, a second opening of the repository
// and the page faults of its indexes, and separate nothing.
package sessionread

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"gotd/internal/daemon/ipc"
	"gotd/internal/daemon/memlimit"
	"gotd/internal/daemon/msg"
	"gotd/internal/daemon/stream"
	"gotd/internal/git/repo"
	"gotd/internal/policy"
	"gotd/internal/protocol/pktline"
	"gotd/internal/protocol/upload"
	"gotd/internal/protocol/wire"
)

// Session is what the role switch prepares: the channel, the client's
// stream and the opened repository, before the sandbox closes.
type Session struct {
	Start   ipc.Start
	Parent  *msg.Conn
	In, Out *os.File
	Repo    *repo.Repo
}

// Main serves the client and tells the parent how it went.
func Main(ctx context.Context, log *slog.Logger, s *Session) error {
	log = log.With("client", s.Start.Client, "user", s.Start.User, "repo", s.Start.Repo)
	switch s.Start.Mode {
	case ipc.ModeArchive:
		return serveArchive(ctx, log, s)
	case ipc.ModeDumb:
		return serveDumb(ctx, log, s)
	}
	// Partial clones are served unless the repository's own config
	// turns them off (C Git has them off unless it turns them on).
	filter := true
	if s.Repo.Config != nil {
		if v, err := s.Repo.Config.Bool("uploadpack", "", "allowfilter", true); err == nil {
			filter = v
		}
	}
	// What the metrics count: references only, until a pack is sent.
	stats := &ipc.SessionStats{Kind: ipc.KindLsRefs}
	in, out := stream.Guard(s.In, s.Out, stream.StartLimits(&s.Start))
	opts := upload.Options{
		Filter:  filter,
		Hidden:  policy.Hidden(s.Start.Hidden).Func(),
		Repo:    s.Repo,
		Version: wire.ParseVersion(s.Start.Protocol),
		Log:     log,
		// Smart HTTP: the advertisement and the request come in
		// separate requests.
		AdvertiseOnly: s.Start.Mode == ipc.ModeAdvertise,
		StatelessRPC:  s.Start.Mode == ipc.ModeStateless,
		SendPack: func(ctx context.Context, req *upload.PackRequest, f upload.Framing) (int, error) {
			switch {
			case len(req.Common) > 0:
				stats.Kind = ipc.KindFetch
			case stats.Kind == ipc.KindLsRefs:
				stats.Kind = ipc.KindClone
			}
			return sendPack(ctx, log, s.Repo, req, f, out)
		},
	}
	res, err := upload.Serve(ctx, in, out, opts)
	stats.In, stats.Out = uint64(in.Bytes()), uint64(out.Bytes())
	if err := ipc.Send(s.Parent, stats, nil); err != nil {
		return fmt.Errorf("session_read: %w", err)
	}
	end := report(res, err)
	end.Bytes = stats.Out
	if err != nil {
		log.Warn("fetch failed", "err", err)
	} else {
		log.Info("fetch done", "packs", res.Fetches, "objects", res.Objects, "agent", res.Agent)
	}
	return ipc.Send(s.Parent, end, nil)
}

// sendPack writes the pack of req to the client's guarded stream out,
// where the session's buffered output has gone first: the stream
// itself, not a buffer over it, so that a stored pack sent whole goes
// from the page cache to the client (upload.FileSender). Past its
// memory budget meanwhile the process tells the client on the error
// band, or nothing in the middle of a raw pack, and ends.
func sendPack(ctx context.Context, log *slog.Logger, r *repo.Repo, req *upload.PackRequest, f upload.Framing, out *stream.Writer) (int, error) {
	if f.Sideband != 0 {
		memlimit.SetTell(func() { pktline.NewWriter(out).WriteString("\x03" + memlimit.Message + "\n") })
	} else {
		memlimit.SetTell(nil)
	}
	n, err := upload.SendPack(ctx, r, req, f, out)
	// Between packets again: an ERR packet is what the client reads.
	memlimit.SetTell(func() { pktline.NewWriter(out).WriteString("ERR " + memlimit.Message + "\n") })
	if err == nil {
		log.Info("pack sent", "objects", n, "wants", len(req.Wants), "haves", len(req.Common))
	}
	return n, err
}

// report is what the session tells the parent of a fetch that ended
// with res and err.
func report(res *upload.Result, err error) *ipc.SessionEnd {
	end := &ipc.SessionEnd{Status: ipc.StatusOK}
	if err != nil {
		end.Status = ipc.StatusFailed
		end.Error = truncate(wire.ClientMessage(err), ipc.MaxMessage)
		end.Abuse = abusive(err)
	}
	if res != nil {
		end.LsRefs, end.Fetches = clamp(res.LsRefs), clamp(res.Fetches)
		end.Wants, end.Haves, end.Objects = clamp(res.Wants), clamp(res.Haves), clamp(res.Objects)
	}
	return end
}

// clamp is n as a count of a message.
func clamp(n int) uint32 { return uint32(min(max(n, 0), 1<<32-1)) }

// truncate cuts s to at most n bytes.
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// abusive reports whether err ended a request as no well-behaved
// client's ends: a list over its bounds, a malformed request ("protocol
// error", as C Git words it), or a client too slow. A want of what the
// repository does not offer ("not our ref", a hidden reference) is not:
// well-behaved clients meet it when a push races their fetch.
func abusive(err error) bool {
	var e *wire.Error
	if errors.As(err, &e) && strings.HasPrefix(e.Msg, "protocol error:") {
		return true
	}
	for _, target := range []error{wire.ErrOverBudget, wire.ErrBadDaemonRequest, pktline.ErrMalformed, pktline.ErrTooLong,
		stream.ErrTimeout, stream.ErrTooSlow, stream.ErrDeadline} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}
