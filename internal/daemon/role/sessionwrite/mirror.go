package sessionwrite

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"gotd/internal/daemon/ipc"
	"gotd/internal/engine/indexer"
	"gotd/internal/git/oid"
	"gotd/internal/git/refs"
	"gotd/internal/git/walk"
	"gotd/internal/protocol/receive"
	"gotd/internal/protocol/wire"
)

// mirrorMoveTime bounds the ancestry walks that tell a sync's
// fast-forwards from forced updates, as a push's reflog does.
const mirrorMoveTime = 5 * time.Second

// mirrorSync is session_write's work for a pull mirror (ModeMirror):
// no client, but the fetch process on RepoWrite's channel, which sends
// the reference updates that make the mirror's references the
// upstream's and the pack it indexed in the quarantine. It checks them
// as a push's are checked (names in the mirror's namespaces, every new
// value there with everything it reaches, against the pack and the
// repository), installs the pack and moves the references in one
// transaction whose old values are those the fetch started from; then
// tells the parent (SessionEnd) and describes the moves for
// notifications. On any failure nothing moves and the pack stays in the
// quarantine, which the parent removes.
func mirrorSync(ctx context.Context, log *slog.Logger, s *Session) error {
	cmds, fetched, err := recvFetched(s)
	res := &receive.Result{}
	if err == nil {
		res.Commands = cmds
		err = installMirror(ctx, s, cmds, fetched)
	}
	end := report(res, err)
	if err != nil {
		// For the operator (gotctl info, the log): the fetch process's
		// text or the check that failed; no client sees it.
		end.Error = truncate(err.Error(), ipc.MaxMessage)
		end.Updated, end.Updates = 0, nil
		// A failure of the fetch process is in its own log line, and
		// the parent's: logged once more here only when this
		// process's own checks failed.
		if !errors.As(err, new(fetchFailed)) {
			log.Warn("mirror sync failed", "err", err)
		}
	} else if len(cmds) > 0 {
		log.Info("mirror synced", "updated", len(cmds), "objects", fetched.Count)
	}
	if fetched != nil {
		end.Bytes = fetched.Bytes
	}
	if err := ipc.Send(s.Parent, end, nil); err != nil {
		return fmt.Errorf("session_write: %w", err)
	}
	if err != nil || len(cmds) == 0 || !s.Start.Notify {
		return nil
	}
	return sendNotes(ctx, log, s, cmds)
}

// fetchFailed is the fetch process's own account of its failure.
type fetchFailed string

func (f fetchFailed) Error() string { return string(f) }

// recvFetched reads the fetch process's MirrorRefs and MirrorFetched,
// checking each: a name in the mirror's namespaces (refs/heads and
// refs/tags unless configured), given once, ids of
// the repository's format, pack files in the quarantine.
func recvFetched(s *Session) ([]receive.Command, *ipc.MirrorFetched, error) {
	f := s.Repo.Format
	seen := map[string]bool{}
	namespaces := s.Start.MirrorNamespaces
	if len(namespaces) == 0 {
		namespaces = []string{"refs/heads/", "refs/tags/"}
	}
	var cmds []receive.Command
	id := func(b []byte) (oid.ID, error) {
		if len(b) == 0 {
			return oid.Zero(f), nil
		}
		return oid.FromBytes(f, b)
	}
	for {
		raw, err := s.RepoWrite.Recv()
		if err != nil {
			return nil, nil, fmt.Errorf("fetch process: %w", err)
		}
		switch raw.Type {
		case ipc.TypeMirrorRef:
			var m ipc.MirrorRef
			if _, err := ipc.Check(raw, &m, false); err != nil {
				return nil, nil, fmt.Errorf("fetch process: %w", err)
			}
			if len(cmds) == ipc.MaxMirrorRefs {
				return nil, nil, errors.New("fetch process: too many references")
			}
			if err := refs.CheckName(m.Name); err != nil || seen[m.Name] || !ipc.InNamespaces(m.Name, namespaces) {
				return nil, nil, fmt.Errorf("fetch process: bad reference name %.200q", m.Name)
			}
			seen[m.Name] = true
			c := receive.Command{Name: m.Name}
			if c.Old, err = id(m.Old); err == nil {
				c.New, err = id(m.New)
			}
			if err != nil {
				return nil, nil, fmt.Errorf("fetch process: %s: %w", m.Name, err)
			}
			cmds = append(cmds, c)
		case ipc.TypeFailed:
			var m ipc.Failed
			if _, err := ipc.Check(raw, &m, false); err != nil {
				return nil, nil, fmt.Errorf("fetch process: %w", err)
			}
			return nil, nil, fetchFailed(m.Message)
		case ipc.TypeMirrorFetched:
			var m ipc.MirrorFetched
			if _, err := ipc.Check(raw, &m, false); err != nil {
				return nil, nil, fmt.Errorf("fetch process: %w", err)
			}
			for _, p := range []string{m.Pack, m.Index, m.Rev} {
				if p != "" && filepath.Dir(p) != s.Start.Quarantine {
					return nil, nil, fmt.Errorf("fetch process named %q outside the quarantine", p)
				}
			}
			if m.Count > 0 && (m.Pack == "" || m.Index == "") {
				return nil, nil, errors.New("fetch process: objects without a pack")
			}
			return cmds, &m, nil
		default:
			if raw.File != nil {
				raw.File.Close()
			}
			return nil, nil, fmt.Errorf("fetch process: unexpected message %d", raw.Type)
		}
	}
}

// installMirror installs the fetched pack once the new values are
// checked against it and the repository, then moves the references,
// each reflog entry saying how it moved.
func installMirror(ctx context.Context, s *Session, cmds []receive.Command, m *ipc.MirrorFetched) error {
	if len(cmds) == 0 {
		return nil
	}
	var tips []receive.Tip
	for _, c := range cmds {
		tips = append(tips, receive.Tip{Name: c.Name, ID: c.New})
	}
	in := &receive.Ingest{Repo: s.Repo, Limits: wire.Limits{MaxObjectSize: int64(s.Start.MaxObjectSize)}.WithDefaults()}
	// The walk over a large pack makes a heap of mostly pointer-free
	// data, as the fetch process's indexing does: collected at its
	// target, the initial mirror of git.git peaked at 155 MB here.
	large, restore := receive.GCForPack()
	large(m.Count)
	defer restore()
	// The check of the new values and the references' update hold the
	// prune lock shared, as a push's do (receive's prune.go).
	unlock, err := s.Repo.LockPrune(ctx, false, receive.DefaultPruneWait, nil)
	if err != nil {
		return fmt.Errorf("mirror: %w", err)
	}
	defer unlock()
	res := &indexer.Result{PackPath: m.Pack, IndexPath: m.Index, RevPath: m.Rev, Count: m.Count, ThinBases: int(m.ThinBases), Checksum: m.Checksum}
	if _, err := in.Install(ctx, res, tips); err != nil {
		return fmt.Errorf("mirror: %w", err)
	}
	who := reflogWho(&s.Start)
	who.When = time.Now()
	moves := mirrorMoves(ctx, s, cmds)
	ups := make([]refs.Update, len(cmds))
	for i := range cmds {
		c := &cmds[i]
		c.Move = moves[i]
		w := who
		w.Message = "mirror: " + c.Move
		ups[i] = refs.Update{Name: c.Name, Old: c.Old, New: c.New, Who: w}
	}
	if err := s.Repo.Refs.Update(ups); err != nil {
		for i := range cmds {
			cmds[i].Move = ""
		}
		return fmt.Errorf("mirror: update the references: %w", err)
	}
	return nil
}

// mirrorMoves tells how each reference moves, as a push's reflog says.
func mirrorMoves(ctx context.Context, s *Session, cmds []receive.Command) []string {
	ctx, cancel := context.WithTimeout(ctx, mirrorMoveTime)
	defer cancel()
	w := &walk.Walker{Store: s.Repo, Format: s.Repo.Format}
	moves := make([]string, len(cmds))
	for i, c := range cmds {
		switch {
		case c.Old.IsNull():
			moves[i] = receive.MovedCreated
		case c.IsDelete():
			moves[i] = receive.MovedDeleted
		case ctx.Err() != nil:
			moves[i] = receive.MovedUnknown
		default:
			ff, err := w.IsAncestor(ctx, c.Old, c.New)
			switch {
			case err != nil:
				moves[i] = receive.MovedUnknown // out of time, or a tag moved
			case ff:
				moves[i] = receive.MovedFastForward
			default:
				moves[i] = receive.MovedForced
			}
		}
	}
	return moves
}
