package web

import (
	"bytes"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/refs"
	"gotd/internal/git/repo"
	"gotd/internal/git/walk"
	"gotd/internal/policy"
)

// Repo is a repository the site shows.
type Repo struct {
	// Name is its configured name.
	Name string
	// Description is gotd.conf's, or else the first line of the
	// repository's description file (Open reads it).
	Description string
	// Hidden are its hidden reference namespaces: never shown, nor
	// what only they reach.
	Hidden policy.Hidden
	R      *repo.Repo
}

// Open opens the repository at path for the site, reading its
// description file when description is "".
func Open(name, path, description string, hidden []string) (*Repo, error) {
	r, err := repo.Open(path, repo.Options{DeltaCacheSize: deltaCacheSize})
	if err != nil {
		return nil, fmt.Errorf("web: %s: %w", name, err)
	}
	if description == "" {
		description = readDescription(r.GitDir)
	}
	return &Repo{Name: name, Description: description, Hidden: policy.Hidden(hidden), R: r}, nil
}

// maxDescription bounds what is read of a description file.
const maxDescription = 1 << 10

// readDescription returns the first line of a repository's description
// file, "" for none or for the text git init leaves there.
func readDescription(gitDir string) string {
	f, err := os.Open(filepath.Join(gitDir, "description"))
	if err != nil {
		return ""
	}
	defer f.Close()
	buf := make([]byte, maxDescription)
	n, _ := f.Read(buf)
	line, _, _ := bytes.Cut(buf[:n], []byte("\n"))
	d := strings.TrimSpace(strings.ToValidUTF8(string(line), "\uFFFD"))
	if strings.HasPrefix(d, "Unnamed repository;") {
		return ""
	}
	return d
}

// errNotFound is a revision, path or object the visitor cannot see:
// answered 404.
var errNotFound = errors.New("not found")

// hidden reports whether a full reference name is hidden.
func (rp *Repo) hidden(name string) bool { return rp.Hidden.Has(name) }

// resolved is a revision resolved to an object.
type resolved struct {
	id oid.ID
	// ref is the full reference name the revision named, "" for an
	// object id.
	ref string
	// full says the revision was written as a full object id: the page
	// never changes.
	full bool
}

// resolve resolves a revision as a page's URL names it: "" for HEAD, a
// full object id, a full reference name, or a branch or tag name.
// Hidden references resolve to nothing, and in a repository with hidden
// references an object id only if a visible reference reaches it.
func (rp *Repo) resolve(ctx context.Context, rev string) (resolved, error) {
	if rev == "" || rev == "HEAD" {
		ref, err := rp.R.Refs.Resolve("HEAD")
		if err != nil || ref.Target != "" && rp.hidden(ref.Target) {
			return resolved{}, errNotFound
		}
		return resolved{id: ref.ID, ref: "HEAD"}, nil
	}
	if len(rev) == rp.R.Format.HexSize() {
		if id, err := oid.ParseHex(rp.R.Format, rev); err == nil {
			if !rp.R.HasObject(id) {
				return resolved{}, errNotFound
			}
			if len(rp.Hidden) > 0 {
				if ok, err := rp.visible(ctx, id); err != nil || !ok {
					return resolved{}, errNotFound
				}
			}
			return resolved{id: id, full: true}, nil
		}
	}
	for _, name := range []string{"refs/heads/" + rev, "refs/tags/" + rev, rev} {
		if refs.CheckName(name) != nil || rp.hidden(name) {
			continue
		}
		ref, err := rp.R.Refs.Resolve(name)
		if err != nil {
			continue
		}
		if ref.Target != "" && rp.hidden(ref.Target) {
			continue
		}
		return resolved{id: ref.ID, ref: name}, nil
	}
	return resolved{}, errNotFound
}

// visible reports whether a visible reference reaches id.
func (rp *Repo) visible(ctx context.Context, id oid.ID) (bool, error) {
	var tips []oid.ID
	err := rp.R.Refs.List("refs/", func(r refs.Ref) error {
		if !rp.hidden(r.Name) && (r.Target == "" || !rp.hidden(r.Target)) {
			tips = append(tips, r.ID)
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	w := &walk.Walker{Store: rp.R, Format: rp.R.Format}
	got, err := w.Reachable(ctx, tips, []oid.ID{id})
	if err != nil {
		return false, err
	}
	return got[id], nil
}

// ref is a visible reference with what it points at.
type ref struct {
	Name  string // short: without refs/heads/ or refs/tags/
	Full  string
	ID    oid.ID
	Tag   *object.ParsedTag // an annotated tag's object
	Peel  oid.ID            // the commit it finally names, zero if none
	Title string            // of that commit
	When  time.Time         // its committer time (a tag's tagger time if later)
}

// maxRefs bounds the references a page lists.
const maxRefs = 1000

// refs lists the visible references under prefix, at most max, peeled
// to commits.
func (rp *Repo) refs(prefix string, max int) ([]ref, bool, error) {
	out, more, err := rp.listRefs(prefix, max)
	if err != nil {
		return nil, false, err
	}
	for i := range out {
		rp.peel(&out[i])
	}
	return out, more, nil
}

// listRefs lists the visible references under prefix, at most max, as
// they are, and whether there are more.
func (rp *Repo) listRefs(prefix string, max int) ([]ref, bool, error) {
	var out []ref
	more := false
	errStop := errors.New("stop")
	err := rp.R.Refs.List(prefix, func(r refs.Ref) error {
		if rp.hidden(r.Name) || r.Target != "" && rp.hidden(r.Target) {
			return nil
		}
		if len(out) == max {
			more = true
			return errStop
		}
		out = append(out, ref{Name: strings.TrimPrefix(r.Name, prefix), Full: r.Name, ID: r.ID})
		return nil
	})
	if err != nil && err != errStop {
		return nil, false, err
	}
	return out, more, nil
}

// newestRefs lists the n visible references under prefix of latest
// date, peeled to commits, among the first maxRefs, and whether there
// are more. An annotated tag is dated by its tagger, as git
// for-each-ref --sort=-creatordate does, so that only the tags kept
// have their commits read: a summary of git.git's 900 tags read each
// tag's commit too, half of the summary's work.
func (rp *Repo) newestRefs(prefix string, n int) ([]ref, bool, error) {
	out, more, err := rp.listRefs(prefix, maxRefs)
	if err != nil {
		return nil, false, err
	}
	for i := range out {
		if !rp.tagDate(&out[i]) {
			rp.peel(&out[i])
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].When.After(out[j].When) })
	if len(out) > n {
		out, more = out[:n], true
	}
	for i := range out {
		if !out[i].Peel.Valid() {
			out[i] = ref{Name: out[i].Name, Full: out[i].Full, ID: out[i].ID}
			rp.peel(&out[i])
		}
	}
	return out, more, nil
}

// tagDate dates r from the headers of the object it names, read from
// the first datePrefix bytes only: by its tagger for an annotated tag,
// by its committer for a commit. It reports whether it could; r is
// peeled later, if it is kept.
func (rp *Repo) tagDate(r *ref) bool {
	t, data, _, err := rp.R.ReadObjectPrefix(r.ID, nil, datePrefix)
	if err != nil || !bytes.Contains(data, []byte("\n\n")) {
		return false // the headers are longer (a signature): read whole
	}
	switch t {
	case object.Tag:
		tag, err := object.ParseTag(rp.R.Format, data)
		if err != nil || tag.Tagger == nil {
			return false
		}
		r.When = time.Unix(tag.Tagger.When, 0)
		return true
	case object.Commit:
		c, err := object.ParseCommit(rp.R.Format, data)
		if err != nil {
			return false
		}
		r.When = time.Unix(c.Committer.When, 0)
		return true
	}
	return false
}

// datePrefix is what tagDate reads of an object: its headers, unless
// signed.
const datePrefix = 1024

// maxPeel bounds a chain of tags.
const maxPeel = 8

// peel fills in what r points at.
func (rp *Repo) peel(r *ref) {
	id := r.ID
	for range maxPeel {
		t, data, _, err := rp.readHead(id)
		if err != nil {
			return
		}
		switch t {
		case object.Tag:
			tag, err := object.ParseTag(rp.R.Format, data)
			if err != nil {
				return
			}
			if r.Tag == nil {
				r.Tag = tag
				if tag.Tagger != nil {
					r.When = time.Unix(tag.Tagger.When, 0)
				}
			}
			id = tag.Object
		case object.Commit:
			c, err := object.ParseCommit(rp.R.Format, data)
			if err != nil {
				return
			}
			r.Peel, r.Title = id, title(c.Message)
			if w := time.Unix(c.Committer.When, 0); w.After(r.When) {
				r.When = w
			}
			return
		default:
			return
		}
	}
}

// commit is a parsed commit with its id.
type commit struct {
	ID oid.ID
	*object.ParsedCommit
	Cut bool // the message is cut at maxHead
}

// maxHead bounds the bytes of a commit or tag read for a page: its
// headers and the start of its message, which is cut there. Without it
// a page would hold each commit it names whole, and a message of
// megabytes, in a web process that serves every visitor of its class,
// several times over.
const maxHead = 256 << 10

// readHead reads the first maxHead bytes of an object; cut reports
// that there was more.
func (rp *Repo) readHead(id oid.ID) (t object.Type, data []byte, cut bool, err error) {
	t, data, whole, err := rp.R.ReadObjectPrefix(id, nil, maxHead)
	if err != nil {
		return 0, nil, false, err
	}
	if !whole || len(data) > maxHead {
		return t, data[:min(len(data), maxHead)], true, nil
	}
	return t, data, false, nil
}

// readCommit reads a commit, peeling tags. A commit whose headers do
// not fit in maxHead bytes is an error; a longer message is cut
// (commit.Cut).
func (rp *Repo) readCommit(id oid.ID) (*commit, error) {
	for range maxPeel {
		t, data, cut, err := rp.readHead(id)
		if err != nil {
			return nil, errNotFound
		}
		switch t {
		case object.Commit:
			c, err := object.ParseCommit(rp.R.Format, data)
			if err != nil {
				return nil, fmt.Errorf("commit %s: %w", id, err)
			}
			return &commit{ID: id, ParsedCommit: c, Cut: cut}, nil
		case object.Tag:
			tag, err := object.ParseTag(rp.R.Format, data)
			if err != nil {
				return nil, fmt.Errorf("tag %s: %w", id, err)
			}
			id = tag.Object
		default:
			return nil, errNotFound
		}
	}
	return nil, errNotFound
}

// entry is an entry of a tree found by path.
type entry struct {
	Mode uint32
	ID   oid.ID
}

// maxDepth bounds the path a page names, in components.
const maxDepth = 256

// lookup finds path in tree; "" is the tree itself.
func (rp *Repo) lookup(tree oid.ID, path string) (entry, error) {
	e := entry{Mode: object.ModeTree, ID: tree}
	if path == "" {
		return e, nil
	}
	parts := strings.Split(path, "/")
	if len(parts) > maxDepth {
		return e, errNotFound
	}
	for _, name := range parts {
		if e.Mode != object.ModeTree {
			return e, errNotFound
		}
		// A tree read whole on every commit of a path's log would
		// cost a visitor's page megabytes each time.
		if _, size, err := rp.R.StatObject(e.ID); err != nil || size > maxTreeRead {
			if err != nil {
				return e, errNotFound
			}
			return e, errTreeTooLarge
		}
		t, data, err := rp.R.ReadObject(e.ID)
		if err != nil || t != object.Tree {
			return e, errNotFound
		}
		it := object.NewTreeIter(rp.R.Format, data)
		found := false
		for te, ok := it.Next(); ok; te, ok = it.Next() {
			if string(te.Name) == name {
				e, found = entry{Mode: te.Mode, ID: te.ID}, true
				break
			}
		}
		if !found {
			return e, errNotFound
		}
	}
	return e, nil
}

// maxLogSkip bounds how far into a history a log page starts.
const maxLogSkip = 100000

// history calls fn for the commits reachable from tip, newest
// committer time first (as git log orders them), skipping skip of
// them. With a path, only commits that change it are counted, and a
// merge that takes the path unchanged from one of its parents is
// followed through that parent alone (git log's history
// simplification). fn returns false to stop.
func (rp *Repo) history(ctx context.Context, tip oid.ID, path string, skip int, fn func(*commit) bool) error {
	seen := map[oid.ID]bool{tip: true}
	q := &commitQueue{}
	c, err := rp.readCommit(tip)
	if err != nil {
		return err
	}
	heap.Push(q, c)
	for q.Len() > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		c := heap.Pop(q).(*commit)
		parents := c.Parents
		show := true
		if path != "" {
			mine, err := rp.lookup(c.Tree, path)
			if errors.Is(err, errTreeTooLarge) {
				return err
			}
			show = true
			for _, p := range c.Parents {
				pc, err := rp.readCommit(p)
				if err != nil {
					continue
				}
				theirs, err := rp.lookup(pc.Tree, path)
				if errors.Is(err, errTreeTooLarge) {
					return err
				}
				if theirs == mine {
					show, parents = false, []oid.ID{p}
					break
				}
			}
			if len(c.Parents) == 0 && !mine.ID.Valid() {
				show = false
			}
		}
		if show {
			if skip > 0 {
				skip--
			} else if !fn(c) {
				return nil
			}
		}
		for _, p := range parents {
			if seen[p] {
				continue
			}
			seen[p] = true
			pc, err := rp.readCommit(p)
			if err != nil {
				continue // a shallow or broken history ends here
			}
			heap.Push(q, pc)
		}
	}
	return nil
}

// commitQueue orders commits newest first.
type commitQueue []*commit

func (q commitQueue) Len() int { return len(q) }
func (q commitQueue) Less(i, j int) bool {
	return q[i].Committer.When > q[j].Committer.When
}
func (q commitQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *commitQueue) Push(x any)   { *q = append(*q, x.(*commit)) }
func (q *commitQueue) Pop() any {
	old := *q
	c := old[len(old)-1]
	*q = old[:len(old)-1]
	return c
}

// title is the first line of a message, as valid UTF-8.
func title(msg []byte) string {
	line, _, _ := bytes.Cut(bytes.TrimLeft(msg, "\n"), []byte("\n"))
	// A rune is at most 4 bytes: what is past them is clipped anyway,
	// and need not be copied first.
	if len(line) > 4*maxTitle+4 {
		line = line[:4*maxTitle+4]
	}
	return clip(text(line), maxTitle)
}

// maxTitle bounds a title, in runes.
const maxTitle = 200

// text is b as valid UTF-8 (html/template escapes it; invalid bytes
// become U+FFFD).
func text(b []byte) string { return strings.ToValidUTF8(string(b), "\uFFFD") }

// clip shortens s to at most n runes.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}

// deltaCacheSize bounds each repository's delta base cache in a web
// process, which holds every repository its visitor may read open: at
// the default (96 MiB each) a blame of a long history took the process
// to 240 MB of heap, at this size 58 MB, in the same time.
const deltaCacheSize = 16 << 20

// when is a signature's time in its own time zone.
func when(s object.Signature) time.Time {
	tz := s.TZ
	return time.Unix(s.When, 0).In(time.FixedZone("", tz*60))
}
