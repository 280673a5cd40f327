// Package sessionread is gotd's session_read process, one per fetch or
// clone: it runs the upload-pack conversation with the client (the
// reference advertisement, wants, negotiation, shallow boundaries) on
// the client's stream, with a read-only view of the repository, and
// has repo_read, which the parent starts when the session asks for it,
// write the pack straight onto the client's stream.
package sessionread

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"gotd/internal/daemon/ipc"
	"gotd/internal/daemon/msg"
	"gotd/internal/daemon/stream"
	"gotd/internal/git/oid"
	"gotd/internal/git/repo"
	"gotd/internal/policy"
	"gotd/internal/protocol/upload"
	"gotd/internal/protocol/wire"
)

// Session is what the role switch prepares: the channels, the client's
// stream and the opened repository, before the sandbox closes.
type Session struct {
	Start    ipc.Start
	Parent   *msg.Conn
	RepoRead *msg.Conn
	In, Out  *os.File
	Repo     *repo.Repo
}

// Main serves the client and tells the parent how it went.
func Main(ctx context.Context, log *slog.Logger, s *Session) error {
	log = log.With("client", s.Start.Client, "user", s.Start.User, "repo", s.Start.Repo)
	// Partial clones are served unless the repository's own config
	// turns them off (C Git has them off unless it turns them on).
	filter := true
	if s.Repo.Config != nil {
		if v, err := s.Repo.Config.Bool("uploadpack", "", "allowfilter", true); err == nil {
			filter = v
		}
	}
	repoStarted := false
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
			if !repoStarted {
				// The parent starts repo_read on the channel this
				// process holds; what is sent on it waits there.
				if err := ipc.Send(s.Parent, &ipc.RepoWanted{}, nil); err != nil {
					return 0, fmt.Errorf("session_read: %w", err)
				}
				repoStarted = true
			}
			n, sent, err := sendPack(s.RepoRead, s.Repo.Format, req, f, s.Out)
			stats.Out += sent
			switch {
			case len(req.Common) > 0:
				stats.Kind = ipc.KindFetch
			case stats.Kind == ipc.KindLsRefs:
				stats.Kind = ipc.KindClone
			}
			return n, err
		},
	}
	res, err := upload.Serve(ctx, in, out, opts)
	stats.In, stats.Out = uint64(in.Bytes()), stats.Out+uint64(out.Bytes())
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

// report is what the session tells the parent of a fetch that ended
// with res and err.
func report(res *upload.Result, err error) *ipc.SessionEnd {
	end := &ipc.SessionEnd{Status: ipc.StatusOK}
	if err != nil {
		end.Status = ipc.StatusFailed
		end.Error = truncate(wire.ClientMessage(err), ipc.MaxMessage)
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

// sendPack hands the pack request to repo_read with the client's
// output and waits for it to be written. It returns the objects sent
// and the bytes repo_read wrote on the client's stream.
func sendPack(c *msg.Conn, format oid.Format, req *upload.PackRequest, f upload.Framing, out *os.File) (int, uint64, error) {
	lists := [][]oid.ID{ipc.IDsWants: req.Wants, ipc.IDsCommon: req.Common, ipc.IDsShallow: req.Shallow, ipc.IDsClientShallow: req.ClientShallow}
	if err := ipc.SendIDs(c, format, lists); err != nil {
		return 0, 0, fmt.Errorf("session_read: %w", err)
	}
	pr := &ipc.PackRequest{
		Filter: req.Filter.String(), Thin: req.Thin, OfsDelta: req.OfsDelta, IncludeTag: req.IncludeTag,
		Sideband: uint32(f.Sideband), Progress: f.Progress,
	}
	if err := ipc.Send(c, pr, out); err != nil {
		return 0, 0, fmt.Errorf("session_read: %w", err)
	}
	raw, err := c.Recv()
	if err != nil {
		return 0, 0, fmt.Errorf("session_read: repo_read: %w", err)
	}
	switch raw.Type {
	case ipc.TypePackSent:
		var m ipc.PackSent
		if _, err := ipc.Check(raw, &m, false); err != nil {
			return 0, 0, fmt.Errorf("session_read: %w", err)
		}
		return int(m.Objects), m.Bytes, nil
	case ipc.TypeFailed:
		var m ipc.Failed
		if _, err := ipc.Check(raw, &m, false); err != nil {
			return 0, 0, fmt.Errorf("session_read: %w", err)
		}
		// repo_read has told the client on the error band already.
		return 0, m.Bytes, errors.New("session_read: repo_read: " + m.Message)
	}
	if raw.File != nil {
		raw.File.Close()
	}
	return 0, 0, fmt.Errorf("session_read: unexpected message %d from repo_read", raw.Type)
}
