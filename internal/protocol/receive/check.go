package receive

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"gotd/internal/git/commitgraph"
	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/pack"
	"gotd/internal/git/refs"
	"gotd/internal/git/repo"
	"gotd/internal/git/walk"
	"gotd/internal/protocol/wire"
)

// overlay reads the quarantined pack, then the repository: what the
// repository will hold once the pack is installed.
type overlay struct {
	pack *pack.Pack // nil without a pack
	repo *repo.Repo
}

func (o overlay) ReadObject(id oid.ID) (object.Type, []byte, error) {
	if o.pack != nil && o.pack.HasObject(id) {
		return o.pack.ReadObject(id)
	}
	return o.repo.ReadObject(id)
}

func (o overlay) HasObject(id oid.ID) bool {
	return o.pack != nil && o.pack.HasObject(id) || o.repo.HasObject(id)
}

func (o overlay) StatObject(id oid.ID) (object.Type, int64, error) {
	if o.pack != nil && o.pack.HasObject(id) {
		return o.pack.StatObject(id)
	}
	return o.repo.StatObject(id)
}

// ReadObjectPrefix is repo.Repo.ReadObjectPrefix over the overlay.
func (o overlay) ReadObjectPrefix(id oid.ID, dst []byte, n int) (object.Type, []byte, bool, error) {
	if o.pack != nil {
		if off, ok := o.pack.OffsetOf(id); ok {
			return o.pack.ReadPrefixAt(off, dst, n)
		}
	}
	return o.repo.ReadObjectPrefix(id, dst, n)
}

// current is what the repository's references were when the push was
// checked.
type current struct {
	tips      []oid.ID          // every reference's value
	values    map[string]oid.ID // by name; symbolic references are absent
	symbolic  map[string]bool
	head      string // HEAD's target, "" if HEAD is not symbolic
	hadBranch bool   // some visible reference under refs/heads/ exists
}

// readCurrent lists the references; tips are those of the ones hidden
// does not hide.
func readCurrent(rs *refs.Store, hidden func(refs.Ref) bool) (*current, error) {
	cur := &current{values: map[string]oid.ID{}, symbolic: map[string]bool{}}
	err := rs.List("refs/", func(r refs.Ref) error {
		visible := !hidden(r)
		if visible {
			cur.tips = append(cur.tips, r.ID)
		}
		if r.Target != "" {
			cur.symbolic[r.Name] = true
		} else {
			cur.values[r.Name] = r.ID
		}
		if visible && strings.HasPrefix(r.Name, "refs/heads/") {
			cur.hadBranch = true
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("receive: list references: %w", err)
	}
	if head, err := rs.Read("HEAD"); err == nil {
		cur.head = head.Target
	}
	return cur, nil
}

// check sets the Status of every command that cannot proceed, cheapest
// test first: a stale old value, deleting HEAD's branch, a new value
// that is missing, not a commit on a branch, or not connected, and
// last Options.Check. With the atomic capability one failure fails all.
// The old values are checked again, under lock, by the update itself;
// checking them here tells which command of an atomic push was stale
// and keeps a push whose updates all fail from installing its pack.
// An error is an internal failure: nothing may proceed.
func (s *session) check() error {
	cmds := s.req.commands
	cur, err := readCurrent(s.repo.Refs, s.hiddenRef)
	if err != nil {
		return err
	}
	s.hadBranch = cur.hadBranch
	onto := map[int]oid.ID{} // stale updates to rebase onto the current value
	for i := range cmds {
		c := &cmds[i]
		old, exists := cur.values[c.Name]
		switch {
		case s.hidden(c.Name):
			c.Status = ngHidden
		case !c.IsDelete() && refs.ReservedName(c.Name):
			c.Status = ngFunny
		case cur.symbolic[c.Name]:
			// Update replaces a symbolic reference rather than
			// follow it, and no old value matches one.
			c.Status = ngStale
		case exists && old != c.Old && s.rebases(c):
			onto[i] = old
		case exists && old != c.Old, !exists && !c.Old.IsNull():
			c.Status = ngStale
		case !exists && !c.IsDelete() && nameConflict(s.repo.Refs, c):
			// Update would refuse it: failing it here keeps a push
			// whose updates all fail from installing its pack.
			c.Status = ngUpdate
		case c.IsDelete() && c.Name == cur.head:
			// A clone of a repository whose HEAD names no branch
			// checks nothing out (C Git's receive.denyDeleteCurrent).
			c.Status = ngDeleteCurrent
		}
	}
	store, done, err := s.objects()
	if err != nil {
		return err
	}
	defer done()
	if err := s.checkObjects(store, cmds, cur.tips); err != nil {
		return err
	}
	var m *made
	for _, i := range slices.Sorted(maps.Keys(onto)) {
		c, tip := &cmds[i], onto[i]
		if c.Status != "" || s.req.atomic && !s.allOK() {
			continue
		}
		if m == nil {
			m = newMade(s.repo.Format)
		}
		var r refusal
		mark := m.mark()
		switch err := s.rebase(rebaseStore{store, m}, c, tip); {
		case errors.As(err, &r):
			s.log.Info("update not rebased", "ref", c.Name, "reason", string(r))
			c.Status = string(r)
			m.reset(mark)
		case err != nil:
			return err
		default:
			s.log.Info("update rebased", "ref", c.Name, "pushed", c.Pushed, "onto", c.Old, "new", c.New)
		}
	}
	var objects walk.Store = store
	if m != nil {
		objects = rebaseStore{store, m}
	}
	if s.opts.Check != nil && (!s.req.atomic || s.allOK()) {
		for i := range cmds {
			if cmds[i].Status != "" {
				continue
			}
			if err := s.opts.Check(s.ctx, &cmds[i], objects); err != nil {
				s.log.Info("update refused", "ref", cmds[i].Name, "err", err)
				cmds[i].Status = reason(wire.ClientMessage(err)) // never "": that would mean OK
			}
		}
	}
	if s.req.atomic && !s.allOK() {
		s.setAll(ngAtomic)
	}
	if m != nil && s.anyOK() {
		if s.madePack, err = s.writeMade(m); err != nil {
			return fmt.Errorf("receive: write the rebased commits: %w", err)
		}
	}
	return nil
}

// allOK reports whether every command may still proceed.
func (s *session) allOK() bool {
	for i := range s.req.commands {
		if s.req.commands[i].Status != "" {
			return false
		}
	}
	return true
}

// objects returns what the repository holds with the received pack,
// and a function that closes the pack.
func (s *session) objects() (overlay, func(), error) {
	store := overlay{repo: s.repo}
	if s.pack == nil || s.pack.Count == 0 {
		return store, func() {}, nil
	}
	p, err := pack.Open(s.pack.PackPath, s.repo.Format, pack.Options{
		MaxObjectSize: s.opts.Limits.MaxObjectSize,
		Cache:         pack.NewDeltaCache(16 << 20),
	})
	if err != nil {
		return store, nil, fmt.Errorf("receive: open the received pack: %w", err)
	}
	store.pack = p
	return store, func() { p.Close() }, nil
}

// brought returns a test of whether the client sent an object in its
// pack (thin bases the indexer appended are not sent), and the thin
// bases. The pack's own count is trusted, not repo_write's word.
func (s *session) brought(store overlay) (func(oid.ID) bool, []oid.ID, error) {
	if store.pack == nil {
		return func(oid.ID) bool { return false }, nil, nil
	}
	count := store.pack.Count()
	if s.pack.ThinBases < 0 || s.pack.ThinBases > count {
		return nil, nil, fmt.Errorf("receive: %d thin bases in a pack of %d objects", s.pack.ThinBases, count)
	}
	sent := count - s.pack.ThinBases
	var bases []oid.ID
	for pos := sent; pos < count; pos++ {
		id, err := store.pack.IDAtPackPos(pos)
		if err != nil {
			return nil, nil, fmt.Errorf("receive: thin bases: %w", err)
		}
		bases = append(bases, id)
	}
	return func(id oid.ID) bool {
		pos, ok := store.pack.PackPos(id)
		return ok && pos < sent
	}, bases, nil
}

// checkObjects checks the new value of every command still OK that
// does not delete: it must exist in the pack or the repository, be a
// commit for a branch, and everything it reaches and no reference did
// must be there too (C Git's check_connected).
func (s *session) checkObjects(store overlay, cmds []Command, tips []oid.ID) error {
	var wants []oid.ID
	seen := map[oid.ID]bool{}
	// With hidden references, a branch at an object that is not a
	// commit is told so only once the object is known visible: said
	// at once, it would tell the type of a hidden object.
	var notCommit []int
	for i := range cmds {
		c := &cmds[i]
		if c.Status != "" || c.IsDelete() {
			continue
		}
		t, _, err := store.StatObject(c.New)
		switch {
		case errors.Is(err, object.ErrNotFound):
			s.log.Warn("new value missing", "ref", c.Name, "new", c.New)
			c.Status = ngMissing
			continue
		case err != nil:
			return fmt.Errorf("receive: read %v for %s: %w", c.New, c.Name, err)
		case t != object.Commit && strings.HasPrefix(c.Name, "refs/heads/"):
			s.log.Warn("branch would not point at a commit", "ref", c.Name, "new", c.New, "type", t)
			if s.opts.Hidden == nil {
				c.Status = ngNotCommit
				continue
			}
			notCommit = append(notCommit, i)
		}
		if !seen[c.New] {
			seen[c.New] = true
			wants = append(wants, c.New)
		}
	}
	if len(wants) == 0 {
		return nil
	}
	w := &walk.Walker{Store: store, Format: s.repo.Format}
	if g, err := commitgraph.Open(s.repo.ObjectsDir(), s.repo.Format); err == nil {
		w.Graph = g
		defer g.Close()
	}
	// With hidden references, what the pushed values reach must have
	// come in the pack or be reached by the visible references: the
	// repository's other objects are not the client's to point at, nor
	// (thin bases, looked at as reached by the push) to build deltas
	// on.
	visit := func(oid.ID, object.Type, []byte) error { return nil }
	var thinBases, notBrought []oid.ID
	reached := map[oid.ID]bool{}
	if s.opts.Hidden != nil {
		brought, bases, err := s.brought(store)
		if err != nil {
			return err
		}
		thinBases = bases
		visit = func(id oid.ID, _ object.Type, _ []byte) error {
			if !brought(id) {
				notBrought = append(notBrought, id)
			}
			return nil
		}
	}
	connected := func(wants []oid.ID) (bool, error) {
		notBrought = notBrought[:0]
		err := w.Objects(s.ctx, append(wants, thinBases...), tips, visit)
		if errors.Is(err, object.ErrNotFound) {
			s.log.Warn("push not connected", "err", err)
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("receive: connectivity: %w", err)
		}
		// The walk marks only the edges of the visible history as
		// there: what it listed beyond them may still be in it. Each
		// is decided once, for all the commands.
		var ask []oid.ID
		for _, id := range notBrought {
			if _, known := reached[id]; !known {
				ask = append(ask, id)
			}
		}
		if len(ask) > 0 {
			found, err := w.Reachable(s.ctx, tips, ask)
			if err != nil {
				return false, fmt.Errorf("receive: connectivity: %w", err)
			}
			for _, id := range ask {
				reached[id] = found[id]
			}
		}
		for _, id := range notBrought {
			if !reached[id] {
				s.log.Warn("push not connected: it names an object hidden references alone reach", "id", id)
				return false, nil
			}
		}
		return true, nil
	}
	// One walk for all; only when it fails, one per command to tell
	// which (C Git's iterate_receive_command_list, then
	// set_connectivity_errors).
	ok, err := connected(wants)
	if err != nil {
		return err
	}
	if !ok {
		verdict := map[oid.ID]bool{}
		for i := range cmds {
			c := &cmds[i]
			if c.Status != "" || c.IsDelete() {
				continue
			}
			ok, known := verdict[c.New]
			if !known {
				if ok, err = connected([]oid.ID{c.New}); err != nil {
					return err
				}
				verdict[c.New] = ok
			}
			if !ok {
				c.Status = ngMissing
			}
		}
	}
	for _, i := range notCommit {
		if cmds[i].Status == "" {
			cmds[i].Status = ngNotCommit
		}
	}
	return nil
}

// nameConflict reports whether creating c's reference conflicts with an
// existing one ("a" against "a/b"), as refs.Store.Check tells.
func nameConflict(st *refs.Store, c *Command) bool {
	err := st.Check([]refs.Update{{Name: c.Name, Old: c.Old, New: c.New}})
	return errors.Is(err, refs.ErrConflict)
}
