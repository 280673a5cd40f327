package receive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/zlib"

	"gotd/internal/engine/indexer"
	"gotd/internal/engine/merge"
	"gotd/internal/git/commitgraph"
	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/pack"
	"gotd/internal/git/walk"
)

// Server-side rebase (Options.Rebase): an update of a branch whose old
// value is no longer current, because another push moved the branch
// since the client read it, is replayed onto the branch's current value
// when the client was only behind: its old value is an ancestor of the
// current one, and its new value adds a linear range of unsigned,
// non-merge commits on top of its old value. Each commit is replayed
// with a three-way merge of trees (package merge) against the new tip;
// the rebased commits keep their author, message and committer
// identity, with the committer date of the rebase. The rebased update
// then goes through Options.Check and the compare-and-swap as any other,
// with Old the value it was rebased onto; if the branch moves again
// before the swap, the rebase is made again, a bounded number of times.
// Anything else is refused as a stale update is.

// DefaultMaxRebase is the longest range of commits rebased when
// Options.MaxRebase is 0.
const DefaultMaxRebase = 100

// Bounds of one rebase.
const (
	rebaseTimeout = 30 * time.Second // the ancestry walk and the merges of one update
	rebaseRetries = 3                // rebases again when the branch moved before the swap
	maxMadeBytes  = 64 << 20         // objects a push's rebases make, held until written as a pack
)

// made holds the objects a push's rebases wrote, in order, until they
// are written as a pack. It is a merge.Store's writing half.
type made struct {
	f     oid.Format
	order []oid.ID
	objs  map[oid.ID]madeObject
	size  int
}

type madeObject struct {
	t    object.Type
	data []byte
}

var errMadeTooMuch = errors.New("receive: the rebase makes too many objects")

func newMade(f oid.Format) *made { return &made{f: f, objs: map[oid.ID]madeObject{}} }

func (m *made) add(t object.Type, data []byte) (oid.ID, error) {
	id, err := object.ID(m.f, t, data)
	if err != nil {
		return oid.ID{}, err
	}
	if _, ok := m.objs[id]; ok {
		return id, nil
	}
	if m.size += len(data); m.size > maxMadeBytes {
		return oid.ID{}, errMadeTooMuch
	}
	m.objs[id] = madeObject{t, data}
	m.order = append(m.order, id)
	return id, nil
}

// mark and reset drop what a refused rebase made.
func (m *made) mark() int { return len(m.order) }

func (m *made) reset(mark int) {
	for _, id := range m.order[mark:] {
		m.size -= len(m.objs[id].data)
		delete(m.objs, id)
	}
	m.order = m.order[:mark]
}

// rebaseStore reads the pushed objects and the repository (overlay)
// and those the rebase made, and writes into the latter.
type rebaseStore struct {
	overlay
	m *made
}

func (r rebaseStore) ReadObject(id oid.ID) (object.Type, []byte, error) {
	if o, ok := r.m.objs[id]; ok {
		return o.t, o.data, nil
	}
	return r.overlay.ReadObject(id)
}

func (r rebaseStore) HasObject(id oid.ID) bool {
	_, ok := r.m.objs[id]
	return ok || r.overlay.HasObject(id)
}

func (r rebaseStore) StatObject(id oid.ID) (object.Type, int64, error) {
	if o, ok := r.m.objs[id]; ok {
		return o.t, int64(len(o.data)), nil
	}
	return r.overlay.StatObject(id)
}

func (r rebaseStore) ReadObjectPrefix(id oid.ID, dst []byte, n int) (object.Type, []byte, bool, error) {
	if o, ok := r.m.objs[id]; ok {
		if len(o.data) > n {
			return o.t, append(dst, o.data[:n]...), true, nil
		}
		return o.t, append(dst, o.data...), false, nil
	}
	return r.overlay.ReadObjectPrefix(id, dst, n)
}

func (r rebaseStore) WriteObject(t object.Type, data []byte) (oid.ID, error) {
	return r.m.add(t, data)
}

// rebases reports whether c may be rebased if it is stale: a branch
// update (not a creation or deletion) that Options.Rebase names.
func (s *session) rebases(c *Command) bool {
	return s.opts.Rebase != nil && !c.IsDelete() && !c.Old.IsNull() &&
		strings.HasPrefix(c.Name, "refs/heads/") && s.opts.Rebase(c.Name)
}

// refusal is why an update cannot be rebased: the "ng" reason.
type refusal string

func (r refusal) Error() string { return string(r) }

// rebase replays the commits that c's push adds on top of the client's
// old value onto onto, the branch's current value, and makes c that
// update: Pushed the client's new value, Old onto and New the rebased
// tip. A refusal is returned as such (c unchanged); another error is
// an internal failure.
func (s *session) rebase(store rebaseStore, c *Command, onto oid.ID) error {
	// One time budget for all the push's rebases.
	if s.rebaseDeadline.IsZero() {
		s.rebaseDeadline = time.Now().Add(rebaseTimeout)
	}
	ctx, cancel := context.WithDeadline(s.ctx, s.rebaseDeadline)
	defer cancel()
	base, pushed := c.Old, c.New
	if c.Pushed.Valid() {
		base, pushed = c.clientOld, c.Pushed // rebased before: again from the client's own values
	}
	f := s.repo.Format
	w := &walk.Walker{Store: store, Format: f}
	if g, err := commitgraph.Open(s.repo.ObjectsDir(), f); err == nil {
		w.Graph = g
		defer g.Close()
	}
	if ok, err := w.IsAncestor(ctx, base, onto); err != nil || !ok {
		if err != nil && !errors.Is(err, object.ErrNotFound) {
			if ctx.Err() != nil {
				return refusal("cannot rebase: out of time")
			}
			return fmt.Errorf("receive: rebase: %w", err)
		}
		return refusal(ngStale) // not behind: moved elsewhere
	}
	limit := s.opts.MaxRebase
	if limit <= 0 {
		limit = DefaultMaxRebase
	}
	// The range, newest first: the commits the branch does not have
	// yet. One it has already (another push brought it, or a branch
	// the client built on was merged meanwhile) ends the range, so
	// that it is not replayed again (a reverted change would come back).
	var chain []*object.ParsedCommit
	for id := pushed; id != base; {
		if in, err := w.IsAncestor(ctx, id, onto); err != nil {
			if ctx.Err() != nil {
				return refusal("cannot rebase: out of time")
			}
			return fmt.Errorf("receive: rebase: %w", err)
		} else if in {
			break
		}
		if len(chain) == limit {
			return refusal(fmt.Sprintf("cannot rebase: more than %d commits", limit))
		}
		c, err := readCommit(store, f, id)
		if err != nil {
			return err
		}
		switch {
		case len(c.Parents) == 0:
			return refusal(ngStale) // not on top of the old value
		case len(c.Parents) > 1:
			return refusal("cannot rebase: commit " + id.String() + " is a merge")
		}
		for _, h := range c.Extra {
			if bytes.HasPrefix(h, []byte("gpgsig ")) || bytes.HasPrefix(h, []byte("gpgsig-sha256 ")) {
				return refusal("cannot rebase: commit " + id.String() + " is signed")
			}
		}
		chain = append(chain, c)
		id = c.Parents[0]
	}
	if len(chain) == 0 {
		return refusal(ngStale)
	}
	tip := onto
	top, err := readCommit(store, f, onto)
	if err != nil {
		return err
	}
	tipTree := top.Tree
	now := time.Now().Unix()
	for i := len(chain) - 1; i >= 0; i-- {
		if err := ctx.Err(); err != nil {
			return refusal("cannot rebase: out of time")
		}
		c := chain[i]
		parent, err := readCommit(store, f, c.Parents[0])
		if err != nil {
			return err
		}
		tree, err := merge.Trees(ctx, store, f, parent.Tree, tipTree, c.Tree, merge.DefaultLimits)
		var conflict *merge.Conflict
		switch {
		case errors.As(err, &conflict):
			return refusal("cannot rebase: " + showPath(conflict.Path) + " " + conflict.Why)
		case errors.Is(err, errMadeTooMuch), errors.Is(err, merge.ErrTooLarge):
			return refusal("cannot rebase: the rebased commits are too large")
		case err != nil:
			return fmt.Errorf("receive: rebase: %w", err)
		}
		data, err := replay(c, tree, tip, now)
		if err != nil {
			return refusal("cannot rebase: " + err.Error())
		}
		if tip, err = store.WriteObject(object.Commit, data); err != nil {
			if errors.Is(err, errMadeTooMuch) {
				return refusal("cannot rebase: the rebased commits are too large")
			}
			return err
		}
		tipTree = tree
	}
	if !c.Pushed.Valid() {
		c.clientOld, c.Pushed = c.Old, c.New
	}
	c.Old, c.New = onto, tip
	return nil
}

// readCommit reads and parses commit id.
func readCommit(store merge.Store, f oid.Format, id oid.ID) (*object.ParsedCommit, error) {
	t, data, err := store.ReadObject(id)
	if err != nil {
		return nil, fmt.Errorf("receive: rebase: read %s: %w", id, err)
	}
	if t != object.Commit {
		return nil, fmt.Errorf("receive: rebase: %s is a %s, not a commit", id, t)
	}
	return object.ParseCommit(f, data)
}

// replay writes commit c again with tree, one parent, and the committer
// date now (in the committer's time zone); every other header and the
// message are kept byte for byte.
func replay(c *object.ParsedCommit, tree, parent oid.ID, now int64) ([]byte, error) {
	raw := c.Committer.Raw
	gt := bytes.LastIndexByte(raw, '>')
	if gt < 0 || c.Committer.Name == nil {
		return nil, errors.New("a commit has no committer")
	}
	tz := "+0000"
	if sp := bytes.LastIndexByte(raw, ' '); sp > gt {
		if z := raw[sp+1:]; len(z) == 5 && (z[0] == '+' || z[0] == '-') {
			tz = string(z)
		}
	}
	var b bytes.Buffer
	b.WriteString("tree " + tree.String() + "\nparent " + parent.String() + "\n")
	if c.Author.Raw != nil {
		b.WriteString("author ")
		b.Write(c.Author.Raw)
		b.WriteByte('\n')
	}
	b.WriteString("committer ")
	b.Write(raw[:gt+1])
	b.WriteString(" " + strconv.FormatInt(now, 10) + " " + tz + "\n")
	if c.Encoding != nil {
		b.WriteString("encoding ")
		b.Write(c.Encoding)
		b.WriteByte('\n')
	}
	for _, h := range c.Extra {
		b.Write(h)
		b.WriteByte('\n')
	}
	if c.Message != nil {
		b.WriteByte('\n')
		b.Write(c.Message)
	}
	return b.Bytes(), nil
}

// showPath is a path of the client's tree as an "ng" reason may hold
// it: as it is if it is printable ASCII without quotes, else quoted with
// escapes as C Git quotes paths (core.quotePath), so that no control
// character, C1 code or bidirectional override reaches a terminal; at
// most 256 bytes of it.
func showPath(p string) string {
	if len(p) > 256 {
		p = p[:256]
	}
	if strings.ContainsFunc(p, func(r rune) bool { return r < ' ' || r > '~' || r == '"' || r == '\\' }) {
		return strconv.QuoteToASCII(p)
	}
	return p
}

// writeMade writes the objects the rebases made as a pack, indexed and
// checked in the push's quarantine as a pushed pack is; nil if there
// are none.
func (s *session) writeMade(m *made) (*indexer.Result, error) {
	if len(m.order) == 0 {
		return nil, nil
	}
	if s.quarantine == "" {
		dir, hold, err := NewQuarantine(s.repo.ObjectsDir())
		if err != nil {
			return nil, err
		}
		s.quarantine, s.quarantineHold = dir, hold
	}
	var buf bytes.Buffer
	h := s.repo.Format.New()
	w := io.MultiWriter(&buf, h)
	w.Write(pack.AppendHeader(nil, uint32(len(m.order))))
	for _, id := range m.order {
		o := m.objs[id]
		w.Write(pack.AppendEntryHeader(nil, o.t, uint64(len(o.data))))
		zw := zlib.NewWriter(w)
		zw.Write(o.data)
		if err := zw.Close(); err != nil {
			return nil, err
		}
	}
	buf.Write(h.Sum(nil))
	return IndexPack(s.ctx, &buf, s.quarantine, PackOptions{
		Format: s.repo.Format,
		Limits: s.opts.Limits,
		Fsck:   s.opts.Fsck,
		Shared: s.repo.Shared,
	})
}
