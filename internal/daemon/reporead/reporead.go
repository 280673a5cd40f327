// Package reporead is gotd's repo_read process, one per fetch or
// clone: on its session's request it builds the pack the negotiation
// settled on and writes it, framed on the side-band the client chose,
// straight onto the client's stream, which the session passed it. It
// has a read-only view of one repository and nothing else.
package reporead

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"gotd/internal/daemon/ipc"
	"gotd/internal/daemon/memlimit"
	"gotd/internal/daemon/msg"
	"gotd/internal/daemon/stream"
	"gotd/internal/git/repo"
	"gotd/internal/git/walk"
	"gotd/internal/policy"
	"gotd/internal/protocol/pktline"
	"gotd/internal/protocol/sideband"
	"gotd/internal/protocol/upload"
	"gotd/internal/protocol/wire"
)

// Main serves pack requests until the session's channel closes.
func Main(ctx context.Context, log *slog.Logger, start *ipc.Start, session *msg.Conn, r *repo.Repo) error {
	log = log.With("client", start.Client, "repo", start.Repo)
	var ids ipc.IDLists
	for {
		raw, err := session.Recv()
		if err != nil {
			return nil // the session is done
		}
		switch raw.Type {
		case ipc.TypeIDs:
			var m ipc.IDs
			if _, err := ipc.Check(raw, &m, false); err != nil {
				return fmt.Errorf("repo_read: %w", err)
			}
			if err := ipc.AddIDs(&ids, r.Format, &m); err != nil {
				return fmt.Errorf("repo_read: %w", err)
			}
		case ipc.TypePackRequest:
			var m ipc.PackRequest
			out, err := ipc.Check(raw, &m, true)
			if err != nil {
				return fmt.Errorf("repo_read: %w", err)
			}
			// Past its memory budget the process ends; on a side-band
			// the client is told first.
			if m.Sideband != 0 {
				memlimit.SetTell(func() { pktline.NewWriter(out).WriteString("\x03" + memlimit.Message + "\n") })
			}
			// The pack is written within the client's limits: a client
			// that reads it too slowly holds this process no longer
			// than one that sends too slowly holds its session.
			_, w := stream.Guard(nil, out, stream.StartLimits(start))
			reply, err := send(ctx, r, &m, &ids, policy.Hidden(start.Hidden).Func(), w)
			memlimit.SetTell(nil)
			switch reply := reply.(type) {
			case *ipc.PackSent:
				reply.Bytes = uint64(w.Bytes())
			case *ipc.Failed:
				reply.Bytes = uint64(w.Bytes())
			}
			out.Close()
			if err != nil {
				log.Error("pack failed", "err", err)
			} else {
				sent := reply.(*ipc.PackSent)
				log.Info("pack sent", "objects", sent.Objects, "bytes", sent.Bytes,
					"wants", len(ids[ipc.IDsWants]), "haves", len(ids[ipc.IDsCommon]))
			}
			if err := ipc.Send(session, reply, nil); err != nil {
				return fmt.Errorf("repo_read: %w", err)
			}
			ids = ipc.IDLists{}
		default:
			if raw.File != nil {
				raw.File.Close()
			}
			return fmt.Errorf("repo_read: unexpected message %d", raw.Type)
		}
	}
}

// send writes the pack of one request to out and returns the reply
// for the session.
func send(ctx context.Context, r *repo.Repo, m *ipc.PackRequest, ids *ipc.IDLists, hidden func(string) bool, out io.Writer) (ipc.Message, error) {
	f := upload.Framing{Sideband: int(m.Sideband), Progress: m.Progress}
	if f.Sideband != 0 && f.Sideband != sideband.MaxPacket && f.Sideband != sideband.MaxPacket64 {
		return &ipc.Failed{Message: "internal server error"}, errors.New("repo_read: bad side-band size")
	}
	var filter walk.Filter
	if m.Filter != "" {
		var err error
		if filter, err = walk.ParseFilter(m.Filter); err != nil {
			return &ipc.Failed{Message: "internal server error"}, fmt.Errorf("repo_read: %w", err)
		}
	}
	req := &upload.PackRequest{
		Wants: ids[ipc.IDsWants], Common: ids[ipc.IDsCommon],
		Shallow: ids[ipc.IDsShallow], ClientShallow: ids[ipc.IDsClientShallow],
		Filter: filter, Thin: m.Thin, OfsDelta: m.OfsDelta, IncludeTag: m.IncludeTag, Hidden: hidden,
	}
	n, err := upload.SendPack(ctx, r, req, f, out)
	if err != nil {
		return &ipc.Failed{Message: wire.ClientMessage(err)}, err
	}
	return &ipc.PackSent{Objects: uint32(n)}, nil
}
