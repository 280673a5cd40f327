package receive

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/refs"
	"gotd/internal/git/repo"
	"gotd/internal/git/walk"
	"gotd/internal/protocol/wire"
)

// Reasons sent on "ng" lines.
const (
	ngMissing   = "missing necessary objects"
	ngNotCommit = "non-commit object pushed to a branch"
	ngStale     = "failed to update ref: it changed on the server"
	ngAtomic    = "atomic push failed"
	ngInstall   = "failed to store the pack"
	ngUpdate    = "failed to update ref"
)

// overlay reads the quarantined pack, then the repository.
type overlay struct {
	rp   *Received
	repo *repo.Repo
}

func (o overlay) ReadObject(id oid.ID) (object.Type, []byte, error) {
	if o.rp != nil && o.rp.Pack.HasObject(id) {
		return o.rp.Pack.ReadObject(id)
	}
	return o.repo.ReadObject(id)
}

func (o overlay) HasObject(id oid.ID) bool {
	return o.rp != nil && o.rp.Pack.HasObject(id) || o.repo.HasObject(id)
}

func (o overlay) StatObject(id oid.ID) (object.Type, int64, error) {
	if o.rp != nil && o.rp.Pack.HasObject(id) {
		return o.rp.Pack.StatObject(id)
	}
	return o.repo.StatObject(id)
}

// apply checks the commands against the received pack, installs the
// pack and updates the references of the commands that pass.
func (s *session) apply(rp *Received) error {
	cmds := s.req.commands
	atomic := s.req.caps.Has("atomic")
	if err := s.verify(rp, cmds); err != nil {
		return err
	}
	failed := false
	for i := range cmds {
		failed = failed || cmds[i].Status != ""
	}
	if atomic && failed {
		for i := range cmds {
			if cmds[i].Status == "" {
				cmds[i].Status = ngAtomic
			}
		}
		return nil
	}
	if failed && !anyOK(cmds) {
		return nil
	}
	hadBranch := s.hasBranch()
	if rp != nil && rp.Index.Count > 0 {
		path, err := Install(rp, s.repo)
		if err != nil {
			s.opts.Log.Error("receive-pack: install pack", "err", err)
			for i := range cmds {
				if cmds[i].Status == "" {
					cmds[i].Status = ngInstall
				}
			}
			return nil
		}
		s.res.Pack = path
		s.repo.Rescan()
	}
	s.updateRefs(cmds, atomic)
	if !hadBranch {
		s.fixHead(cmds)
	}
	return nil
}

func anyOK(cmds []Command) bool {
	for i := range cmds {
		if cmds[i].Status == "" {
			return true
		}
	}
	return false
}

// verify sets the Status of each command whose new value is missing,
// not connected, of the wrong type, or refused by Options.Check.
func (s *session) verify(rp *Received, cmds []Command) error {
	store := overlay{rp: rp, repo: s.repo}
	w := &walk.Walker{Store: store, Format: s.repo.Format}
	var tips []oid.ID
	err := s.repo.Refs.List("refs/", func(r refs.Ref) error {
		tips = append(tips, r.ID)
		return nil
	})
	if err != nil {
		return fmt.Errorf("receive: list references: %w", err)
	}
	for i := range cmds {
		c := &cmds[i]
		if c.IsDelete() {
			continue
		}
		t, _, err := store.StatObject(c.New)
		if err != nil {
			c.Status = ngMissing
			continue
		}
		if strings.HasPrefix(c.Name, "refs/heads/") && t != object.Commit {
			c.Status = ngNotCommit
			continue
		}
		// Everything the new value reaches and no reference did must be
		// in the pack or the repository.
		err = w.Objects(s.ctx, []oid.ID{c.New}, tips, func(oid.ID, object.Type, []byte) error { return nil })
		if err != nil {
			if errors.Is(err, object.ErrNotFound) {
				s.opts.Log.Warn("receive-pack: push not connected", "ref", c.Name, "err", err)
				c.Status = ngMissing
				continue
			}
			return fmt.Errorf("receive: connectivity of %s: %w", c.Name, err)
		}
	}
	if s.opts.Check != nil {
		for i := range cmds {
			if cmds[i].Status != "" {
				continue
			}
			if err := s.opts.Check(s.ctx, &cmds[i]); err != nil {
				s.opts.Log.Info("receive-pack: update refused", "ref", cmds[i].Name, "err", err)
				cmds[i].Status = wire.ClientMessage(err)
			}
		}
	}
	return nil
}

// Install moves a quarantined pack into the repository: the .pack,
// then the .rev, then the .idx (readers look for .idx files), then
// syncs the pack directory. It returns the installed pack's path.
func Install(rp *Received, rep *repo.Repo) (string, error) {
	if rp.Pack != nil {
		rp.Pack.Close()
		rp.Pack = nil
	}
	res := rp.Index
	dest := rep.PackDir()
	var moved []string
	for _, src := range []string{res.PackPath, res.RevPath, res.IndexPath} {
		if src == "" {
			continue
		}
		dst := filepath.Join(dest, filepath.Base(src))
		if _, err := os.Stat(dst); err == nil {
			continue // the same pack is already there
		}
		if err := os.Rename(src, dst); err != nil {
			for _, m := range moved {
				os.Remove(m)
			}
			return "", fmt.Errorf("receive: install %s: %w", filepath.Base(src), err)
		}
		moved = append(moved, dst)
	}
	d, err := os.Open(dest)
	if err == nil {
		err = d.Sync()
		d.Close()
	}
	if err != nil {
		return "", fmt.Errorf("receive: sync %s: %w", dest, err)
	}
	return filepath.Join(dest, filepath.Base(res.PackPath)), nil
}

// updateRefs applies the commands still OK: as one transaction when
// atomic, else one compare-and-swap each.
func (s *session) updateRefs(cmds []Command, atomic bool) {
	update := func(c *Command) refs.Update {
		old := c.Old
		if old.IsNull() {
			old = oid.Zero(s.repo.Format) // must not exist
		}
		return refs.Update{Name: c.Name, Old: old, New: c.New}
	}
	if atomic {
		var ups []refs.Update
		for i := range cmds {
			ups = append(ups, update(&cmds[i]))
		}
		if err := s.repo.Refs.Update(ups); err != nil {
			s.opts.Log.Warn("receive-pack: atomic update failed", "err", err)
			reason := ngUpdate
			if errors.Is(err, refs.ErrConflict) {
				reason = ngStale
			}
			for i := range cmds {
				cmds[i].Status = reason
			}
		}
		return
	}
	for i := range cmds {
		c := &cmds[i]
		if c.Status != "" {
			continue
		}
		if err := s.repo.Refs.Update([]refs.Update{update(c)}); err != nil {
			s.opts.Log.Warn("receive-pack: update failed", "ref", c.Name, "err", err)
			c.Status = ngUpdate
			if errors.Is(err, refs.ErrConflict) {
				c.Status = ngStale
			}
		}
	}
}

// hasBranch reports whether the repository has any branch.
func (s *session) hasBranch() bool {
	errStop := errors.New("stop")
	err := s.repo.Refs.List("refs/heads/", func(refs.Ref) error { return errStop })
	return errors.Is(err, errStop)
}

// fixHead makes HEAD resolve after the first push into a repository
// without branches: if HEAD names a branch that does not exist, it is
// pointed at the first branch the push created.
func (s *session) fixHead(cmds []Command) {
	head, err := s.repo.Refs.Read("HEAD")
	if err != nil || head.Target == "" {
		return
	}
	if _, err := s.repo.Refs.Resolve("HEAD"); err == nil {
		return
	}
	for i := range cmds {
		c := &cmds[i]
		if c.Status == "" && !c.IsDelete() && strings.HasPrefix(c.Name, "refs/heads/") {
			if err := s.repo.Refs.SetSymbolic("HEAD", c.Name); err != nil {
				s.opts.Log.Error("receive-pack: set HEAD", "err", err)
			}
			return
		}
	}
}

// report sends report-status: the unpack result, then a line per
// command, inside band 1 when side-band-64k is on.
func (s *session) report(unpackErr error) error {
	if !s.req.caps.Has("report-status") && !s.req.caps.Has("report-status-v2") {
		return s.bw.Flush()
	}
	var lines []string
	if unpackErr != nil {
		lines = append(lines, "unpack "+wire.ClientMessage(unpackErr)+"\n")
	} else {
		lines = append(lines, "unpack ok\n")
	}
	for _, c := range s.req.commands {
		if c.Status == "" {
			lines = append(lines, "ok "+c.Name+"\n")
		} else {
			lines = append(lines, "ng "+c.Name+" "+c.Status+"\n")
		}
	}
	if s.sb == nil {
		for _, l := range lines {
			if err := s.pw.WriteString(l); err != nil {
				return err
			}
		}
		if err := s.pw.Flush(); err != nil {
			return err
		}
		return s.bw.Flush()
	}
	var buf strings.Builder
	for _, l := range lines {
		fmt.Fprintf(&buf, "%04x%s", len(l)+4, l)
	}
	buf.WriteString("0000")
	if _, err := s.sb.Write([]byte(buf.String())); err != nil {
		return err
	}
	if err := s.pw.Flush(); err != nil {
		return err
	}
	return s.bw.Flush()
}
