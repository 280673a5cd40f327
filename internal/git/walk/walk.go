// Package walk finds what a fetch must send: the commits, trees, blobs
// and tags reachable from the objects a client wants and not from those
// it has. It reads commits from the commit-graph when there is one and
// uses the reachability bitmaps of a pack when given them.
//
// For the upload-pack side of a fetch it also answers, as C Git does,
// the other questions of the protocol: where a shallow clone's history
// is cut (Deepen), which objects a shallow or partial fetch sends
// (ObjectsFor with a Spec and a Filter), and when negotiation may stop
// (Common).
//
// Memory is proportional to the number of objects visited (a set of
// ids, or one bit per object of the bitmapped pack), never to their
// contents: trees are read one at a time and dropped once iterated.
package walk

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"gotd/internal/git/bitmap"
	"gotd/internal/git/commitgraph"
	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/pack"
)

// Store is where the walk reads objects from. ReadObject returns an
// error wrapping object.ErrNotFound for an absent object. The returned
// data is owned by the walk until the next call returns: a Store must
// not reuse it for the following object while the walk holds it (a
// fresh slice per call satisfies this).
//
// A Store may also implement HasObject(oid.ID) bool; the walk then
// checks that blobs, which it never reads, exist.
type Store interface {
	ReadObject(id oid.ID) (object.Type, []byte, error)
}

// hasObjecter is the optional existence check of a Store.
type hasObjecter interface {
	HasObject(id oid.ID) bool
}

// statObjecter is the optional type and size lookup of a Store, which
// filters by blob size and negotiation use when the Store has it.
type statObjecter interface {
	StatObject(id oid.ID) (object.Type, int64, error)
}

// readIntoer is the optional buffer-reusing read of a Store
// (repo.Repo.ReadObjectInto): the tree walk reads every tree once and
// keeps none.
type readIntoer interface {
	ReadObjectInto(id oid.ID, dst []byte) (object.Type, []byte, error)
}

// prefixReader is the optional reading of an object's start
// (repo.Repo.ReadObjectPrefix): the commit walk needs only the headers.
type prefixReader interface {
	ReadObjectPrefix(id oid.ID, dst []byte, n int) (object.Type, []byte, bool, error)
}

// commitPrefix is how much of a commit the walk reads first: enough for
// the headers up to the committer of all but octopus merges and
// unusual commits, which are then read whole.
const commitPrefix = 512

// Walker walks the history of one repository. Store and Format are
// required; Graph and Bitmap speed the walk up when set. A Walker holds
// no state between calls and may be used by several goroutines at once
// if its Store, Graph and Bitmap may.
type Walker struct {
	Store  Store
	Format oid.Format
	// Graph, if not nil, supplies commit parents, trees and times without
	// reading commit objects.
	Graph *commitgraph.Graph
	// Bitmap, if not nil, is the reachability bitmap of the repository's
	// bitmapped pack, opened with that pack as its IndexLookup. Objects
	// then computes the set to send as bitsets and reports it in pack
	// order, walking only from tips the bitmaps do not cover.
	Bitmap *bitmap.Index
}

// maxTagDepth bounds a chain of tags pointing at tags.
const maxTagDepth = 64

// checkEvery is how many steps pass between checks of the context.
const checkEvery = 1024

// Objects calls fn once for every object reachable from wants and not
// from haves: annotated tags and commits first (commits newest first),
// then the trees and blobs in the order a depth-first walk of each
// commit's tree finds them, then trees and blobs named directly by
// tags. path is the path the tree or blob was found under ("" for a
// root tree) and nil for commits and tags; fn must not retain it.
// Gitlinks (submodule commits) are never followed.
//
// With w.Bitmap set the order differs: the objects of the bitmapped pack
// come first in pack order (good for reusing its deltas), then those
// outside it in walk order, and every path is nil.
//
// Haves that are not in the repository are ignored. A want, or an object
// reachable from a want, that is missing is an error wrapping
// object.ErrNotFound and naming the id. Without bitmaps the haves side
// is walked as C Git's rev-list does: only as far back as the wants'
// history needs, so an object reachable from an old have may still be
// listed; with bitmaps the difference is exact. An error from fn stops
// the walk and is returned.
func (w *Walker) Objects(ctx context.Context, wants, haves []oid.ID, fn func(id oid.ID, t object.Type, path []byte) error) error {
	if w.Bitmap != nil {
		return w.bitmapObjects(ctx, wants, haves, false, func(id oid.ID, t object.Type, _ uint32) error {
			return fn(id, t, nil)
		})
	}
	return w.plainObjects(ctx, Spec{Wants: wants, Haves: haves}, fn)
}

// ObjectsWithHash is Objects reporting, instead of a path, the name-hash
// C Git's pack-objects sorts delta candidates by: computed from the path
// by NameHash on a plain walk, read from the bitmap's name-hash cache
// (0 if it has none, or for objects outside the bitmapped pack that
// have no path) on a bitmap walk.
func (w *Walker) ObjectsWithHash(ctx context.Context, wants, haves []oid.ID, fn func(id oid.ID, t object.Type, nameHash uint32) error) error {
	if w.Bitmap != nil {
		return w.bitmapObjects(ctx, wants, haves, true, fn)
	}
	return w.plainObjects(ctx, Spec{Wants: wants, Haves: haves}, withHash(fn))
}

// withHash adapts a name-hash callback to a walk reporting paths.
func withHash(fn func(id oid.ID, t object.Type, nameHash uint32) error) func(id oid.ID, t object.Type, path []byte) error {
	return func(id oid.ID, t object.Type, path []byte) error {
		var h uint32
		if path != nil {
			h = pack.NameHash(path)
		}
		return fn(id, t, h)
	}
}

// Spec describes the objects of one fetch for ObjectsFor.
type Spec struct {
	Wants, Haves []oid.ID
	// Shallow holds commits whose parents the wants side does not
	// follow: the client's shallow boundary after the fetch
	// (Shallow.Boundary, or its shallow list when it does not deepen).
	Shallow []oid.ID
	// ClientShallow holds the client's shallow commits before the
	// fetch: the haves side does not follow their parents, which the
	// client lacks. Those not in Shallow are being unshallowed: the
	// client has them and their trees, and their parents are wanted (C
	// Git's extra edge objects).
	ClientShallow []oid.ID
	Filter        Filter
	// Edges, if set, is called for each object the walk found the client
	// to have on the way (trees and blobs of the commits it has next to
	// those sent): bases for a thin pack. Only the plain walk reports
	// them.
	Edges func(id oid.ID)
}

// ObjectsNear is ObjectsFor by the plain walk, without bitmaps, for a
// fetch whose haves are near its wants (the usual fetch of what was
// pushed since): it reads a few commits and the trees of the edges,
// where the bitmaps' haves side must cover every have's whole history,
// and bitmaps must be opened first. If the commit walk reads more than
// nearBudget commits, or the marking of what the haves reach more than
// nearBudget trees, it returns ErrFar before it calls fn or spec.Edges,
// and the caller may ask the bitmaps (ObjectsFor) instead.
func (w *Walker) ObjectsNear(ctx context.Context, spec Spec, fn func(id oid.ID, t object.Type, nameHash uint32) error) error {
	return w.plainObjectsWithin(ctx, spec, nearBudget, withHash(fn))
}

// ObjectsFor is ObjectsWithHash for a fetch described by spec. Without
// Shallow, ClientShallow and a filter it is exactly ObjectsWithHash,
// bitmaps included. Otherwise it walks without bitmaps, as C Git's
// pack-objects does for a shallow or filtered fetch: the wants side
// stops at the commits in Shallow; the haves side stops at those in
// ClientShallow; the parents of the commits being unshallowed are added
// to the wants and the commits themselves to the haves; then spec.Filter
// decides which trees and blobs are listed. Errors are as for Objects;
// a missing unshallowed commit is one.
func (w *Walker) ObjectsFor(ctx context.Context, spec Spec, fn func(id oid.ID, t object.Type, nameHash uint32) error) error {
	if w.Bitmap != nil && len(spec.Shallow) == 0 && len(spec.ClientShallow) == 0 && spec.Filter.Kind == FilterNone {
		return w.bitmapObjects(ctx, spec.Wants, spec.Haves, true, fn)
	}
	if len(spec.ClientShallow) > 0 {
		cut := make(map[oid.ID]bool, len(spec.Shallow))
		for _, id := range spec.Shallow {
			cut[id] = true
		}
		cc := newCommitCache(w)
		wants := slices.Clone(spec.Wants)
		haves := slices.Clone(spec.Haves)
		for _, c := range spec.ClientShallow {
			if cut[c] {
				continue
			}
			ci, err := cc.get(c)
			if err != nil {
				return err
			}
			wants = append(wants, ci.parents...)
			haves = append(haves, c)
		}
		spec.Wants, spec.Haves = wants, haves
	}
	return w.plainObjects(ctx, spec, withHash(fn))
}

// Commits calls fn for every commit reachable from wants and not from
// haves, newest first. Tags among wants and haves are peeled; a want
// peeling to a tree or blob contributes nothing. Missing objects are
// handled as by Objects.
func (w *Walker) Commits(ctx context.Context, wants, haves []oid.ID, fn func(id oid.ID) error) error {
	s, err := w.limited(ctx, Spec{Wants: wants, Haves: haves})
	if err != nil {
		return err
	}
	for _, n := range s.out {
		if s.nodes[n].flags&uninteresting != 0 {
			continue
		}
		if err := fn(s.nodes[n].id); err != nil {
			return err
		}
	}
	return nil
}

// ErrFar is ObjectsNear's answer when the haves are too far from the
// wants for the plain walk's budget.
var ErrFar = errors.New("walk: haves too far from wants for a plain walk")

// nearBudget is how many commits, and separately how many trees,
// ObjectsNear may read before it lists anything: a fetch of the week's
// pushes to a large repository takes a few hundred of each.
var nearBudget = 4000

// notFound wraps object.ErrNotFound for id.
func notFound(what string, id oid.ID) error {
	return fmt.Errorf("walk: %s %v: %w", what, id, object.ErrNotFound)
}

// read reads id, which must be of type want (Invalid: any).
func (w *Walker) read(id oid.ID, want object.Type, what string) (object.Type, []byte, error) {
	t, data, err := w.Store.ReadObject(id)
	if err != nil {
		if errors.Is(err, object.ErrNotFound) {
			return 0, nil, notFound(what, id)
		}
		return 0, nil, fmt.Errorf("walk: read %s %v: %w", what, id, err)
	}
	if want != object.Invalid && t != want {
		return 0, nil, fmt.Errorf("walk: %s %v is a %v", what, id, t)
	}
	return t, data, nil
}

// readTip is read for an object a walk starts from, of any type: the
// walk needs the content of tags, commits and trees, never of a blob,
// so when the Store tells types without reading (StatObject) a blob is
// not read. A wanted blob may be gigabytes: reading it only to learn it
// is a blob cost a fetch that much memory (issue 18).
func (w *Walker) readTip(id oid.ID, what string) (object.Type, []byte, error) {
	if st, ok := w.Store.(statObjecter); ok {
		if t, _, err := st.StatObject(id); err == nil && t == object.Blob {
			return t, nil, nil
		}
		// Other types and errors: read reports them as it does.
	}
	return w.read(id, object.Invalid, what)
}

// Node flags of the commit walk.
const (
	queued        = 1 << iota // in the queue or already popped
	uninteresting             // reachable from a have
	parsed                    // parents known
	inQueue                   // in the queue now
	missing                   // an uninteresting commit we do not have
	edge                      // uninteresting parent of a listed commit, its tree marked
)

// node is one commit of the walk. Its parents are arena[pOff:pOff+pN].
type node struct {
	id    oid.ID
	tree  oid.ID
	time  int64
	pOff  int32
	pN    int32
	flags uint8
}

// state is one commit walk.
type state struct {
	ctx   context.Context
	w     *Walker
	nodes []node
	byID  map[oid.ID]int32
	arena []int32
	queue nodeHeap
	// nInteresting counts interesting nodes in the queue: the walk ends
	// when it drops to zero (everything left is reachable from haves).
	nInteresting int
	out          []int32 // popped interesting commits, newest first

	// Non-commit tips: annotated tags to list (with whether a have
	// reached them) and trees and blobs they point at.
	tags      []oid.ID
	haveTags  map[oid.ID]bool
	tipTrees  []tipObject
	haveTrees []tipObject

	// Shallow boundaries (Spec): interesting commits in wantCut and
	// uninteresting ones in haveCut do not lead to their parents.
	wantCut, haveCut map[oid.ID]bool

	steps     int
	budget    int // commits tick may count; 0: no limit
	parentBuf []oid.ID
	gc        commitgraph.Commit
}

type tipObject struct {
	id oid.ID
	t  object.Type
}

func (w *Walker) newState(ctx context.Context) *state {
	s := &state{ctx: ctx, w: w, byID: make(map[oid.ID]int32), haveTags: make(map[oid.ID]bool)}
	s.queue.s = s
	return s
}

// limited runs the commit walk from wants, stopping where haves make
// every queued commit uninteresting.
func (w *Walker) limited(ctx context.Context, spec Spec) (*state, error) {
	return w.limitedWithin(ctx, spec, 0)
}

// limitedWithin is limited that gives up with ErrFar after
// budget commits (0: no limit).
func (w *Walker) limitedWithin(ctx context.Context, spec Spec, budget int) (*state, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := w.newState(ctx)
	s.budget = budget
	if len(spec.Shallow) > 0 {
		s.wantCut = make(map[oid.ID]bool, len(spec.Shallow))
		for _, id := range spec.Shallow {
			s.wantCut[id] = true
		}
	}
	if len(spec.ClientShallow) > 0 {
		s.haveCut = make(map[oid.ID]bool, len(spec.ClientShallow))
		for _, id := range spec.ClientShallow {
			s.haveCut[id] = true
		}
	}
	if err := s.addTips(spec.Haves, true); err != nil {
		return nil, err
	}
	if err := s.addTips(spec.Wants, false); err != nil {
		return nil, err
	}
	if err := s.limit(); err != nil {
		return nil, err
	}
	return s, nil
}

// tick checks the context every checkEvery steps.
func (s *state) tick() error {
	s.steps++
	if s.budget > 0 && s.steps > s.budget {
		return ErrFar
	}
	if s.steps%checkEvery == 0 {
		return s.ctx.Err()
	}
	return nil
}

// node returns the index of id's node, creating it.
func (s *state) node(id oid.ID) int32 {
	if n, ok := s.byID[id]; ok {
		return n
	}
	n := int32(len(s.nodes))
	s.nodes = append(s.nodes, node{id: id})
	s.byID[id] = n
	return n
}

// addTips peels tips to commits and queues them. Tags are recorded for
// Objects; trees and blobs that tags point at are kept as tips of the
// object walk.
func (s *state) addTips(tips []oid.ID, have bool) error {
	for _, id := range tips {
		if err := s.addTip(id, have); err != nil {
			return err
		}
	}
	return nil
}

func (s *state) addTip(id oid.ID, have bool) error {
	if n, ok := s.byID[id]; ok {
		// A commit already known (a tip, or a parent loaded with its
		// child): a have overrides a want; queue it if it is not yet.
		if have {
			s.markUninteresting(n)
		}
		s.push(n)
		return nil
	}
	for depth := 0; ; depth++ {
		var t object.Type
		var data []byte
		var err error
		if s.w.Graph != nil {
			if _, ok := s.w.Graph.Lookup(id); ok {
				t = object.Commit
			}
		}
		if t == object.Invalid {
			t, data, err = s.w.readTip(id, "object")
			if err != nil {
				if have && errors.Is(err, object.ErrNotFound) {
					return nil // a have we do not know: the client is ahead
				}
				return err
			}
		}
		switch t {
		case object.Commit:
			n := s.node(id)
			if have {
				s.markUninteresting(n)
			}
			s.push(n)
			return nil
		case object.Tag:
			if depth >= maxTagDepth {
				return fmt.Errorf("walk: tag chain at %v longer than %d", id, maxTagDepth)
			}
			tag, err := object.ParseTag(s.w.Format, data)
			if err != nil {
				return fmt.Errorf("walk: tag %v: %w", id, err)
			}
			if have {
				s.haveTags[id] = true
			} else {
				s.tags = append(s.tags, id)
			}
			id = tag.Object
		case object.Tree, object.Blob:
			if have {
				s.haveTrees = append(s.haveTrees, tipObject{id, t})
			} else {
				s.tipTrees = append(s.tipTrees, tipObject{id, t})
			}
			return nil
		default:
			return fmt.Errorf("walk: %v has type %v", id, t)
		}
	}
}

// push queues node n if it is not queued yet.
func (s *state) push(n int32) {
	nd := &s.nodes[n]
	if nd.flags&queued != 0 {
		return
	}
	nd.flags |= queued | inQueue
	if nd.flags&uninteresting == 0 {
		s.nInteresting++
	}
	if nd.flags&parsed == 0 {
		// The time orders the queue; load it now (cheap with a graph).
		if err := s.load(n); err != nil {
			// Remember the error by leaving the node unparsed; limit
			// reports it when the node is popped.
			nd = &s.nodes[n]
			nd.time = 1<<63 - 1 // pop it first so the error surfaces early
		}
	}
	s.queue.push(n)
}

// load reads the tree, time and parents of node n.
func (s *state) load(n int32) error {
	nd := &s.nodes[n]
	if nd.flags&(parsed|missing) != 0 {
		return nil
	}
	tree, ps, _, when, err := s.w.links(nd.id, s.parentBuf, &s.gc)
	s.parentBuf = ps
	if err != nil {
		if errors.Is(err, object.ErrNotFound) && nd.flags&uninteresting != 0 {
			nd.flags |= missing
			return nil
		}
		return err
	}
	off := int32(len(s.arena))
	for _, p := range ps {
		s.arena = append(s.arena, s.node(p))
	}
	nd = &s.nodes[n]
	nd.tree, nd.time = tree, when
	nd.pOff, nd.pN = off, int32(len(s.arena))-off
	nd.flags |= parsed
	return nil
}

// markUninteresting marks n and, through the nodes already parsed, its
// ancestors as reachable from a have.
func (s *state) markUninteresting(n int32) {
	stack := []int32{n}
	for len(stack) > 0 {
		m := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		nd := &s.nodes[m]
		if nd.flags&uninteresting != 0 {
			continue
		}
		nd.flags |= uninteresting
		if nd.flags&inQueue != 0 {
			s.nInteresting--
		}
		if nd.flags&parsed != 0 && nd.flags&inQueue == 0 && !s.haveCut[nd.id] {
			// Already popped: its parents were queued as interesting.
			stack = append(stack, s.arena[nd.pOff:nd.pOff+nd.pN]...)
		}
	}
}

// slop is how many uninteresting commits older than the last
// interesting one the walk goes on popping once no interesting commit is
// queued (C Git's SLOP, revision.c).
const slop = 5

// limit runs the commit walk: newest commit first, until every queued
// commit is uninteresting and older than the last interesting commit
// popped, give or take slop commits: an uninteresting commit of the same
// time may still reach one already popped (C Git's limit_list and
// still_interesting; equal commit times are common in scripted
// histories). Popped interesting commits are collected in s.out; some
// may turn uninteresting later, so users check the flag.
func (s *state) limit() error {
	left, date := slop, int64(1<<63-1)
	lastUn := false
	for s.queue.Len() > 0 {
		// As C Git, after an uninteresting commit only.
		if lastUn {
			if s.nInteresting > 0 || s.nodes[s.queue.h[0]].time >= date {
				left = slop
			} else if left--; left == 0 {
				break
			}
		}
		if err := s.tick(); err != nil {
			return err
		}
		n := s.queue.pop()
		nd := &s.nodes[n]
		nd.flags &^= inQueue
		if nd.flags&uninteresting == 0 {
			s.nInteresting--
		}
		if err := s.load(n); err != nil {
			return err
		}
		nd = &s.nodes[n]
		if nd.flags&missing != 0 {
			lastUn = false
			continue
		}
		un := nd.flags&uninteresting != 0
		lastUn = un
		if !un {
			s.out = append(s.out, n)
			date = nd.time
		}
		if un && s.haveCut[nd.id] || !un && s.wantCut[nd.id] {
			continue
		}
		for _, p := range s.arena[nd.pOff : nd.pOff+nd.pN] {
			if un {
				s.markUninteresting(p)
			}
			s.push(p)
		}
	}
	return nil
}

// nodeHeap is a binary max-heap of node indices, newest commit first
// (ties broken by id, so the order is deterministic). It is written out
// rather than built on container/heap to avoid boxing every index.
type nodeHeap struct {
	s *state
	h []int32
}

func (q *nodeHeap) Len() int { return len(q.h) }

func (q *nodeHeap) less(i, j int) bool {
	a, b := &q.s.nodes[q.h[i]], &q.s.nodes[q.h[j]]
	if a.time != b.time {
		return a.time > b.time
	}
	return a.id.Compare(b.id) < 0
}

func (q *nodeHeap) push(n int32) {
	q.h = append(q.h, n)
	for i := len(q.h) - 1; i > 0; {
		p := (i - 1) / 2
		if !q.less(i, p) {
			break
		}
		q.h[i], q.h[p] = q.h[p], q.h[i]
		i = p
	}
}

func (q *nodeHeap) pop() int32 {
	top := q.h[0]
	last := len(q.h) - 1
	q.h[0] = q.h[last]
	q.h = q.h[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < last && q.less(l, m) {
			m = l
		}
		if r < last && q.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		q.h[i], q.h[m] = q.h[m], q.h[i]
		i = m
	}
	return top
}
