// Package sessionwrite is gotd's session_write process, one per push:
// it runs the receive-pack conversation with the client, has
// repo_write receive and verify the pack into the push's quarantine
// directory, checks every update (connectivity, protected references),
// installs the pack and moves the references. It is the only process
// that writes to a repository.
package sessionwrite

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"gotd/internal/daemon/config"
	"gotd/internal/daemon/ipc"
	"gotd/internal/daemon/msg"
	"gotd/internal/daemon/pushnote"
	"gotd/internal/daemon/stream"
	"gotd/internal/engine/indexer"
	"gotd/internal/git/oid"
	"gotd/internal/git/refs"
	"gotd/internal/git/repo"
	"gotd/internal/git/walk"
	"gotd/internal/policy"
	"gotd/internal/protocol/receive"
	"gotd/internal/protocol/wire"
)

// Session is what the role switch prepares before the sandbox closes.
type Session struct {
	Start     ipc.Start
	Parent    *msg.Conn
	RepoWrite *msg.Conn
	In, Out   *os.File
	Repo      *repo.Repo
}

// Main serves the client and tells the parent what the push changed.
func Main(ctx context.Context, log *slog.Logger, s *Session) error {
	log = log.With("client", s.Start.Client, "user", s.Start.User, "repo", s.Start.Repo)
	protect := &policy.Protection{
		Branches:         s.Start.Branches,
		BranchNamespaces: s.Start.BranchNamespaces,
		TagNamespaces:    s.Start.TagNamespaces,
	}
	push := &s.Start.Push
	if s.Start.Mode != ipc.ModeAdvertise {
		// The locks this push takes are recorded, so that if the
		// process dies holding some, the parent removes them.
		// On a full disk the push goes on without: it will meet the
		// full disk itself and tell the client so.
		j, err := refs.OpenJournal(s.Repo.GitDir, s.Repo.Shared)
		switch {
		case err == nil:
			defer j.Close()
			s.Repo.Refs = s.Repo.Refs.WithJournal(j)
		case receive.NoSpace(err):
			log.Warn("no journal of the push's locks", "err", err)
		default:
			return fmt.Errorf("session_write: %w", err)
		}
		// The quarantine is in use while this process lives, even
		// past the parent.
		hold, err := receive.HoldQuarantine(s.Start.Quarantine)
		if err != nil {
			return fmt.Errorf("session_write: %w", err)
		}
		defer hold.Close()
	}
	if s.Start.Mode == ipc.ModeMirror {
		return mirrorSync(ctx, log, s)
	}
	// The references before the push, read once, for the content
	// rules.
	refsBefore := sync.OnceValue(func() []refs.Ref { return listRefs(s.Repo) })
	in, out := stream.Guard(s.In, s.Out, stream.StartLimits(&s.Start))
	// What the metrics count: an HTTP advertisement lists references.
	stats := &ipc.SessionStats{Kind: ipc.KindPush}
	if s.Start.Mode == ipc.ModeAdvertise {
		stats.Kind = ipc.KindLsRefs
	}
	opts := receive.Options{
		Repo:    s.Repo,
		Version: wire.ParseVersion(s.Start.Protocol),
		Log:     log,
		// Smart HTTP: the advertisement and the request come in
		// separate requests.
		AdvertiseOnly: s.Start.Mode == ipc.ModeAdvertise,
		StatelessRPC:  s.Start.Mode == ipc.ModeStateless,
		Hidden:        policy.Hidden(s.Start.Hidden).Func(),
		Reflog:        reflogWho(&s.Start),
		Check: func(ctx context.Context, cmd *receive.Command, objects walk.Store) error {
			if err := protect.Check(ctx, cmd, objects, s.Repo.Format); err != nil {
				return err
			}
			if err := push.CheckRef(cmd); err != nil {
				return err
			}
			return push.CheckContent(ctx, cmd, objects, s.Repo.Format, refsBefore)
		},
		Rebase:    push.Rebases,
		MaxRebase: push.MaxRebase,
		ReceivePack: func(ctx context.Context, progress func(string, uint32, uint32)) (string, *indexer.Result, error) {
			res, n, err := receivePack(s.RepoWrite, s.Start.Quarantine, s.In, progress)
			stats.In += n
			return s.Start.Quarantine, res, err
		},
	}
	res, err := receive.Serve(ctx, in, out, opts)
	// The client has its answer and repo_write its pack: let go of
	// both, so that the parent can tell the client the push is over
	// while the push is described for notifications.
	s.In.Close()
	s.Out.Close()
	s.RepoWrite.Close()
	stats.In, stats.Out = stats.In+uint64(in.Bytes()), uint64(out.Bytes())
	if err := ipc.Send(s.Parent, stats, nil); err != nil {
		return fmt.Errorf("session_write: %w", err)
	}
	end := report(res, err)
	end.Bytes = stats.In
	if err := ipc.Send(s.Parent, end, nil); err != nil {
		return fmt.Errorf("session_write: %w", err)
	}
	if res == nil || len(res.Commands) == 0 {
		return nil // nothing pushed: an HTTP advertisement, or a client with nothing to push
	}
	log.Info("push done", "updated", len(res.Updated()), "commands", len(res.Commands), "agent", res.Agent)
	if !s.Start.Notify {
		return nil
	}
	return sendNotes(ctx, log, s, res.Updated())
}

// report is what the session tells the parent of a push that ended
// with res and err: how many commands it had and how many moved their
// references, and the first ipc.MaxUpdates of them in request order,
// except that forced updates, deletions and refusals come before
// creations and fast-forwards, so that a long push's log line names
// those first.
func report(res *receive.Result, err error) *ipc.SessionEnd {
	end := &ipc.SessionEnd{Status: ipc.StatusOK}
	if err != nil {
		end.Status = ipc.StatusFailed
		end.Error = truncate(wire.ClientMessage(err), ipc.MaxMessage)
	}
	if res == nil {
		return end
	}
	end.Objects = uint32(min(res.Objects, 1<<32-1))
	end.Commands = uint32(min(len(res.Commands), 1<<32-1))
	for _, c := range res.Commands {
		// Move is set once the push went as far as making updates:
		// one that ended before made none.
		if c.Status == "" && c.Move != "" {
			end.Updated++
		}
	}
	for _, first := range []bool{true, false} {
		for i := range res.Commands {
			c := &res.Commands[i]
			notable := c.Status != "" || c.Move != receive.MovedCreated && c.Move != receive.MovedFastForward
			if notable != first || len(c.Name) > ipc.MaxUpdateName {
				continue
			}
			if len(end.Updates) == ipc.MaxUpdates {
				return end
			}
			u := ipc.Update{Name: c.Name, Old: c.Old.Bytes(), New: c.New.Bytes(), Refused: truncate(c.Status, ipc.MaxMessage)}
			if c.Status == "" {
				u.Move = c.Move
			}
			end.Updates = append(end.Updates, u)
		}
	}
	return end
}

// truncate cuts s to at most n bytes.
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// reflogVia names the transports in reflog messages: a client of gotsh
// came through OpenSSH.
var reflogVia = [...]string{ipc.ViaSocket: "ssh", ipc.ViaSSH: "ssh", ipc.ViaGit: "git", ipc.ViaHTTP: "http"}

// reflogWho is the identity a push's reflog entries record: the
// account or system user the client authenticated as ("anonymous" for
// none; the refs package strips what could break the line and bounds
// it), no email, and the transport.
func reflogWho(st *ipc.Start) refs.Who {
	who := refs.Who{Name: st.User, Message: "push"}
	if via := ipc.Via(st.Client); int(via) < len(reflogVia) {
		who.Message = "push via " + reflogVia[via]
	}
	return who
}

// noteTime bounds the work of describing one push for notifications;
// references past it are told without their commits.
const noteTime = 10 * time.Second

// sendNotes describes each moved reference the repository's notify
// settings want told about and hands the documents to the parent,
// after the session's end: the client does not wait for it.
func sendNotes(ctx context.Context, log *slog.Logger, s *Session, updated []receive.Command) error {
	want := &config.Notify{Branches: s.Start.NotifyBranches, Namespaces: s.Start.NotifyNamespaces}
	ctx, cancel := context.WithTimeout(ctx, noteTime)
	defer cancel()
	origin := pushnote.Origin{Repo: s.Start.Repo, User: s.Start.User}
	others := sync.OnceValue(func() []oid.ID { return tipsBefore(s.Repo, updated) })
	for _, c := range updated {
		if !want.Wants(c.Name) {
			continue
		}
		var tips []oid.ID // for a created reference only
		if c.Old.IsNull() {
			tips = others()
		}
		u := pushnote.Update{Name: c.Name, Old: c.Old, New: c.New, Pushed: c.Pushed}
		doc, err := pushnote.Build(ctx, s.Repo, s.Repo.Format, origin, u, tips, pushnote.DefaultLimits)
		if err != nil {
			// The reference is still told, without what could not be
			// read.
			log.Warn("push note incomplete", "ref", c.Name, "err", err)
		}
		note, err := doc.Encode()
		if err != nil || len(note) > ipc.MaxNote {
			log.Warn("push note too large: sending the reference only", "ref", c.Name, "size", len(note))
			doc.Notifications, doc.MoreCommits = nil, 0
			note, _ = doc.Encode()
		}
		if err := ipc.Send(s.Parent, &ipc.PushNote{Note: note}, nil); err != nil {
			return fmt.Errorf("session_write: %w", err)
		}
	}
	return nil
}

// tipsBefore lists the repository's references as they were before the
// push: their ids now, with the old ids of those the push moved.
func tipsBefore(r *repo.Repo, updated []receive.Command) []oid.ID {
	moved := map[string]bool{}
	var tips []oid.ID
	for _, c := range updated {
		moved[c.Name] = true
		if !c.Old.IsNull() {
			tips = append(tips, c.Old)
		}
	}
	for _, ref := range listRefs(r) {
		if !moved[ref.Name] {
			tips = append(tips, ref.ID)
		}
	}
	return tips
}

// listRefs lists the repository's references that hold ids.
func listRefs(r *repo.Repo) []refs.Ref {
	var rs []refs.Ref
	r.Refs.List("refs/", func(ref refs.Ref) error {
		if ref.Target == "" {
			rs = append(rs, ref)
		}
		return nil
	})
	return rs
}

// receivePack has repo_write read the pack from the client's input
// into the quarantine directory, relaying its progress. It returns
// the bytes repo_write read from the client's input too.
func receivePack(c *msg.Conn, quarantine string, in *os.File, progress func(string, uint32, uint32)) (*indexer.Result, uint64, error) {
	if err := ipc.Send(c, &ipc.RecvPack{}, in); err != nil {
		return nil, 0, fmt.Errorf("session_write: %w", err)
	}
	for {
		raw, err := c.Recv()
		if err != nil {
			return nil, 0, fmt.Errorf("session_write: repo_write: %w", err)
		}
		switch raw.Type {
		case ipc.TypeProgress:
			var m ipc.Progress
			if _, err := ipc.Check(raw, &m, false); err != nil {
				return nil, 0, fmt.Errorf("session_write: %w", err)
			}
			progress(m.Stage, m.Done, m.Total)
		case ipc.TypeFailed:
			var m ipc.Failed
			if _, err := ipc.Check(raw, &m, false); err != nil {
				return nil, 0, fmt.Errorf("session_write: %w", err)
			}
			// A fixed text of the protocol layer, made in repo_write.
			return nil, m.Bytes, wire.Wrap(m.Message, errors.New("repo_write failed"))
		case ipc.TypePackIndexed:
			var m ipc.PackIndexed
			if _, err := ipc.Check(raw, &m, false); err != nil {
				return nil, 0, fmt.Errorf("session_write: %w", err)
			}
			res := &indexer.Result{PackPath: m.Pack, IndexPath: m.Index, RevPath: m.Rev, Count: m.Count, ThinBases: int(m.ThinBases), Checksum: m.Checksum}
			// repo_write may write only in the quarantine: the files
			// it names must be there.
			for _, p := range []string{m.Pack, m.Index, m.Rev} {
				if p != "" && filepath.Dir(p) != quarantine {
					return nil, 0, fmt.Errorf("session_write: repo_write named %q outside the quarantine", p)
				}
			}
			return res, m.Bytes, nil
		default:
			if raw.File != nil {
				raw.File.Close()
			}
			return nil, 0, fmt.Errorf("session_write: unexpected message %d from repo_write", raw.Type)
		}
	}
}
