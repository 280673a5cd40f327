package walk

import (
	"context"
	"errors"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
)

// Common is the state of one fetch negotiation: the objects the client
// said it has, and which wants already reach one of them. It follows C
// Git's upload-pack (do_got_oid, ok_to_give_up).
type Common struct {
	w      *Walker
	ctx    context.Context
	cc     *commitCache
	wants  []oid.ID // peeled to commits
	done   []bool   // wants known to reach a had commit
	had    map[oid.ID]bool
	reach  map[oid.ID]bool // commits known to reach a had commit
	count  int
	oldest int64
	seen   map[oid.ID]bool // accepted haves
}

// NewCommon starts a negotiation for wants. Wants that do not peel to
// commits count as reached from the start.
func (w *Walker) NewCommon(ctx context.Context, wants []oid.ID) *Common {
	c := &Common{w: w, ctx: ctx, cc: newCommitCache(w), had: map[oid.ID]bool{},
		reach: map[oid.ID]bool{}, seen: map[oid.ID]bool{}}
	for _, id := range wants {
		if p, ok := w.peelCommitOK(id); ok {
			c.wants = append(c.wants, p)
			c.done = append(c.done, false)
		}
	}
	return c
}

// Have records a have line. It returns false if the repository lacks
// id. For a commit (a tag is not peeled), it and its parents are marked
// as had, and the oldest have time is lowered to its time.
func (c *Common) Have(id oid.ID) (bool, error) {
	if c.seen[id] {
		return true, nil
	}
	isCommit := false
	if c.w.Graph != nil {
		_, isCommit = c.w.Graph.Lookup(id)
	}
	if !isCommit {
		t, err := c.typeOf(id)
		if err != nil {
			if errors.Is(err, object.ErrNotFound) {
				return false, nil
			}
			return false, err
		}
		isCommit = t == object.Commit
	}
	c.seen[id] = true
	c.count++
	if !isCommit {
		return true, nil
	}
	ci, err := c.cc.get(id)
	if err != nil {
		return false, err
	}
	c.had[id] = true
	for _, p := range ci.parents {
		c.had[p] = true
	}
	if c.oldest == 0 || ci.time < c.oldest {
		c.oldest = ci.time
	}
	return true, nil
}

// typeOf returns the type of id without reading its content when the
// store can tell.
func (c *Common) typeOf(id oid.ID) (object.Type, error) {
	if s, ok := c.w.Store.(statObjecter); ok {
		t, _, err := s.StatObject(id)
		return t, err
	}
	t, _, err := c.w.Store.ReadObject(id)
	return t, err
}

// Count returns how many distinct objects Have accepted.
func (c *Common) Count() int { return c.count }

// Ready reports whether every want reaches a commit the client has,
// walking no commit older than the oldest have: then the client has
// told enough for a small pack and negotiation may stop. A want once
// found to reach stays reached.
func (c *Common) Ready() (bool, error) {
	if len(c.had) == 0 {
		return len(c.wants) == 0, nil
	}
	for i, want := range c.wants {
		if c.done[i] {
			continue
		}
		ok, err := c.reaches(want)
		if err != nil {
			return false, err
		}
		if !ok {
			return false, nil
		}
		c.done[i] = true
	}
	return true, nil
}

// reaches walks from start down to commits not older than the oldest
// have, looking for a had commit. Commits on a path that found one are
// remembered.
func (c *Common) reaches(start oid.ID) (bool, error) {
	type frame struct {
		id   oid.ID
		next int
	}
	if c.had[start] || c.reach[start] {
		return true, nil
	}
	visited := map[oid.ID]bool{start: true}
	stack := []frame{{id: start}}
	for steps := 0; len(stack) > 0; steps++ {
		if steps%checkEvery == checkEvery-1 {
			if err := c.ctx.Err(); err != nil {
				return false, err
			}
		}
		top := &stack[len(stack)-1]
		ci, err := c.cc.get(top.id)
		if err != nil {
			if errors.Is(err, object.ErrNotFound) {
				stack = stack[:len(stack)-1]
				continue
			}
			return false, err
		}
		if top.next >= len(ci.parents) {
			stack = stack[:len(stack)-1]
			continue
		}
		p := ci.parents[top.next]
		top.next++
		if c.had[p] || c.reach[p] {
			for _, f := range stack {
				c.reach[f.id] = true
			}
			return true, nil
		}
		if visited[p] {
			continue
		}
		visited[p] = true
		pi, err := c.cc.get(p)
		if err != nil {
			if errors.Is(err, object.ErrNotFound) {
				continue
			}
			return false, err
		}
		if pi.time < c.oldest {
			continue
		}
		stack = append(stack, frame{id: p})
	}
	return false, nil
}
