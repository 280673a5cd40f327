// Package blame tells, for each line of a file at a commit, the commit
// that introduced it, as `git blame` does without rename or copy
// detection: a commit is suspected of every line it holds; lines its
// parent holds unchanged (by internal/engine/linediff's line diff)
// pass to the parent, and what no parent holds stays with the commit.
// At a merge, a parent whose file is the same blob takes every line;
// otherwise each parent in turn takes the lines it holds unchanged.
// The path is followed as it is: a file renamed is blamed on the
// commit that renamed it, as gotwebd does.
//
// The work is bounded (Limits): the file's size in every version read,
// the commits walked, a deadline; past them Blame refuses rather than
// answer partly.
package blame

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"gotd/internal/engine/linediff"
	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/repo"
)

// Limits bound one blame. Zero fields take DefaultLimits' values.
type Limits struct {
	// MaxFileSize bounds every version of the file read, and every
	// tree on its path, in bytes.
	MaxFileSize int64
	// MaxCommits bounds the commits examined.
	MaxCommits int
	// Timeout bounds the whole blame, besides ctx's deadline.
	Timeout time.Duration
}

// DefaultLimits suit a page of the web view: a 1 MiB file, 20,000
// commits of its history, ten seconds.
var DefaultLimits = Limits{MaxFileSize: 1 << 20, MaxCommits: 20000, Timeout: 10 * time.Second}

// Errors of Blame that callers tell apart.
var (
	// ErrNotFound: the path names no file at the commit.
	ErrNotFound = errors.New("blame: no such file")
	// ErrTooLarge: a version of the file, or a tree on its path, is
	// over MaxFileSize.
	ErrTooLarge = errors.New("blame: file too large")
	// ErrTooManyCommits: the history needs more than MaxCommits.
	ErrTooManyCommits = errors.New("blame: history too long")
)

// Line is what Blame tells of one line of the file.
type Line struct {
	// Commit introduced the line.
	Commit oid.ID
	// Path is the file's path in Commit: the path asked, since renames
	// are not followed.
	Path string
	// OrigLine is the line's number in Commit's version, from 1.
	OrigLine int
	// Text is the line, with its newline if it has one: a view of the
	// file's content, not to be modified.
	Text []byte
}

// Blame returns the lines of the file at path (slash-separated, from
// the top of the tree) in commit, each with the commit that introduced
// it. It fails with ErrNotFound if commit holds no file there, with
// ErrTooLarge, ErrTooManyCommits or the context's error past the
// limits, and with linediff.ErrTooDifferent when two versions differ
// too much to compare.
func Blame(ctx context.Context, r *repo.Repo, commit oid.ID, path string, lim Limits) ([]Line, error) {
	lim = lim.withDefaults()
	if lim.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, lim.Timeout)
		defer cancel()
	}
	path = strings.Trim(path, "/")
	b := &blamer{ctx: ctx, r: r, path: path, lim: lim, suspects: map[oid.ID]*suspect{}}
	c, err := b.commit(commit)
	if err != nil {
		return nil, err
	}
	blob, ok, err := b.lookup(c.Tree)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrNotFound
	}
	data, err := b.read(blob)
	if err != nil {
		return nil, err
	}
	var t linediff.Table
	final := t.Lines(data)
	out := make([]Line, final.Len())
	lines := make([]pair, final.Len())
	for i := range lines {
		out[i] = Line{Path: path, Text: final.Line(i)}
		lines[i] = pair{at: i, final: i}
	}
	if len(lines) == 0 {
		return out, nil
	}
	b.add(commit, c, blob, lines)
	for b.queue.Len() > 0 {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("blame: %w", err)
		}
		b.walked++
		if b.walked > lim.MaxCommits {
			return nil, ErrTooManyCommits
		}
		s := heap.Pop(&b.queue).(*suspect)
		s.queued = false
		// A suspect examined is let go: lines that reach its commit
		// again (a child with a skewed date) make it a suspect anew.
		delete(b.suspects, s.id)
		kept, err := b.pass(s)
		if err != nil {
			return nil, err
		}
		for _, p := range kept {
			out[p.final].Commit, out[p.final].OrigLine = s.id, p.at+1
		}
	}
	return out, nil
}

func (l Limits) withDefaults() Limits {
	if l.MaxFileSize == 0 {
		l.MaxFileSize = DefaultLimits.MaxFileSize
	}
	if l.MaxCommits == 0 {
		l.MaxCommits = DefaultLimits.MaxCommits
	}
	if l.Timeout == 0 {
		l.Timeout = DefaultLimits.Timeout
	}
	return l
}

// pair is a line a suspect holds: its index in the suspect's version,
// and in the final file.
type pair struct{ at, final int }

// suspect is a commit suspected of lines, waiting in the queue.
type suspect struct {
	id     oid.ID
	c      *object.ParsedCommit
	blob   oid.ID // the file in this commit
	lines  []pair // sorted by at once passed
	queued bool
	index  int // in the queue
}

// blamer holds one blame's state.
type blamer struct {
	ctx      context.Context
	r        *repo.Repo
	path     string
	lim      Limits
	suspects map[oid.ID]*suspect
	queue    queue
	walked   int
	// found remembers lookup's answers by the tree at each depth of
	// the path: a subtree most commits leave alone is read once.
	found map[treeAt]lookupResult
}

// treeAt is a tree at a depth of the path: the same tree at another
// depth has another answer.
type treeAt struct {
	depth int
	id    oid.ID
}

// lookupResult is what lookup found below one tree of the path.
type lookupResult struct {
	blob oid.ID
	ok   bool
}

// maxFound bounds the trees lookup remembers.
const maxFound = 1 << 16

// add gives lines to the suspect id, queueing it: lines reaching a
// commit by several children are examined together.
func (b *blamer) add(id oid.ID, c *object.ParsedCommit, blob oid.ID, lines []pair) {
	s := b.suspects[id]
	if s == nil {
		s = &suspect{id: id, c: c, blob: blob}
		b.suspects[id] = s
	}
	s.lines = append(s.lines, lines...)
	if !s.queued {
		s.queued = true
		heap.Push(&b.queue, s)
	}
}

// pass hands the lines of s that its parents hold to them, and returns
// the others, which s introduced.
func (b *blamer) pass(s *suspect) ([]pair, error) {
	lines := s.lines
	s.lines = nil
	type parent struct {
		id   oid.ID
		c    *object.ParsedCommit
		blob oid.ID
	}
	var ps []parent
	for _, pid := range s.c.Parents {
		pc, err := b.commit(pid)
		if err != nil {
			return nil, err
		}
		blob, ok, err := b.lookup(pc.Tree)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		if blob == s.blob {
			// The same file: the parent holds every line.
			b.add(pid, pc, blob, lines)
			return nil, nil
		}
		ps = append(ps, parent{pid, pc, blob})
	}
	if len(ps) == 0 {
		return lines, nil
	}
	slices.SortFunc(lines, func(x, y pair) int { return x.at - y.at })
	data, err := b.read(s.blob)
	if err != nil {
		return nil, err
	}
	for _, p := range ps {
		pdata, err := b.read(p.blob)
		if err != nil {
			return nil, err
		}
		var t linediff.Table
		mine, theirs := t.Lines(data), t.Lines(pdata)
		hs, err := linediff.Diff(theirs.IDs, mine.IDs, mine.Len()+theirs.Len())
		if err != nil {
			return nil, fmt.Errorf("blame: %s against %s: %w", s.id, p.id, err)
		}
		// Which of equal lines a change takes is C Git's choice.
		hs = linediff.Slide(theirs, mine, hs)
		var passed, kept []pair
		k := 0
		for _, l := range lines {
			// The hunks before l: l is unchanged unless one covers it;
			// then its line in the parent is offset by them.
			for k < len(hs) && hs[k].J+hs[k].M <= l.at {
				k++
			}
			if k < len(hs) && hs[k].J <= l.at {
				kept = append(kept, l)
				continue
			}
			off := 0
			if k > 0 {
				h := hs[k-1]
				off = h.End() - (h.J + h.M)
			}
			passed = append(passed, pair{at: l.at + off, final: l.final})
		}
		if len(passed) > 0 {
			b.add(p.id, p.c, p.blob, passed)
		}
		lines = kept
		if len(lines) == 0 {
			break
		}
	}
	return lines, nil
}

// commit reads and parses a commit.
func (b *blamer) commit(id oid.ID) (*object.ParsedCommit, error) {
	if s := b.suspects[id]; s != nil {
		return s.c, nil
	}
	t, data, err := b.r.ReadObject(id)
	if err != nil {
		return nil, fmt.Errorf("blame: read %s: %w", id, err)
	}
	if t != object.Commit {
		return nil, fmt.Errorf("blame: %s is a %s, not a commit", id, t)
	}
	c, err := object.ParseCommit(b.r.Format, data)
	if err != nil {
		return nil, fmt.Errorf("blame: commit %s: %w", id, err)
	}
	return c, nil
}

// maxDepth bounds the components of the path.
const maxDepth = 4096

// lookup returns the blob at the blamer's path in tree, ok false when
// there is none (or not a file: a directory, a submodule). Answers are
// remembered by every tree of the path read, so that a subtree most
// commits share is read once.
func (b *blamer) lookup(tree oid.ID) (blob oid.ID, ok bool, err error) {
	parts := strings.Split(b.path, "/")
	if len(parts) > maxDepth {
		return oid.ID{}, false, nil
	}
	var read []treeAt
	defer func() {
		if err != nil {
			return
		}
		if b.found == nil {
			b.found = make(map[treeAt]lookupResult)
		}
		for _, t := range read {
			if len(b.found) < maxFound {
				b.found[t] = lookupResult{blob: blob, ok: ok}
			}
		}
	}()
	id := tree
	for i, part := range parts {
		if r, hit := b.found[treeAt{i, id}]; hit {
			return r.blob, r.ok, nil
		}
		read = append(read, treeAt{i, id})
		// Each commit's trees on the path are read: one past the
		// file size bound would cost that much per commit.
		if _, size, err := b.r.StatObject(id); err != nil {
			return oid.ID{}, false, fmt.Errorf("blame: read tree %s: %w", id, err)
		} else if size > b.lim.MaxFileSize {
			return oid.ID{}, false, ErrTooLarge
		}
		t, data, err := b.r.ReadObject(id)
		if err != nil {
			return oid.ID{}, false, fmt.Errorf("blame: read tree %s: %w", id, err)
		}
		if t != object.Tree {
			return oid.ID{}, false, fmt.Errorf("blame: %s is a %s, not a tree", id, t)
		}
		found := false
		it := object.NewTreeIter(b.r.Format, data)
		for e, more := it.Next(); more; e, more = it.Next() {
			if string(e.Name) != part {
				continue
			}
			last := i == len(parts)-1
			switch {
			case last && (e.Type() != object.Blob || e.Mode == object.ModeGitlink):
				return oid.ID{}, false, nil
			case !last && e.Mode != object.ModeTree:
				return oid.ID{}, false, nil
			}
			id, found = e.ID, true
			break
		}
		if err := it.Err(); err != nil {
			return oid.ID{}, false, fmt.Errorf("blame: tree %s: %w", id, err)
		}
		if !found {
			return oid.ID{}, false, nil
		}
	}
	return id, true, nil
}

// read returns a version of the file, within MaxFileSize.
func (b *blamer) read(id oid.ID) ([]byte, error) {
	_, size, err := b.r.StatObject(id)
	if err != nil {
		return nil, fmt.Errorf("blame: %s: %w", id, err)
	}
	if size > b.lim.MaxFileSize {
		return nil, ErrTooLarge
	}
	_, data, err := b.r.ReadObject(id)
	if err != nil {
		return nil, fmt.Errorf("blame: read %s: %w", id, err)
	}
	return data, nil
}

// queue orders suspects newest commit first, as C Git's blame does.
type queue []*suspect

func (q queue) Len() int { return len(q) }
func (q queue) Less(i, j int) bool {
	return q[i].c.Committer.When > q[j].c.Committer.When
}
func (q queue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}
func (q *queue) Push(x any) {
	s := x.(*suspect)
	s.index = len(*q)
	*q = append(*q, s)
}
func (q *queue) Pop() any {
	old := *q
	s := old[len(old)-1]
	*q = old[:len(old)-1]
	return s
}
