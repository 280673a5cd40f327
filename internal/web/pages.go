package web

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"gotd/internal/engine/blame"
	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/treediff"
)

// escapeSnapshot escapes a revision in a snapshot's file name.
func escapeSnapshot(rev string) string { return url.PathEscape(rev) }

// index lists the repositories.
func (rq *request) index() error {
	type item struct {
		Name, Description string
		Last              time.Time
	}
	var items []item
	for _, r := range rq.s.Repos {
		if err := rq.ctx.Err(); err != nil {
			return err
		}
		it := item{Name: r.Name, Description: r.Description}
		heads, _, _ := r.refs("refs/heads/", indexRefs)
		for _, h := range heads {
			if h.When.After(it.Last) {
				it.Last = h.When
			}
		}
		items = append(items, it)
	}
	return rq.render("index", &layout{Title: "Repositories", Body: items}, false, time.Time{})
}

// readme is a README shown on a summary.
type readme struct {
	Name    string
	Text    string
	Clipped bool
}

// readmeNames are the files a summary shows, in order of preference.
var readmeNames = []string{"README", "README.md", "README.txt", "README.rst", "readme.md", "Readme.md", "README.markdown"}

// summary shows a repository's front page.
func (rq *request) summary() error {
	rp := rq.repo
	type body struct {
		Clone                  []string
		Branches, Tags         []ref
		MoreBranches, MoreTags bool
		Commits                []*commit
		Readme                 *readme
	}
	b := &body{Clone: rq.cloneURLs(rp.Name)}
	var err error
	if b.Branches, b.MoreBranches, err = rp.newestRefs("refs/heads/", summaryRefs); err != nil {
		return err
	}
	if b.Tags, b.MoreTags, err = rp.newestRefs("refs/tags/", summaryRefs); err != nil {
		return err
	}
	if head, err := rp.resolve(rq.ctx, ""); err == nil {
		err := rp.history(rq.ctx, head.id, "", 0, func(c *commit) bool {
			b.Commits = append(b.Commits, c)
			return len(b.Commits) < summaryCommits
		})
		if err != nil {
			return err
		}
		if c, err := rp.readCommit(head.id); err == nil {
			b.Readme = rp.readme(c.Tree)
		}
	}
	return rq.render("summary", &layout{Title: rp.Name, Repo: rp, Body: b, Feeds: rq.feeds("")}, false, time.Time{})
}

// newest keeps the n references of latest date.
func newest(rs []ref, n int, more bool) ([]ref, bool) {
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].When.After(rs[j].When) })
	if len(rs) > n {
		return rs[:n], true
	}
	return rs, more
}

// readme finds and reads the README of a tree.
func (rp *Repo) readme(tree oid.ID) *readme {
	for _, name := range readmeNames {
		e, err := rp.lookup(tree, name)
		if err != nil || object.ModeType(e.Mode) != object.Blob {
			continue
		}
		_, data, whole, err := rp.R.ReadObjectPrefix(e.ID, nil, maxReadme)
		if err != nil || treediff.IsBinary(data) {
			return nil
		}
		if len(data) > maxReadme {
			data, whole = data[:maxReadme], false
		}
		return &readme{Name: name, Text: text(data), Clipped: !whole}
	}
	return nil
}

// feeds are the Atom feeds of a repository's pages: its branch rev's
// (HEAD for "") and its tags'.
func (rq *request) feeds(rev string) []feed {
	name := rq.repo.Name
	label := rev
	if label == "" {
		label = "HEAD"
	}
	return []feed{
		{Title: name + ": commits of " + label, URL: pageURL(name, actAtom, rev, "")},
		{Title: name + ": tags", URL: repoURL(name) + actTagsAtom},
	}
}

// offset reads a log page's ofs parameter.
func (rq *request) offset() (int, error) {
	v := rq.r.URL.Query().Get("ofs")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > maxLogSkip {
		return 0, errNotFound
	}
	return n, nil
}

// log shows a page of a revision's history.
func (rq *request) log() error {
	rp := rq.repo
	ofs, err := rq.offset()
	if err != nil {
		return err
	}
	res, err := rp.resolve(rq.ctx, rq.rt.rev)
	if err != nil {
		return err
	}
	type body struct {
		Rev, Path    string
		Commits      []*commit
		Newer, Older string
	}
	b := &body{Rev: revLabel(rq.rt.rev), Path: rq.rt.path}
	more := false
	err = rp.history(rq.ctx, res.id, rq.rt.path, ofs, func(c *commit) bool {
		if len(b.Commits) == logPage {
			more = true
			return false
		}
		b.Commits = append(b.Commits, c)
		return true
	})
	if err != nil {
		return err
	}
	u := pageURL(rp.Name, actLog, rq.rt.rev, rq.rt.path)
	if rq.rt.rev == "" {
		u = pageURL(rp.Name, actLog, "HEAD", rq.rt.path)
	}
	if ofs > 0 {
		b.Newer = u + "?ofs=" + strconv.Itoa(max(0, ofs-logPage))
	}
	if more && ofs+logPage <= maxLogSkip {
		b.Older = u + "?ofs=" + strconv.Itoa(ofs+logPage)
	}
	return rq.render("log", &layout{Title: rp.Name + ": log", Repo: rp, Rev: rq.rt.rev, Body: b, Feeds: rq.feeds(rq.rt.rev)}, res.full, time.Time{})
}

// revLabel names a revision on a page.
func revLabel(rev string) string {
	if rev == "" {
		return "HEAD"
	}
	return rev
}

// fileDiff is one file of a commit's diff.
type fileDiff struct {
	Status          string
	Path, Anchor    string
	URL             string
	Binary, Counted bool
	Added, Removed  int
	Note            string
	Hunks           []hunk
	Bidi            bool // a line shown has bidi characters
}

// commit shows a commit and its diff against its first parent.
func (rq *request) commit() error {
	rp := rq.repo
	res, err := rp.resolve(rq.ctx, rq.rt.rev)
	if err != nil {
		return err
	}
	c, err := rp.readCommit(res.id)
	if err != nil {
		return err
	}
	type body struct {
		Commit         *commit
		Files          []*fileDiff
		Added, Removed int
		Clipped        bool
	}
	b := &body{Commit: c}
	var base oid.ID
	if len(c.Parents) > 0 {
		p, err := rp.readCommit(c.Parents[0])
		if err != nil {
			return err
		}
		base = p.Tree
	}
	budget, lines := maxDiffBytes, 0
	errFull := fmt.Errorf("diff: too many files")
	err = treediff.Trees(diffTrees{rp}, rp.R.Format, base, c.Tree, func(ch treediff.Change) error {
		if err := rq.ctx.Err(); err != nil {
			return err
		}
		if len(b.Files) == maxDiffFiles {
			b.Clipped = true
			return errFull
		}
		f := &fileDiff{Status: string(ch.Status), Path: text([]byte(ch.Path)), Anchor: "f" + strconv.Itoa(len(b.Files))}
		// Files link to their blob page, on the side that has them;
		// a submodule has none.
		switch {
		case ch.Status == 'D' && object.ModeType(ch.OldMode) == object.Blob:
			f.URL = pageURL(rp.Name, actBlob, c.Parents[0].String(), ch.Path)
		case ch.Status != 'D' && object.ModeType(ch.NewMode) == object.Blob:
			f.URL = pageURL(rp.Name, actBlob, c.ID.String(), ch.Path)
		}
		b.Files = append(b.Files, f)
		old, oldOK := rp.diffSide(ch.Old, ch.OldMode, &budget)
		new, newOK := rp.diffSide(ch.New, ch.NewMode, &budget)
		switch {
		case object.ModeType(ch.OldMode) == object.Commit || object.ModeType(ch.NewMode) == object.Commit:
			f.Note = "Submodule changed."
		case !oldOK || !newOK:
			f.Note = "File too large to show here."
		case treediff.IsBinary(old) || treediff.IsBinary(new):
			f.Binary = true
		case lines >= maxDiffLines:
			f.Note = "Diff too long to show here."
		default:
			hs, added, removed, ok := unified(old, new, maxEdits)
			if !ok {
				f.Note = "Diff too complex to show here."
				break
			}
			f.Hunks, f.Added, f.Removed, f.Counted = hs, added, removed, true
			b.Added, b.Removed = b.Added+added, b.Removed+removed
			for _, h := range hs {
				lines += len(h.Lines) + 1
				for _, l := range h.Lines {
					f.Bidi = f.Bidi || l.Bidi
				}
			}
		}
		return nil
	})
	if errors.Is(err, errTreeTooLarge) {
		b.Clipped, err = true, nil
	}
	if err != nil && err != errFull {
		return err
	}
	l := &layout{Title: rp.Name + ": " + title(c.Message), Repo: rp, Rev: rq.rt.rev, Body: b}
	return rq.render("commit", l, res.full, when(c.Committer))
}

// errTreeTooLarge ends a commit's diff at a tree over maxDiffTree bytes.
var errTreeTooLarge = errors.New("diff: tree too large")

// diffTrees reads the trees of a commit's diff, up to maxDiffTree bytes
// each: a diff compares trees whole, and the web process renders pages
// for every visitor of its class within one client's memory budget.
type diffTrees struct{ rp *Repo }

func (d diffTrees) ReadObject(id oid.ID) (object.Type, []byte, error) {
	if _, size, err := d.rp.R.StatObject(id); err == nil && size > maxDiffTree {
		return 0, nil, errTreeTooLarge
	}
	return d.rp.R.ReadObject(id)
}

// diffSide reads one side of a file's diff within the budget; an
// absent side is empty. ok is false for a file too large.
func (rp *Repo) diffSide(id oid.ID, mode uint32, budget *int) ([]byte, bool) {
	if !id.Valid() || id.IsNull() || mode == 0 || object.ModeType(mode) != object.Blob {
		return nil, true
	}
	_, size, err := rp.R.StatObject(id)
	if err != nil || size > maxFileDiff || size > int64(*budget) {
		return nil, false
	}
	_, data, err := rp.R.ReadObject(id)
	if err != nil {
		return nil, false
	}
	*budget -= len(data)
	return data, true
}

// crumb is one directory of a path's breadcrumbs.
type crumb struct{ Name, URL string }

// crumbs links each directory of a path to its tree (and its last
// component, a file, to its blob page when blob).
func crumbs(repo, rev, p string, blob bool) []crumb {
	if p == "" {
		return nil
	}
	parts := strings.Split(p, "/")
	var out []crumb
	for i, name := range parts {
		action := actTree
		if blob && i == len(parts)-1 {
			action = actBlob
		}
		out = append(out, crumb{Name: name, URL: pageURL(repo, action, rev, strings.Join(parts[:i+1], "/"))})
	}
	return out
}

// treeEntry is a line of a tree page.
type treeEntry struct {
	Mode, Name, URL string
	ID              string // a submodule's commit
	Dir             bool
}

// tree shows a tree at a revision and path.
func (rq *request) tree() error {
	rp := rq.repo
	rev := rq.rt.rev
	if rev == "" {
		rev = "HEAD"
	}
	res, err := rp.resolve(rq.ctx, rq.rt.rev)
	if err != nil {
		return err
	}
	c, err := rp.readCommit(res.id)
	if err != nil {
		return err
	}
	e, err := rp.lookup(c.Tree, rq.rt.path)
	if err != nil {
		return err
	}
	if e.Mode != object.ModeTree {
		return errNotFound
	}
	// The entries shown fit in the tree's first maxTreeRead bytes; a
	// tree of 200,000 entries is not read whole for them.
	t, data, whole, err := rp.R.ReadObjectPrefix(e.ID, nil, maxTreeRead)
	if err != nil || t != object.Tree {
		return errNotFound
	}
	type body struct {
		Repo, Rev, Path string
		Crumbs          []crumb
		Entries         []treeEntry
		Clipped         bool
	}
	b := &body{Repo: rp.Name, Rev: rev, Path: rq.rt.path, Crumbs: crumbs(rp.Name, rev, rq.rt.path, false)}
	it := object.NewTreeIter(rp.R.Format, data)
	for te, ok := it.Next(); ok; te, ok = it.Next() {
		if len(b.Entries) == maxTreeEntries {
			b.Clipped = true
			break
		}
		name := string(te.Name)
		p := path.Join(rq.rt.path, name)
		if strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
			// Not a name a path can reach: shown, not linked.
			b.Entries = append(b.Entries, treeEntry{Mode: fmt.Sprintf("%06o", te.Mode), Name: text(te.Name), ID: te.ID.String()})
			continue
		}
		en := treeEntry{Mode: fmt.Sprintf("%06o", te.Mode), Name: text(te.Name)}
		switch object.ModeType(te.Mode) {
		case object.Tree:
			en.URL, en.Dir = pageURL(rp.Name, actTree, rev, p), true
		case object.Commit:
			en.ID = te.ID.String()
		default:
			en.URL = pageURL(rp.Name, actBlob, rev, p)
		}
		b.Entries = append(b.Entries, en)
	}
	b.Clipped = b.Clipped || !whole
	title := rp.Name + ": " + rev
	if rq.rt.path != "" {
		title += ": " + rq.rt.path
	}
	return rq.render("tree", &layout{Title: title, Repo: rp, Rev: rq.rt.rev, Body: b}, res.full, when(c.Committer))
}

// blobAt finds the file a blob or raw URL names.
func (rq *request) blobAt() (entry, resolved, *commit, error) {
	rp := rq.repo
	res, err := rp.resolve(rq.ctx, rq.rt.rev)
	if err != nil {
		return entry{}, res, nil, err
	}
	c, err := rp.readCommit(res.id)
	if err != nil {
		return entry{}, res, nil, err
	}
	e, err := rp.lookup(c.Tree, rq.rt.path)
	if err != nil {
		return e, res, c, err
	}
	if object.ModeType(e.Mode) != object.Blob {
		return e, res, c, errNotFound
	}
	return e, res, c, nil
}

// line is a line of a blob page.
type line struct {
	N    int
	Text string
	Bidi bool // the line has bidi characters
}

// blob shows a file with line numbers.
func (rq *request) blob() error {
	rp := rq.repo
	e, res, c, err := rq.blobAt()
	if err != nil {
		return err
	}
	type body struct {
		Repo, Rev, Path  string
		Crumbs           []crumb
		Size             int64
		Binary, TooLarge bool
		// Numbers are the line numbers, each an anchor, those of lines
		// with bidi characters marked; Code the lines, each ended by
		// a newline: two columns, so that the page is two elements
		// whatever the file's length.
		Numbers template.HTML
		Code    string
		Bidi    bool // the file has bidi characters
	}
	b := &body{Repo: rp.Name, Rev: rq.rt.rev, Path: rq.rt.path, Crumbs: crumbs(rp.Name, rq.rt.rev, rq.rt.path, true)}
	_, size, err := rp.R.StatObject(e.ID)
	if err != nil {
		return err
	}
	b.Size = size
	if size > maxBlobShow {
		b.TooLarge = true
	} else {
		_, data, err := rp.R.ReadObject(e.ID)
		if err != nil {
			return err
		}
		if treediff.IsBinary(data) {
			b.Binary = true
		} else {
			ls, _ := splitLines(data)
			b.Bidi = hasBidi(data)
			var code strings.Builder
			code.Grow(len(data) + len(ls))
			// The numbers are digits only: written here rather than by
			// the template, a line at a time, which cost more than the
			// rest of the page.
			nums := make([]byte, 0, len(ls)*32)
			for i, l := range ls {
				n := strconv.AppendInt(nil, int64(i+1), 10)
				nums = append(nums, `<a id="L`...)
				nums = append(nums, n...)
				nums = append(nums, `" href="#L`...)
				nums = append(nums, n...)
				if b.Bidi && hasBidi(l) {
					nums = append(nums, `" class="bidi`...)
				}
				nums = append(nums, `">`...)
				nums = append(nums, n...)
				nums = append(nums, "</a>\n"...)
				code.WriteString(text(l))
				code.WriteByte('\n')
			}
			b.Numbers = template.HTML(nums)
			b.Code = code.String()
		}
	}
	return rq.render("blob", &layout{Title: rp.Name + ": " + rq.rt.path, Repo: rp, Rev: rq.rt.rev, Body: b}, res.full, when(c.Committer))
}

// blameLine is a line of a blame page: First marks the first of a run
// of lines from one commit, which names it.
type blameLine struct {
	line
	First               bool
	Commit              oid.ID
	Author, Date, Title string
}

// blame shows which commit brought each line of a file, within the
// blame engine's bounds: a file too large or a history too long to
// blame is said so, not failed.
func (rq *request) blame() error {
	rp := rq.repo
	e, res, c, err := rq.blobAt()
	if err != nil {
		return err
	}
	type body struct {
		Repo, Rev, Path string
		Crumbs          []crumb
		Note            string
		Lines           []blameLine
		Bidi            bool // some line has bidi characters
	}
	b := &body{Repo: rp.Name, Rev: rq.rt.rev, Path: rq.rt.path, Crumbs: crumbs(rp.Name, rq.rt.rev, rq.rt.path, true)}
	_, size, err := rp.R.StatObject(e.ID)
	if err != nil {
		return err
	}
	var lines []blame.Line
	if size > maxBlobShow {
		b.Note = "File too large to blame here."
	} else if binary, err := rq.isBinary(e.ID); err != nil || binary {
		if err != nil {
			return err
		}
		b.Note = "Binary file."
	} else if lines, err = blame.Blame(rq.ctx, rp.R, c.ID, rq.rt.path, blame.Limits{MaxFileSize: maxBlobShow}); err != nil {
		switch {
		case errors.Is(err, blame.ErrTooLarge), errors.Is(err, blame.ErrTooManyCommits):
			b.Note = "This file's history is too large to blame here."
		case rq.ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded):
			b.Note = "Blaming this file took too long."
		default:
			return err
		}
	}
	who := map[oid.ID]*commit{}
	b.Lines = make([]blameLine, len(lines))
	for i, l := range lines {
		bl := blameLine{line: line{N: i + 1, Text: text([]byte(l.Text)), Bidi: hasBidi(l.Text)}, Commit: l.Commit}
		b.Bidi = b.Bidi || bl.Bidi
		if i == 0 || lines[i-1].Commit != l.Commit {
			bl.First = true
			bc := who[l.Commit]
			if bc == nil {
				if bc, err = rp.readCommit(l.Commit); err != nil {
					return err
				}
				who[l.Commit] = bc
			}
			bl.Author, bl.Date, bl.Title = string(text(bc.Author.Name)), when(bc.Committer).Format("2006-01-02"), string(title(bc.Message))
		}
		b.Lines[i] = bl
	}
	return rq.render("blame", &layout{Title: rp.Name + ": blame " + rq.rt.path, Repo: rp, Rev: rq.rt.rev, Body: b}, res.full, when(c.Committer))
}

// isBinary reports whether the blob id looks binary, as the blob page
// decides.
func (rq *request) isBinary(id oid.ID) (bool, error) {
	_, data, err := rq.repo.R.ReadObject(id)
	if err != nil {
		return false, err
	}
	return treediff.IsBinary(data), nil
}

// raw sends a file as it is: text as text/plain, anything else as a
// download, never as a type a browser would run; streamed, so that
// its size costs no memory.
func (rq *request) raw() error {
	rp := rq.repo
	e, res, c, err := rq.blobAt()
	if err != nil {
		return err
	}
	_, size, rc, err := rp.R.OpenObject(e.ID)
	if err != nil {
		return err
	}
	defer rc.Close()
	head := make([]byte, 8000)
	n, _ := readFull(rc, head)
	head = head[:n]
	h := rq.w.Header()
	h.Set("Content-Security-Policy", RawCSP)
	h.Set("Content-Length", strconv.FormatInt(size, 10))
	h.Set("ETag", `"`+e.ID.String()+`"`)
	h.Set("Last-Modified", when(c.Committer).UTC().Format(timeFormat))
	if res.full {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	if treediff.IsBinary(head) {
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-Disposition", disposition(path.Base(rq.rt.path)))
	} else {
		h.Set("Content-Type", "text/plain; charset=utf-8")
	}
	if match := rq.r.Header.Get("If-None-Match"); match != "" && strings.Contains(match, `"`+e.ID.String()+`"`) {
		h.Del("Content-Length")
		rq.w.WriteHeader(304)
		return nil
	}
	if rq.r.Method == "HEAD" {
		return nil
	}
	rq.w.WriteHeader(200)
	if _, err := rq.w.Write(head); err != nil {
		return nil // the client is gone
	}
	if _, err := copyCtx(rq.ctx, rq.w, rc); err != nil {
		return fmt.Errorf("%w: %v", errSent, err)
	}
	return nil
}

// timeFormat is HTTP's date format.
const timeFormat = "Mon, 02 Jan 2006 15:04:05 GMT"

// refList lists the branches or tags.
func (rq *request) refList(prefix, heading, action string) error {
	rp := rq.repo
	rs, more, err := rp.refs(prefix, maxRefs)
	if err != nil {
		return err
	}
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].When.After(rs[j].When) })
	type body struct {
		Heading, Action, Feed string
		Refs                  []ref
		More                  bool
	}
	b := &body{Heading: heading, Action: action, Refs: rs, More: more}
	if action == actTag {
		b.Feed = repoURL(rp.Name) + actTagsAtom
	}
	return rq.render("refs", &layout{Title: rp.Name + ": " + strings.ToLower(heading), Repo: rp, Body: b, Feeds: rq.feeds("")}, false, time.Time{})
}

// tag shows a tag.
func (rq *request) tag() error {
	rp := rq.repo
	name := "refs/tags/" + rq.rt.rev
	if rp.hidden(name) {
		return errNotFound
	}
	r, err := rp.R.Refs.Resolve(name)
	if err != nil || r.Target != "" && rp.hidden(r.Target) {
		return errNotFound
	}
	t := ref{Name: rq.rt.rev, Full: name, ID: r.ID}
	rp.peel(&t)
	type body struct{ Ref ref }
	return rq.render("tag", &layout{Title: rp.Name + ": tag " + rq.rt.rev, Repo: rp, Body: &body{Ref: t}}, false, time.Time{})
}
