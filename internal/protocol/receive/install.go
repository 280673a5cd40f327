package receive

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gotd/internal/engine/indexer"
	"gotd/internal/git/oid"
	"gotd/internal/git/refs"
	"gotd/internal/git/walk"
	"gotd/internal/protocol/wire"
)

// install moves the received pack into the repository, updates the
// references of the commands still OK and, after the first push into a
// repository without branches, points HEAD at a branch that exists.
func (s *session) install() {
	if s.pack != nil && s.pack.Count > 0 {
		path, err := installPack(s.pack, s.repo.PackDir())
		if err != nil {
			s.log.Error("cannot install the pack", "err", err)
			if NoSpace(err) {
				s.setAll(msgNoSpace)
			} else {
				s.setAll(ngInstall)
			}
			return
		}
		s.res.Pack, s.res.Objects = path, int(s.pack.Count)
		s.log.Info("pack installed", "pack", path, "objects", s.pack.Count, "thin-bases", s.pack.ThinBases)
		if err := s.repo.Rescan(); err != nil {
			s.log.Error("cannot rescan the packs", "err", err)
		}
	}
	if !s.installMade() {
		return
	}
	s.updateRefs()
	if !s.hadBranch {
		s.fixHead()
	}
	var named []oid.ID
	for _, c := range s.req.commands {
		if c.Status == "" && !c.IsDelete() {
			named = append(named, c.New)
		}
	}
	s.freshen(named)
}

// installMade installs the pack of the objects rebases made, if any;
// on failure the commands fail as a pushed pack's failure fails them,
// and it returns false.
func (s *session) installMade() bool {
	if s.madePack == nil {
		return true
	}
	path, err := installPack(s.madePack, s.repo.PackDir())
	s.madePack = nil
	if err != nil {
		s.log.Error("cannot install the rebased commits", "err", err)
		if NoSpace(err) {
			s.setAll(msgNoSpace)
		} else {
			s.setAll(ngInstall)
		}
		return false
	}
	s.log.Info("pack of rebased commits installed", "pack", path)
	if err := s.repo.Rescan(); err != nil {
		s.log.Error("cannot rescan the packs", "err", err)
	}
	return true
}

// installPack moves the files of a pack indexed into a quarantine
// directory into packDir: the .pack, then the .rev, then the .idx,
// because readers find packs by their .idx; then it syncs packDir. A
// file already there is left alone: files are named by the pack's
// checksum, so it holds the same pack. On error the files it moved are
// removed again. It returns the installed pack's path.
func installPack(res *indexer.Result, packDir string) (string, error) {
	var moved []string
	for _, src := range []string{res.PackPath, res.RevPath, res.IndexPath} {
		if src == "" {
			continue
		}
		dst := filepath.Join(packDir, filepath.Base(src))
		if _, err := os.Lstat(dst); err == nil {
			// Freshened, as C Git freshens an object written again:
			// a cleanup measures the age of the pack's unreachable
			// objects by it. Best effort: a pack another user owns
			// keeps its time.
			now := time.Now()
			os.Chtimes(dst, now, now)
			continue
		}
		if err := os.Rename(src, dst); err != nil {
			for _, m := range moved {
				os.Remove(m)
			}
			return "", fmt.Errorf("receive: install %s: %w", filepath.Base(src), err)
		}
		moved = append(moved, dst)
	}
	d, err := os.Open(packDir)
	if err == nil {
		err = d.Sync()
		d.Close()
	}
	if err != nil {
		return "", fmt.Errorf("receive: sync the pack directory: %w", err)
	}
	return filepath.Join(packDir, filepath.Base(res.PackPath)), nil
}

// updateRefs applies the commands still OK: with atomic as one
// transaction, else each as its own, every one a compare-and-swap on
// the client's old value.
func (s *session) updateRefs() {
	cmds := s.req.commands
	how := s.reflogHow()
	update := func(c *Command) refs.Update {
		// A null Old is oid.Zero of the format: "must not exist".
		return refs.Update{Name: c.Name, Old: c.Old, New: c.New, Who: how(c)}
	}
	if s.req.atomic {
		ups := make([]refs.Update, len(cmds))
		for i := range cmds {
			ups[i] = update(&cmds[i])
		}
		if err := s.repo.Refs.Update(ups); err != nil {
			s.log.Warn("atomic update failed", "err", err)
			stale := false
			for i := range cmds {
				if s.staleNow(&cmds[i]) {
					cmds[i].Status, stale = ngStale, true
				}
			}
			switch {
			case stale:
				s.setAll(ngAtomic)
			case errors.Is(err, refs.ErrLocked):
				s.setAll(ngLocked)
			case NoSpace(err):
				s.setAll(msgNoSpace)
			default:
				s.setAll(ngAtomicTx)
			}
		}
		return
	}
	for i := range cmds {
		c := &cmds[i]
		if c.Status != "" {
			continue
		}
		err := s.repo.Refs.Update([]refs.Update{update(c)})
		// A rebased update whose branch moved again meanwhile is
		// rebased again onto the new value.
		for try := 0; err != nil && try < rebaseRetries && c.Pushed.Valid() && s.staleNow(c); try++ {
			if !s.rebaseAgain(c) {
				break
			}
			err = s.repo.Refs.Update([]refs.Update{update(c)})
		}
		if c.Status != "" {
			continue // refused by rebaseAgain
		}
		if err != nil {
			s.log.Warn("update failed", "ref", c.Name, "err", err)
			switch {
			case s.staleNow(c):
				c.Status = ngStale
			case errors.Is(err, refs.ErrLocked):
				c.Status = ngLocked
			case NoSpace(err):
				c.Status = msgNoSpace
			default:
				c.Status = ngUpdate
			}
		}
	}
}

// rebaseAgain rebases c, whose rebased update found its branch moved
// again, onto the branch's new value: checked, its objects installed,
// ready for another compare-and-swap. It returns false, with c's
// Status set, if c may not proceed.
func (s *session) rebaseAgain(c *Command) bool {
	cur, err := s.repo.Refs.Read(c.Name)
	if err != nil || cur.Target != "" {
		c.Status = ngStale
		return false
	}
	m := newMade(s.repo.Format)
	store := rebaseStore{overlay{repo: s.repo}, m}
	var r refusal
	switch err := s.rebase(store, c, cur.ID); {
	case errors.As(err, &r):
		c.Status = string(r)
		return false
	case err != nil:
		s.log.Error("cannot rebase again", "ref", c.Name, "err", err)
		c.Status = ngInternal
		return false
	}
	if s.opts.Check != nil {
		if err := s.opts.Check(s.ctx, c, store); err != nil {
			s.log.Info("update refused", "ref", c.Name, "err", err)
			c.Status = reason(wire.ClientMessage(err))
			return false
		}
	}
	if s.madePack, err = s.writeMade(m); err != nil {
		s.log.Error("cannot write the rebased commits", "ref", c.Name, "err", err)
		c.Status = ngInternal
		return false
	}
	if !s.installMade() {
		return false
	}
	s.log.Info("update rebased again", "ref", c.Name, "pushed", c.Pushed, "onto", c.Old, "new", c.New)
	return true
}

// Moves of a reference, as a reflog entry's message and
// Command.Move tell them.
const (
	MovedRebased     = "rebased"
	MovedCreated     = "created"
	MovedDeleted     = "deleted"
	MovedFastForward = "fast-forward"
	MovedForced      = "forced-update"
	MovedUnknown     = "moved" // not decided in reflogTime
)

// reflogTime bounds the ancestry walks that tell a push's fast-forwards
// from forced updates, for all its references together; those left
// when it is over are logged as "moved".
const reflogTime = 5 * time.Second

// reflogHow returns the function that makes the reflog entry of each
// command: Options.Reflog's identity and a message that ends in how the
// reference moves. It is called before the references are locked, so
// that no walk runs under a lock.
func (s *session) reflogHow() func(c *Command) refs.Who {
	who := s.opts.Reflog
	who.When = time.Now()
	if who.Name == "" {
		who.Name = "anonymous"
	}
	prefix := who.Message
	if prefix == "" {
		prefix = "push"
	}
	ctx, cancel := context.WithTimeout(s.ctx, reflogTime)
	w := &walk.Walker{Store: s.repo, Format: s.repo.Format}
	moves := make(map[*Command]string)
	for i := range s.req.commands {
		c := &s.req.commands[i]
		if c.Status != "" {
			continue
		}
		switch {
		case c.Pushed.Valid():
			moves[c] = MovedRebased
		case c.Old.IsNull():
			moves[c] = MovedCreated
		case c.IsDelete():
			moves[c] = MovedDeleted
		case ctx.Err() != nil:
			moves[c] = MovedUnknown
		default:
			ff, err := w.IsAncestor(ctx, c.Old, c.New)
			switch {
			case err != nil:
				// Out of time, or not commits (a tag moved): not
				// told apart.
				moves[c] = MovedUnknown
			case ff:
				moves[c] = MovedFastForward
			default:
				moves[c] = MovedForced
			}
		}
	}
	cancel()
	for c, m := range moves {
		c.Move = m
	}
	return func(c *Command) refs.Who {
		w := who
		w.Message = prefix + ": " + moves[c]
		return w
	}
}

// staleNow reports whether c's reference no longer has c's old value.
// The refs package's errors name references and paths; which of them
// failed is learnt by reading the reference again instead.
func (s *session) staleNow(c *Command) bool {
	r, err := s.repo.Refs.Read(c.Name)
	switch {
	case errors.Is(err, refs.ErrNotFound):
		return !c.Old.IsNull()
	case err != nil:
		return false
	}
	return r.Target != "" || r.ID != c.Old
}

// fixHead makes HEAD resolve after the first push into a repository
// that had no branch: if HEAD names a branch that does not exist, it
// is pointed at the first branch the push created, in command order.
func (s *session) fixHead() {
	rs := s.repo.Refs
	head, err := rs.Read("HEAD")
	if err != nil || head.Target == "" {
		return // no HEAD, or detached: nothing to follow
	}
	if _, err := rs.Resolve("HEAD"); !errors.Is(err, refs.ErrNotFound) {
		return // it resolves (HEAD's branch was pushed), or is broken otherwise
	}
	for _, c := range s.req.commands {
		if c.Status == "" && !c.IsDelete() && strings.HasPrefix(c.Name, "refs/heads/") {
			if err := rs.SetSymbolic("HEAD", c.Name); err != nil {
				s.log.Error("cannot point HEAD at the pushed branch", "ref", c.Name, "err", err)
				return
			}
			s.log.Info("HEAD points at the first pushed branch", "ref", c.Name, "was", head.Target)
			return
		}
	}
}

// InstallPack moves a pack IndexPack indexed into a quarantine
// directory into packDir, as a push installs its pack (.pack, .rev,
// then .idx, then a sync of packDir), and returns the installed pack's
// path. gotadmin load installs a bundle's pack with it.
func InstallPack(res *indexer.Result, packDir string) (string, error) {
	return installPack(res, packDir)
}
