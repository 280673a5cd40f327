package walk

import (
	"context"
	"errors"
	"math"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
)

// Common is the state of one fetch negotiation (gitprotocol-pack(5),
// "Packfile Negotiation"; gitprotocol-v2(5), "fetch"): the objects the
// client said it has and which wants already reach one of them. It
// follows C Git's upload-pack: do_got_oid for each "have" line,
// ok_to_give_up (can_all_from_reach_with_flag) for Ready.
//
// Ready is incremental. The commits it walked from the wants are kept,
// each with the walked commits it is a parent of, so a later call walks
// only commits no earlier call reached (those a lower oldest-have time
// now lets in) and passes new marks up through the ones already walked:
// over a whole negotiation each commit is read and walked at most once
// (but see Ready on commits dated 0). Memory is a few words per commit
// walked or had. A Common is not safe
// for concurrent use.
type Common struct {
	w   *Walker
	ctx context.Context
	cc  *commitCache

	count  int             // C Git's have_obj.nr
	oldest int64           // C Git's oldest_have: 0 until a commit is had
	had    map[oid.ID]bool // C Git's THEY_HAVE: haves and their parents
	marked []oid.ID        // had since the last Ready

	raw      []oid.ID // the wants as sent, until peelWants
	wants    []oid.ID // the wants that peel to commits, peeled
	started  bool     // the want nodes exist
	left     int      // want nodes that do not reach a had commit yet
	cutoff   int64    // commits older than this are not walked
	nodes    []negNode
	byID     map[oid.ID]int32
	queue    []int32 // nodes to expand
	frontier []int32 // max-heap by time: nodes met but older than cutoff
	steps    int
}

// negNode is a commit Ready has met.
type negNode struct {
	id   oid.ID
	time int64
	// children are the expanded nodes this one is a parent of: they
	// reach a had commit as soon as this one does. Dropped then.
	children []int32
	flags    uint8
}

// Flags of negNode.
const (
	negWant     = 1 << iota // a want peels to it
	negExpanded             // its parents were looked at (or it has none we know)
	negReach                // it is had, or an expanded ancestor path leads to a had commit
	negPending              // in the queue or the frontier
)

// NewCommon starts a negotiation for wants, as the client sent them.
// Tags among them are peeled when first needed; wants that do not peel to a commit
// (or that cannot be read) take no part in Ready, as in C Git.
func (w *Walker) NewCommon(ctx context.Context, wants []oid.ID) *Common {
	return &Common{w: w, ctx: ctx, cc: newCommitCache(w), had: make(map[oid.ID]bool), byID: make(map[oid.ID]int32),
		raw: wants}
}

// peelWants peels the wants the first time Ready needs them: a fetch
// without haves (a clone) never does.
func (c *Common) peelWants() {
	if c.raw == nil {
		return
	}
	for _, id := range c.raw {
		if p, ok := c.w.peelCommitOK(id); ok {
			c.wants = append(c.wants, p)
		}
	}
	c.raw = nil
}

// Have records a "have" line. It returns false, and changes nothing, if
// the repository lacks id. Otherwise it returns true; if id is a commit
// (a tag is not peeled, as in C Git) the commit and its parents are
// marked as had and the oldest have time is lowered to the commit's
// committer time. An error is a failure to read the repository.
func (c *Common) Have(id oid.ID) (bool, error) {
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
		if t != object.Commit {
			// C Git adds every non-commit have to have_obj, repeats too.
			c.count++
			return true, nil
		}
	}
	ci, err := c.cc.get(id)
	if err != nil {
		return false, err
	}
	// A commit already marked, as a have or as a parent of one, is not
	// counted again (do_got_oid's we_knew_they_have), but its parents
	// and time still count.
	if !c.had[id] {
		c.mark(id)
		c.count++
	}
	if c.oldest == 0 || ci.time < c.oldest {
		c.oldest = ci.time
	}
	for _, p := range ci.parents {
		if !c.had[p] {
			c.mark(p)
		}
	}
	return true, nil
}

func (c *Common) mark(id oid.ID) {
	c.had[id] = true
	c.marked = append(c.marked, id)
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

// Count returns C Git's have_obj.nr: the haves Have accepted, except
// that a commit already marked as had (sent before, or a parent of a
// commit sent before) is not counted again, while a tree, blob or tag
// is counted each time it is sent. It is 0 exactly when Have has
// accepted nothing; protocol v0 without multi_ack acknowledges the have
// that makes it 1.
func (c *Common) Count() int { return c.count }

// Ready reports whether the client has said enough for the server to
// stop negotiating: Have accepted something, and every want that peels
// to a commit is, or has as an ancestor, a commit marked as had, found
// without walking through commits older than the oldest have. A want
// that is an ancestor of another counts as reached through it even if
// older than the oldest have: C Git does so with a commit-graph, which
// has it walk the wants oldest first (without one its answer then
// depends on the order of the wants).
//
// A want found to reach stays reached. Later haves only add marks and
// lower the oldest time, with one exception where C Git would answer
// differently: it takes an oldest time of 0, left by a commit dated 0,
// for unset, so the next have raises it, and Ready then walks again
// from the wants not yet reached. The cost is bounded as the type doc
// says; commits come from w.Graph when it has them. An error is a
// failure to read the repository, or the context's.
func (c *Common) Ready() (bool, error) {
	if c.count == 0 {
		return false, nil // ok_to_give_up: nothing in have_obj
	}
	c.peelWants()
	if len(c.had) == 0 {
		// Only trees, blobs and tags had: no commit reaches one.
		return len(c.wants) == 0, nil
	}
	if c.started && c.oldest > c.cutoff {
		// C Git takes an oldest_have of 0, left by a commit dated 0,
		// for unset and replaces it with the next have's time. The
		// walk so far went below the new cut-off: start again,
		// keeping the wants found to reach.
		c.restart()
	}
	if !c.started {
		if err := c.start(); err != nil {
			return false, err
		}
	}
	for _, id := range c.marked {
		if n, ok := c.byID[id]; ok {
			c.reach(n)
		}
	}
	c.marked = c.marked[:0]
	if c.left == 0 {
		return true, nil
	}
	if c.oldest < c.cutoff {
		c.cutoff = c.oldest
		for len(c.frontier) > 0 && c.nodes[c.frontier[0]].time >= c.cutoff {
			c.queue = append(c.queue, c.popFrontier())
		}
	}
	for len(c.queue) > 0 && c.left > 0 {
		if c.steps++; c.steps%checkEvery == 0 {
			if err := c.ctx.Err(); err != nil {
				return false, err
			}
		}
		n := c.queue[len(c.queue)-1]
		c.queue = c.queue[:len(c.queue)-1]
		if err := c.expand(n); err != nil {
			return false, err
		}
	}
	return c.left == 0, nil
}

// start creates the want nodes and queues them. A want is walked
// whatever its time: the cut-off applies to the parents the walk meets.
func (c *Common) start() error {
	c.started = true
	c.cutoff = c.oldest
	for _, id := range c.wants {
		n, err := c.node(id)
		if err != nil {
			return err
		}
		nd := &c.nodes[n]
		if nd.flags&negWant != 0 {
			continue
		}
		nd.flags |= negWant
		if nd.flags&negReach == 0 {
			c.left++
		}
		if nd.flags&negPending == 0 {
			nd.flags |= negPending
			c.queue = append(c.queue, n)
		}
	}
	return nil
}

// restart drops the walk. The wants that reached stay reached: their
// nodes are recreated marked.
func (c *Common) restart() {
	var reached []oid.ID
	for _, nd := range c.nodes {
		if nd.flags&(negWant|negReach) == negWant|negReach {
			reached = append(reached, nd.id)
		}
	}
	clear(c.byID)
	c.nodes, c.queue, c.frontier = c.nodes[:0], c.queue[:0], c.frontier[:0]
	c.started, c.left = false, 0
	for _, id := range reached {
		c.byID[id] = int32(len(c.nodes))
		c.nodes = append(c.nodes, negNode{id: id, flags: negReach})
	}
}

// node returns the node of commit id, creating it.
func (c *Common) node(id oid.ID) (int32, error) {
	if n, ok := c.byID[id]; ok {
		return n, nil
	}
	nd := negNode{id: id}
	ci, err := c.cc.get(id)
	switch {
	case err == nil:
		nd.time = ci.time
	case errors.Is(err, object.ErrNotFound):
		// C Git skips a parent it cannot parse; it can still be had.
		nd.time = math.MinInt64
		nd.flags |= negExpanded
	default:
		return 0, err
	}
	if c.had[id] {
		nd.flags |= negReach
	}
	n := int32(len(c.nodes))
	c.nodes = append(c.nodes, nd)
	c.byID[id] = n
	return n, nil
}

// expand looks at the parents of node n: a parent that reaches makes n
// reach; the others are walked next if not older than the cut-off, and
// wait in the frontier otherwise.
func (c *Common) expand(n int32) error {
	if c.nodes[n].flags&(negExpanded|negReach) != 0 {
		return nil
	}
	c.nodes[n].flags |= negExpanded
	ci, err := c.cc.get(c.nodes[n].id)
	if err != nil {
		return err
	}
	for _, p := range ci.parents {
		pn, err := c.node(p)
		if err != nil {
			return err
		}
		pd := &c.nodes[pn]
		if pd.flags&negReach != 0 {
			c.reach(n)
			return nil
		}
		pd.children = append(pd.children, n)
		if pd.flags&(negExpanded|negPending) != 0 {
			continue
		}
		pd.flags |= negPending
		if pd.time >= c.cutoff {
			c.queue = append(c.queue, pn)
		} else {
			c.pushFrontier(pn)
		}
	}
	return nil
}

// reach marks node n as reaching a had commit, and with it every
// expanded node that leads to it.
func (c *Common) reach(n int32) {
	stack := []int32{n}
	for len(stack) > 0 {
		m := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		md := &c.nodes[m]
		if md.flags&negReach != 0 {
			continue
		}
		md.flags |= negReach
		if md.flags&negWant != 0 {
			c.left--
		}
		stack = append(stack, md.children...)
		md.children = nil
	}
}

// pushFrontier and popFrontier keep c.frontier a binary max-heap by
// commit time.
func (c *Common) pushFrontier(n int32) {
	h := append(c.frontier, n)
	for i := len(h) - 1; i > 0; {
		p := (i - 1) / 2
		if c.nodes[h[i]].time <= c.nodes[h[p]].time {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
	c.frontier = h
}

func (c *Common) popFrontier() int32 {
	h := c.frontier
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < last && c.nodes[h[l]].time > c.nodes[h[m]].time {
			m = l
		}
		if r < last && c.nodes[h[r]].time > c.nodes[h[m]].time {
			m = r
		}
		if m == i {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	c.frontier = h
	return top
}
