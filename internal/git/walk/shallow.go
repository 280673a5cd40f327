package walk

import (
	"context"
	"errors"
	"slices"

	"gotd/internal/git/commitgraph"
	"gotd/internal/git/oid"
)

// InfiniteDepth is the depth "git fetch --unshallow" asks for ("deepen
// 2147483647"): everything, which unshallows the client.
const InfiniteDepth = 0x7fffffff

// Deepen is a shallow request: the "shallow" and deepen lines of a
// fetch (gitprotocol-v2(5), "fetch"; gitprotocol-pack(5), "Packfile
// Negotiation"), already parsed and resolved by the caller.
type Deepen struct {
	// Wants as the client sent them; tags are peeled and wants that do
	// not peel to commits are ignored.
	Wants []oid.ID
	// ClientShallow holds the client's shallow commits ("shallow"
	// lines); the caller drops those the repository lacks, as C Git
	// does, and refuses those that are not commits.
	ClientShallow []oid.ID
	// Depth is "deepen N" (0: unset); Relative counts it from
	// ClientShallow instead of from Wants ("deepen-relative").
	Depth    int
	Relative bool
	// Since ("deepen-since", a Unix time, 0: unset) cuts off commits
	// whose committer time is older; Not ("deepen-not", the commits or
	// tags the named references resolve to) cuts off commits reachable
	// from them.
	Since int64
	Not   []oid.ID
}

// Shallow is the answer to a shallow request, its lists sorted by id.
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
	_, ps, _, when, err := c.w.links(id, nil, &c.gc)
	if err != nil {
		return nil, err
	}
	ci := &commitInfo{parents: ps, time: when}
	c.m[id] = ci
	return ci, nil
}

// peelCommitOK peels id through tags; ok is false when it does not end
// at a commit (or something on the way is missing or unreadable).
func (w *Walker) peelCommitOK(id oid.ID) (oid.ID, bool) {
	c, err := w.peelToCommit(id)
	return c, err == nil && c.Valid()
}

// Deepen computes the shallow boundary of a fetch as C Git's upload-pack
// does (deepen, get_shallow_commits and get_shallow_commits_by_rev_list)
// for a repository that is not itself shallow; gitprotocol-v2(5),
// "fetch", describes the arguments and the "shallow-info" section.
//
// By depth (d.Depth > 0) the boundary is the commits at distance
// d.Depth-1 from the nearest want, counted in parent links; with
// d.Relative, at distance d.Depth from the nearest client shallow
// commit. InfiniteDepth unshallows every client shallow commit and adds
// none. By date and exclusion (d.Since, d.Not) the commits kept are
// those reachable from the wants as rev-list --max-age=<since> --not
// <not> walks them, and the boundary is those of them with a parent not
// kept. Client shallow commits the walk passes through are unshallowed.
//
// Depth together with Since or Not, and a negative Depth, are errors; so
// is a date and exclusion walk that keeps no commit. A missing commit
// on the walk is an error wrapping object.ErrNotFound. The lists of the
// result are sorted by id.
func (w *Walker) Deepen(ctx context.Context, d Deepen) (*Shallow, error) {
	if d.Depth < 0 {
		return nil, errors.New("walk: negative deepen depth")
	}
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

// shallowByRevList is C Git's get_shallow_commits_by_rev_list over
// "rev-list --max-age=<since> --not <not> --not <wants>": the commits
// reachable from the wants, not from d.Not and not older than d.Since,
// are kept; those with a parent not kept form the boundary.
//
// The two ways rev-list walks differ where committer times are not in
// order along the history. With d.Not set the walk is limited: a commit
// older than d.Since is excluded with all its ancestors (limit_list
// marks it uninteresting). Otherwise only the commit is excluded, and
// its parents are kept if a newer path reaches them (get_revision_1
// skips it without walking its parents).
func (w *Walker) shallowByRevList(ctx context.Context, cc *commitCache, d Deepen, notShallow map[oid.ID]bool) ([]oid.ID, error) {
	excluded := map[oid.ID]bool{}
	var queue []oid.ID
	steps := 0
	tick := func() error {
		if steps++; steps%checkEvery == 0 {
			return ctx.Err()
		}
		return nil
	}
	// exclude marks the ancestors of queue, and queue itself, excluded.
	exclude := func() error {
		for len(queue) > 0 {
			if err := tick(); err != nil {
				return err
			}
			c := queue[len(queue)-1]
			queue = queue[:len(queue)-1]
			ci, err := cc.get(c)
			if err != nil {
				return err
			}
			for _, p := range ci.parents {
				if !excluded[p] {
					excluded[p] = true
					queue = append(queue, p)
				}
			}
		}
		return nil
	}
	for _, id := range d.Not {
		if c, ok := w.peelCommitOK(id); ok && !excluded[c] {
			excluded[c] = true
			queue = append(queue, c)
		}
	}
	if err := exclude(); err != nil {
		return nil, err
	}
	limited := len(d.Not) > 0
	var order, old []oid.ID
	seen := map[oid.ID]bool{}
	for _, id := range d.Wants {
		if c, ok := w.peelCommitOK(id); ok && !seen[c] {
			seen[c] = true
			queue = append(queue, c)
		}
	}
	for len(queue) > 0 {
		if err := tick(); err != nil {
			return nil, err
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
			if limited {
				old = append(old, c)
			}
			continue
		}
		order = append(order, c)
		for _, p := range ci.parents {
			if !seen[p] {
				seen[p] = true
				queue = append(queue, p)
			}
		}
	}
	for _, c := range old {
		if !excluded[c] {
			excluded[c] = true
			queue = append(queue, c)
		}
	}
	if err := exclude(); err != nil {
		return nil, err
	}
	kept := make(map[oid.ID]bool, len(order))
	for _, c := range order {
		if !excluded[c] {
			kept[c] = true
		}
	}
	if len(kept) == 0 {
		return nil, errors.New("walk: no commits selected for shallow requests")
	}
	var result []oid.ID
	for _, c := range order {
		if !kept[c] {
			continue
		}
		ci, err := cc.get(c)
		if err != nil {
			return nil, err
		}
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
