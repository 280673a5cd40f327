// Package fastexport writes a repository's history as a git fast-import
// stream (git-fast-import(1), "Input Format"): what `gotadmin
// fast-export` runs, the counterpart of `git fast-export`. The stream is
// written so that `git fast-import` (or package fastimport) rebuilds the
// same objects with the same ids: every commit's author, committer,
// encoding and message are copied byte for byte, its tree is given as
// the changes against its first parent's, annotated tags (signed ones
// included, their signature being part of the message) keep their
// tagger and message.
//
// What a fast-import stream cannot describe is written as closely as it
// can be and reported through Options.Warn: commit headers other than
// tree, parent, author, committer and encoding (gpgsig, mergetag), a
// commit without an author, tree entries with modes fast-import refuses,
// tags of trees, and references to trees or blobs. Those objects then
// get other ids.
//
// Memory: the marks of the commits and blobs written (an id and a
// number each) and the ancestry stack of the walk; blobs are copied from
// the repository as streams, never held whole.
package fastexport

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/pack"
	"gotd/internal/git/refs"
	"gotd/internal/git/repo"
	"gotd/internal/git/treediff"
)

// Options control Export. The zero value exports refs/heads and
// refs/tags.
type Options struct {
	// Refs names the references to export, full names or names found
	// under refs/, refs/tags/ or refs/heads/; empty means every
	// reference under refs/heads/ and refs/tags/.
	Refs []string
	// Warn, if not nil, is told about everything the stream cannot
	// reproduce exactly.
	Warn func(msg string)
}

// smallBlob is the size up to which a blob is read whole rather than
// streamed.
const smallBlob = 1 << 20

// maxTagDepth bounds a chain of tags pointing at tags.
const maxTagDepth = 64

type exporter struct {
	ctx     context.Context
	r       *repo.Repo
	f       oid.Format
	w       *bufio.Writer
	opts    Options
	marks   map[oid.ID]uint64 // commits, blobs and tags written
	next    uint64
	buf     []byte
	warns   map[string]bool
	modes   map[uint32]bool // odd modes warned about
	blobBuf []byte
	// lastCommit is the commit written last and lastTree its tree.
	lastCommit, lastTree oid.ID
}

// Export writes the stream for the chosen references to w. An error
// from w or from reading the repository stops it; what was written by
// then is a truncated stream (git fast-import fails on it, as it lacks
// the references' final resets).
func Export(ctx context.Context, r *repo.Repo, w io.Writer, opts Options) error {
	ex := &exporter{
		ctx: ctx, r: r, f: r.Format, opts: opts,
		w:     bufio.NewWriterSize(w, 64<<10),
		marks: make(map[oid.ID]uint64),
		warns: make(map[string]bool),
		modes: make(map[uint32]bool),
	}
	list, err := ex.refs()
	if err != nil {
		return err
	}
	type target struct {
		name string
		id   oid.ID
		typ  object.Type
	}
	var targets []target
	for _, ref := range list {
		t, _, err := r.StatObject(ref.ID)
		if err != nil {
			return fmt.Errorf("fastexport: %s: %w", ref.Name, err)
		}
		targets = append(targets, target{ref.Name, ref.ID, t})
	}
	// Commits first, parents before children, then the tags, then the
	// references set to what they point at.
	for _, t := range targets {
		var c oid.ID
		switch t.typ {
		case object.Commit:
			c = t.id
		case object.Tag:
			var err error
			if c, err = ex.peelToCommit(t.id); err != nil {
				return err
			}
		}
		if c.Valid() {
			if err := ex.commits(c, t.name); err != nil {
				return err
			}
		}
	}
	for _, t := range targets {
		switch t.typ {
		case object.Commit:
			fmt.Fprintf(ex.w, "reset %s\nfrom :%d\n\n", t.name, ex.marks[t.id])
		case object.Tag:
			mk, name, err := ex.tag(t.id, 0)
			if err != nil {
				return err
			}
			if mk != 0 && "refs/tags/"+name != t.name {
				ex.warn(fmt.Sprintf("%s points at a tag named %s: fast-import also creates refs/tags/%s", t.name, name, name))
				fmt.Fprintf(ex.w, "reset %s\nfrom :%d\n\n", t.name, mk)
			}
		default:
			ex.warn(fmt.Sprintf("%s points at a %s, which a stream cannot name: skipped", t.name, t.typ))
		}
	}
	ex.w.WriteString("done\n")
	return ex.w.Flush()
}

func (ex *exporter) warn(msg string) {
	if ex.opts.Warn != nil && !ex.warns[msg] {
		ex.warns[msg] = true
		ex.opts.Warn(msg)
	}
}

// refs lists the references to export with their values.
func (ex *exporter) refs() ([]refs.Ref, error) {
	var list []refs.Ref
	if len(ex.opts.Refs) == 0 {
		for _, prefix := range []string{"refs/heads/", "refs/tags/"} {
			err := ex.r.Refs.List(prefix, func(ref refs.Ref) error {
				list = append(list, ref)
				return nil
			})
			if err != nil {
				return nil, fmt.Errorf("fastexport: list references: %w", err)
			}
		}
		return list, nil
	}
	seen := make(map[string]bool)
	for _, n := range ex.opts.Refs {
		var found refs.Ref
		for _, full := range []string{n, "refs/" + n, "refs/tags/" + n, "refs/heads/" + n} {
			if refs.CheckName(full) != nil {
				continue
			}
			if ref, err := ex.r.Refs.Resolve(full); err == nil {
				found = ref
				found.Name = full
				break
			}
		}
		if found.Name == "" {
			return nil, fmt.Errorf("fastexport: reference not found: %s", strconv.Quote(n))
		}
		if !seen[found.Name] {
			seen[found.Name] = true
			list = append(list, found)
		}
	}
	return list, nil
}

// peelToCommit follows tags to a commit; the zero ID when they end at a
// tree or blob.
func (ex *exporter) peelToCommit(id oid.ID) (oid.ID, error) {
	for range maxTagDepth {
		t, data, err := ex.r.ReadObject(id)
		if err != nil {
			return id, fmt.Errorf("fastexport: %w", err)
		}
		if t != object.Tag {
			if t == object.Commit {
				return id, nil
			}
			return oid.ID{}, nil
		}
		tg, err := object.ParseTag(ex.f, data)
		if err != nil {
			return id, fmt.Errorf("fastexport: tag %s: %w", id, err)
		}
		id = tg.Object
	}
	return id, fmt.Errorf("fastexport: tag chain longer than %d at %s", maxTagDepth, id)
}

// frame is a commit on the walk's stack: its parents are written first.
type frame struct {
	id      oid.ID
	parents []oid.ID
	next    int
}

// commits writes tip and every ancestor not written yet, parents first,
// as commits on ref.
func (ex *exporter) commits(tip oid.ID, ref string) error {
	if _, ok := ex.marks[tip]; ok {
		return nil
	}
	onStack := map[oid.ID]bool{tip: true}
	stack := []frame{{id: tip, next: -1}}
	n := 0
	for len(stack) > 0 {
		if n++; n%1024 == 0 {
			if err := ex.ctx.Err(); err != nil {
				return err
			}
		}
		top := &stack[len(stack)-1]
		if top.next < 0 {
			_, ps, err := ex.links(top.id)
			if err != nil {
				return err
			}
			top.parents, top.next = ps, 0
		}
		if top.next < len(top.parents) {
			p := top.parents[top.next]
			top.next++
			if _, done := ex.marks[p]; !done && !onStack[p] {
				onStack[p] = true
				stack = append(stack, frame{id: p, next: -1})
			}
			continue
		}
		id := top.id
		stack = stack[:len(stack)-1]
		delete(onStack, id)
		if err := ex.commit(id, ref); err != nil {
			return err
		}
	}
	return nil
}

func (ex *exporter) links(id oid.ID) (oid.ID, []oid.ID, error) {
	t, data, err := ex.r.ReadObject(id)
	if err != nil {
		return oid.ID{}, nil, fmt.Errorf("fastexport: commit %s: %w", id, err)
	}
	if t != object.Commit {
		return oid.ID{}, nil, fmt.Errorf("fastexport: %s is a %s, not a commit", id, t)
	}
	tree, ps, _, err := object.CommitLinks(ex.f, data, nil)
	if err != nil {
		return oid.ID{}, nil, fmt.Errorf("fastexport: commit %s: %w", id, err)
	}
	return tree, ps, nil
}

// commit writes one commit whose parents are written, preceded by the
// blobs it adds.
func (ex *exporter) commit(id oid.ID, ref string) error {
	_, data, err := ex.r.ReadObject(id)
	if err != nil {
		return fmt.Errorf("fastexport: commit %s: %w", id, err)
	}
	c, err := object.ParseCommit(ex.f, data)
	if err != nil {
		return fmt.Errorf("fastexport: commit %s: %w", id, err)
	}
	var parentTree oid.ID
	if len(c.Parents) > 0 {
		// The first parent is most often the commit written just
		// before.
		if c.Parents[0] == ex.lastCommit {
			parentTree = ex.lastTree
		} else if parentTree, _, err = ex.links(c.Parents[0]); err != nil {
			return err
		}
	}
	ex.lastCommit, ex.lastTree = id, c.Tree
	var dels, mods []treediff.Change
	err = treediff.Trees(ex.r, ex.f, parentTree, c.Tree, func(ch treediff.Change) error {
		if ch.Status == 'D' {
			dels = append(dels, ch)
			return nil
		}
		if ch.NewMode != object.ModeGitlink {
			if err := ex.blob(ch.New); err != nil {
				return err
			}
		}
		mods = append(mods, ch)
		return nil
	})
	if err != nil {
		return fmt.Errorf("fastexport: commit %s: %w", id, err)
	}
	if len(c.Extra) > 0 {
		name, _, _ := bytes.Cut(c.Extra[0], []byte(" "))
		ex.warn(fmt.Sprintf("commit %s: header %s cannot be written to a stream: dropped", id, strconv.Quote(string(name))))
	}
	author, committer := headerValue(data, "author"), headerValue(data, "committer")
	if committer == nil {
		return fmt.Errorf("fastexport: commit %s has no committer", id)
	}
	if author == nil {
		ex.warn(fmt.Sprintf("commit %s has no author: fast-import will use the committer", id))
	}
	ex.next++
	mk := ex.next
	ex.marks[id] = mk
	w := ex.w
	if len(c.Parents) == 0 {
		// A root commit: without a reset, fast-import would make the
		// branch's last commit its parent.
		fmt.Fprintf(w, "reset %s\n", ref)
	}
	fmt.Fprintf(w, "commit %s\nmark :%d\n", ref, mk)
	if author != nil {
		fmt.Fprintf(w, "author %s\n", author)
	}
	fmt.Fprintf(w, "committer %s\n", committer)
	if c.Encoding != nil {
		fmt.Fprintf(w, "encoding %s\n", c.Encoding)
	}
	fmt.Fprintf(w, "data %d\n", len(c.Message))
	w.Write(c.Message)
	w.WriteByte('\n')
	for i, p := range c.Parents {
		cmd := "merge"
		if i == 0 {
			cmd = "from"
		}
		fmt.Fprintf(w, "%s :%d\n", cmd, ex.marks[p])
	}
	for _, ch := range dels {
		w.WriteString("D ")
		w.Write(quotePath(ex.buf[:0], ch.Path))
		w.WriteByte('\n')
	}
	for _, ch := range mods {
		mode := ch.NewMode
		switch mode {
		case 0o100644, 0o100755, object.ModeSymlink, object.ModeGitlink:
		default:
			// Modes of old Git (100664) fast-import refuses.
			if ex.modes[mode] {
				mode = 0o100644
				break
			}
			ex.modes[mode] = true
			// Once per mode: old histories have it on many files.
			ex.warn(fmt.Sprintf("mode %o written as 100644 (first in commit %s, %s): the trees holding it get other ids", mode, id, strconv.Quote(ch.Path)))
			mode = 0o100644
		}
		if mode == object.ModeGitlink {
			fmt.Fprintf(w, "M %o %s ", mode, ch.New)
		} else {
			fmt.Fprintf(w, "M %o :%d ", mode, ex.marks[ch.New])
		}
		w.Write(quotePath(ex.buf[:0], ch.Path))
		w.WriteByte('\n')
	}
	w.WriteByte('\n')
	return nil
}

// headerValue returns the value of the first header line named name in
// a commit's header, nil if there is none.
func headerValue(data []byte, name string) []byte {
	for len(data) > 0 {
		line, rest, _ := bytes.Cut(data, []byte("\n"))
		if len(line) == 0 {
			return nil
		}
		if v, ok := bytes.CutPrefix(line, []byte(name+" ")); ok {
			return v
		}
		data = rest
	}
	return nil
}

// blob writes a blob, streamed from the repository, unless it was
// written already.
func (ex *exporter) blob(id oid.ID) error {
	if _, ok := ex.marks[id]; ok {
		return nil
	}
	// A blob up to smallBlob is read whole (a reader costs buffers a
	// small blob read whole does not), without sizing it first: a
	// larger one is refused before it is read, and streamed.
	t, data, err := ex.r.ReadObjectIntoLimit(id, ex.blobBuf[:0], smallBlob)
	switch {
	case err == nil:
		if t != object.Blob {
			return fmt.Errorf("fastexport: %s is a %s, not a blob", id, t)
		}
		if cap(data) <= 2*smallBlob {
			ex.blobBuf = data
		}
		ex.next++
		ex.marks[id] = ex.next
		fmt.Fprintf(ex.w, "blob\nmark :%d\ndata %d\n", ex.next, len(data))
		ex.w.Write(data)
		ex.w.WriteByte('\n')
		return nil
	case !errors.Is(err, pack.ErrTooLarge):
		return fmt.Errorf("fastexport: blob %s: %w", id, err)
	}
	t, size, rc, err := ex.r.OpenObject(id)
	if err != nil {
		return fmt.Errorf("fastexport: blob %s: %w", id, err)
	}
	defer rc.Close()
	if t != object.Blob {
		return fmt.Errorf("fastexport: %s is a %s, not a blob", id, t)
	}
	ex.next++
	ex.marks[id] = ex.next
	fmt.Fprintf(ex.w, "blob\nmark :%d\ndata %d\n", ex.next, size)
	n, err := io.Copy(ex.w, rc)
	if err == nil && n != size {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return fmt.Errorf("fastexport: blob %s: %w", id, err)
	}
	ex.w.WriteByte('\n')
	return nil
}

// tag writes the tag id (and the tags and blob it points at first) and
// returns its mark and name; a mark of 0 when it cannot be written.
func (ex *exporter) tag(id oid.ID, depth int) (uint64, string, error) {
	if depth > maxTagDepth {
		return 0, "", fmt.Errorf("fastexport: tag chain longer than %d at %s", maxTagDepth, id)
	}
	_, data, err := ex.r.ReadObject(id)
	if err != nil {
		return 0, "", fmt.Errorf("fastexport: tag %s: %w", id, err)
	}
	tg, err := object.ParseTag(ex.f, data)
	if err != nil {
		return 0, "", fmt.Errorf("fastexport: tag %s: %w", id, err)
	}
	name := string(tg.Name)
	if mk, ok := ex.marks[id]; ok {
		return mk, name, nil
	}
	if err := refs.CheckName("refs/tags/" + name); err != nil {
		ex.warn(fmt.Sprintf("tag %s is named %s, not a valid reference name: skipped", id, strconv.Quote(name)))
		return 0, name, nil
	}
	var from uint64
	switch tg.Type {
	case object.Commit:
		from = ex.marks[tg.Object]
	case object.Blob:
		if err := ex.blob(tg.Object); err != nil {
			return 0, "", err
		}
		from = ex.marks[tg.Object]
	case object.Tag:
		if from, _, err = ex.tag(tg.Object, depth+1); err != nil {
			return 0, "", err
		}
	}
	if from == 0 {
		ex.warn(fmt.Sprintf("tag %s points at a %s a stream cannot name: skipped", name, tg.Type))
		return 0, name, nil
	}
	if strings.Count(string(data[:headerEnd(data)]), "\n") != 3+boolInt(tg.Tagger != nil) {
		ex.warn(fmt.Sprintf("tag %s has headers a stream cannot carry: dropped", name))
	}
	ex.next++
	mk := ex.next
	ex.marks[id] = mk
	fmt.Fprintf(ex.w, "tag %s\nmark :%d\nfrom :%d\n", name, mk, from)
	if tg.Tagger != nil {
		fmt.Fprintf(ex.w, "tagger %s\n", headerValue(data, "tagger"))
	}
	fmt.Fprintf(ex.w, "data %d\n", len(tg.Message))
	ex.w.Write(tg.Message)
	ex.w.WriteByte('\n')
	return mk, name, nil
}

// headerEnd returns the length of an object's header, up to and
// including the newline before the blank line.
func headerEnd(data []byte) int {
	if i := bytes.Index(data, []byte("\n\n")); i >= 0 {
		return i + 1
	}
	return len(data)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// quotePath appends path to dst, C-quoted when fast-import would not
// read it literally (it starts with a quote or holds a newline or other
// control byte), as git fast-export quotes.
func quotePath(dst []byte, path string) []byte {
	need := strings.HasPrefix(path, `"`)
	for i := 0; i < len(path) && !need; i++ {
		need = path[i] < 0x20 || path[i] == 0x7f
	}
	if !need {
		return append(dst, path...)
	}
	dst = append(dst, '"')
	for i := 0; i < len(path); i++ {
		c := path[i]
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			if c < 0x20 || c == 0x7f {
				dst = append(dst, '\\', '0'+c>>6, '0'+(c>>3)&7, '0'+c&7)
			} else {
				dst = append(dst, c)
			}
		}
	}
	return append(dst, '"')
}
