package walk

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"gotd/internal/git/commitgraph"
	"gotd/internal/git/object"
	"gotd/internal/git/oid"
)

// InfiniteDepth is the depth "git fetch --unshallow" asks for.
const InfiniteDepth = 0x7fffffff

// Deepen is a shallow request: the deepen family of a fetch.
type Deepen struct {
	// Wants as the client sent them; tags are peeled and wants that do
	// not peel to commits are ignored.
	Wants []oid.ID
	// ClientShallow holds the client's shallow commits that the
	// repository has.
	ClientShallow []oid.ID
	// Depth is "deepen N" (0: unset); Relative counts it from
	// ClientShallow instead of from Wants ("deepen-relative").
	Depth    int
	Relative bool
	// Since ("deepen-since", a Unix time, 0: unset) cuts off commits
	// older than it; Not ("deepen-not", resolved commits) cuts off
	// commits reachable from them.
	Since int64
	Not   []oid.ID
}

// Shallow is the answer to a shallow request.
type Shallow struct {
	// Shallow lists new shallow commits ("shallow" lines); Unshallow the
	// client's shallow commits that no longer are ("unshallow" lines).
	Shallow, Unshallow []oid.ID
	// Boundary is every commit the client is shallow at after the
	// fetch: Shallow and the client's shallow commits not unshallowed.
	// It is what Spec.Shallow takes.
	Boundary []oid.ID
}

// commitInfo is what shallow and negotiation walks need of a commit.
type commitInfo struct {
	parents []oid.ID
	time    int64
}

// commitCache reads commits once, from the commit-graph when it has them.
type commitCache struct {
	w  *Walker
	m  map[oid.ID]*commitInfo
	gc commitgraph.Commit
}

func newCommitCache(w *Walker) *commitCache {
	return &commitCache{w: w, m: make(map[oid.ID]*commitInfo)}
}

// get returns commit id's parents and committer time.
func (c *commitCache) get(id oid.ID) (*commitInfo, error) {
	if ci, ok := c.m[id]; ok {
		return ci, nil
	}
	ci := &commitInfo{}
	if g := c.w.Graph; g != nil {
		if pos, ok := g.Lookup(id); ok {
			if err := g.ReadCommit(pos, &c.gc); err != nil {
				return nil, fmt.Errorf("walk: commit %v: %w", id, err)
			}
			for _, p := range c.gc.Parents {
				pid, err := g.ID(p)
				if err != nil {
					return nil, fmt.Errorf("walk: commit %v: %w", id, err)
				}
				ci.parents = append(ci.parents, pid)
			}
			ci.time = c.gc.Time
			c.m[id] = ci
			return ci, nil
		}
	}
	_, data, err := c.w.read(id, object.Commit, "commit")
	if err != nil {
		return nil, err
	}
	_, ps, when, err := object.CommitLinks(c.w.Format, data, nil)
	if err != nil {
		return nil, fmt.Errorf("walk: commit %v: %w", id, err)
	}
	ci.parents, ci.time = ps, when
	c.m[id] = ci
	return ci, nil
}

// peelCommit peels id through tags; ok is false when it does not end at
// a commit (or is missing).
func (w *Walker) peelCommitOK(id oid.ID) (oid.ID, bool) {
	for i := 0; i < maxTagDepth; i++ {
		if w.Graph != nil {
			if _, ok := w.Graph.Lookup(id); ok {
				return id, true
			}
		}
		t, data, err := w.Store.ReadObject(id)
		if err != nil {
			return id, false
		}
		switch t {
		case object.Commit:
			return id, true
		case object.Tag:
			tag, err := object.ParseTag(w.Format, data)
			if err != nil {
				return id, false
			}
			id = tag.Object
		default:
			return id, false
		}
	}
	return id, false
}

// Deepen computes the new shallow boundary of a fetch as C Git's
// upload-pack does: by depth from the wants (or from the client's
// shallow commits), or by date and excluded references.
func (w *Walker) Deepen(ctx context.Context, d Deepen) (*Shallow, error) {
	if d.Depth > 0 && (d.Since != 0 || len(d.Not) > 0) {
		return nil, errors.New("walk: deepen and deepen-since (or deepen-not) cannot be used together")
	}
	cc := newCommitCache(w)
	notShallow := map[oid.ID]bool{}
	var result []oid.ID
	var err error
	switch {
	case d.Depth >= InfiniteDepth:
		for _, c := range d.ClientShallow {
			notShallow[c] = true
		}
	case d.Depth > 0:
		var heads []oid.ID
		depth := d.Depth
		if d.Relative {
			heads, depth = d.ClientShallow, d.Depth+1
		} else {
			for _, id := range d.Wants {
				if c, ok := w.peelCommitOK(id); ok {
					heads = append(heads, c)
				}
			}
		}
		result, err = shallowByDepth(ctx, cc, heads, depth, notShallow)
	case d.Since != 0 || len(d.Not) > 0:
		result, err = w.shallowByRevList(ctx, cc, d, notShallow)
	}
	if err != nil {
		return nil, err
	}
	client := map[oid.ID]bool{}
	for _, c := range d.ClientShallow {
		client[c] = true
	}
	sh := &Shallow{}
	seen := map[oid.ID]bool{}
	for _, c := range result {
		if !client[c] && !notShallow[c] && !seen[c] {
			seen[c] = true
			sh.Shallow = append(sh.Shallow, c)
		}
	}
	sh.Boundary = append(sh.Boundary, sh.Shallow...)
	for _, c := range d.ClientShallow {
		if notShallow[c] {
			sh.Unshallow = append(sh.Unshallow, c)
		} else if !seen[c] {
			seen[c] = true
			sh.Boundary = append(sh.Boundary, c)
		}
	}
	for _, l := range [][]oid.ID{sh.Shallow, sh.Unshallow, sh.Boundary} {
		slices.SortFunc(l, oid.ID.Compare)
	}
	sh.Unshallow = slices.Compact(sh.Unshallow)
	return sh, nil
}

// shallowByDepth is C Git's get_shallow_commits: a depth-first walk
// from heads that stops at depth, revisiting a commit reached again by
// a shorter path. Commits it walks through are marked in notShallow.
func shallowByDepth(ctx context.Context, cc *commitCache, heads []oid.ID, depth int, notShallow map[oid.ID]bool) ([]oid.ID, error) {
	var result, stack []oid.ID
	depths := map[oid.ID]int{}
	var cur oid.ID
	has := false
	curDepth := 0
	for i, steps := 0, 0; has || i < len(heads) || len(stack) > 0; steps++ {
		if steps%checkEvery == checkEvery-1 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		if !has {
			if i < len(heads) {
				cur = heads[i]
				i++
				depths[cur] = 0
				curDepth = 0
			} else {
				cur = stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				curDepth = depths[cur]
			}
			has = true
		}
		ci, err := cc.get(cur)
		if err != nil {
			return nil, err
		}
		curDepth++
		has = false
		if curDepth >= depth {
			result = append(result, cur)
			continue
		}
		notShallow[cur] = true
		for k, p := range ci.parents {
			if d, ok := depths[p]; ok && curDepth >= d {
				continue
			}
			depths[p] = curDepth
			if k < len(ci.parents)-1 {
				stack = append(stack, p)
			} else {
				cur, has = p, true // its depth is curDepth
			}
		}
	}
	return result, nil
}

// shallowByRevList is C Git's get_shallow_commits_by_rev_list: the
// commits reachable from the wants, not from d.Not and not older than
// d.Since, are kept; those with a parent not kept form the boundary.
func (w *Walker) shallowByRevList(ctx context.Context, cc *commitCache, d Deepen, notShallow map[oid.ID]bool) ([]oid.ID, error) {
	excluded := map[oid.ID]bool{}
	var queue []oid.ID
	for _, id := range d.Not {
		if c, ok := w.peelCommitOK(id); ok && !excluded[c] {
			excluded[c] = true
			queue = append(queue, c)
		}
	}
	for steps := 0; len(queue) > 0; steps++ {
		if steps%checkEvery == checkEvery-1 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		c := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		ci, err := cc.get(c)
		if err != nil {
			return nil, err
		}
		for _, p := range ci.parents {
			if !excluded[p] {
				excluded[p] = true
				queue = append(queue, p)
			}
		}
	}
	kept := map[oid.ID]bool{}
	var order []oid.ID
	seen := map[oid.ID]bool{}
	for _, id := range d.Wants {
		if c, ok := w.peelCommitOK(id); ok && !seen[c] {
			seen[c] = true
			queue = append(queue, c)
		}
	}
	for steps := 0; len(queue) > 0; steps++ {
		if steps%checkEvery == checkEvery-1 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		c := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		if excluded[c] {
			continue
		}
		ci, err := cc.get(c)
		if err != nil {
			return nil, err
		}
		if d.Since != 0 && ci.time < d.Since {
			continue
		}
		kept[c] = true
		order = append(order, c)
		for _, p := range ci.parents {
			if !seen[p] {
				seen[p] = true
				queue = append(queue, p)
			}
		}
	}
	if len(order) == 0 {
		return nil, errors.New("walk: no commits selected for shallow requests")
	}
	var result []oid.ID
	for _, c := range order {
		ci, _ := cc.get(c)
		border := false
		for _, p := range ci.parents {
			if !kept[p] {
				border = true
				break
			}
		}
		if border {
			result = append(result, c)
		} else {
			notShallow[c] = true
		}
	}
	return result, nil
}
