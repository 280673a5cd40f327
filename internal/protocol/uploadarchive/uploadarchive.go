// Package uploadarchive is the server side of `git archive --remote`:
// Git's upload-archive service. There is no gitprotocol document for
// it; the conversation is the one C Git's builtin/upload-archive.c
// serves and archive.c's run_remote_archiver expects, in protocol
// version 0 only (C Git's clients fall back to it for anything but
// upload-pack):
//
//	client: "argument ARG" packets, at most 63, then a flush
//	server: "NACK reason" and hang up, or "ACK" and a flush, then the
//	        archive on side-band 1 (errors on band 3) and a flush
//
// The arguments are those of `git archive` (see ParseArguments); the
// tree-ish must name a reference the client may see (C Git's default,
// uploadarchive.allowUnreachable off), optionally followed by ":path",
// or be the full id of a commit such references reach. The archive is
// written by internal/engine/archive: the tar byte for byte as C Git's.
package uploadarchive

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"gotd/internal/engine/archive"
	"gotd/internal/git/commitgraph"
	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/refs"
	"gotd/internal/git/repo"
	"gotd/internal/git/walk"
	"gotd/internal/protocol/pktline"
	"gotd/internal/protocol/sideband"
	"gotd/internal/protocol/wire"
)

// Options configure a session. Repo is required.
type Options struct {
	Repo *repo.Repo
	// Hidden, if set, names the references never shown nor served: a
	// tree-ish naming one, or a symbolic reference through one, is no
	// such reference, and an id counts as reachable only from the
	// others.
	Hidden func(name string) bool
	// RequestTimeout bounds the wait for each packet of the request,
	// when the reader has SetReadDeadline (0: none).
	RequestTimeout time.Duration
	// Log receives what the client is not told; nil discards it.
	Log *slog.Logger
	// Now is the time stamped on the entries of an archive of a tree
	// that no commit dates ("REF:path"), as C Git stamps the current
	// time; nil is time.Now.
	Now func() time.Time
	// Accepted, if set, is called once the request is accepted and
	// the ACK sent: from then on the client reads side-band packets.
	Accepted func()
}

// Result tells the caller what a session did, for the log.
type Result struct {
	Format string // the archive's format, "" for a listing or a refused request
	ID     oid.ID // what was archived: a commit, a tag or a tree
}

// Serve runs one upload-archive session on r and w. It returns when
// the archive is sent, or with the error that ended the session; an
// error meant for the client has been sent to it (before the ACK as a
// NACK, after it on band 3). A half-written archive ends with the
// error band, never with the final flush, so the client fails.
func Serve(ctx context.Context, r io.Reader, w io.Writer, opts Options) (*Result, error) {
	if opts.Repo == nil {
		return nil, errors.New("uploadarchive: no repository")
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	res := &Result{}
	pw := pktline.NewWriter(w)
	args, err := readArguments(pktline.NewReader(wire.DeadlineReader(r, opts.RequestTimeout)))
	if err == nil {
		var q *Request
		if q, err = ParseArguments(args); err == nil {
			var job *job
			if job, err = prepare(ctx, opts, q); err == nil {
				return res, send(ctx, pw, opts, job, res)
			}
		}
	}
	pw.WriteString("NACK " + wire.ClientMessage(err) + "\n")
	return res, err
}

// readArguments reads the request: "argument ARG" packets up to a
// flush. A trailing newline is dropped, as C Git's packet_read_line
// drops it.
func readArguments(in *pktline.Reader) ([]string, error) {
	var args []string
	size := 0
	for {
		line, flush, err := wire.ReadLine(in)
		switch {
		case err != nil:
			return nil, err
		case flush:
			return args, nil
		case len(args) == maxArgs:
			return nil, wire.Errorf("Too many options (>%d)", maxArgs)
		}
		arg, ok := strings.CutPrefix(string(line), "argument ")
		if !ok {
			return nil, wire.Errorf("'argument' token or flush expected")
		}
		if size += len(arg); size > maxArgBytes {
			return nil, wire.Errorf("arguments too long (limit %s)", wire.Size(maxArgBytes))
		}
		args = append(args, arg)
	}
}

// job is an accepted request: what to write and how.
type job struct {
	q    *Request
	id   oid.ID // a commit, tag or tree
	opts archive.Options
}

// prepare resolves the request's tree-ish and checks its paths, so
// that whatever would fail the archive before its first byte is
// refused with a NACK.
func prepare(ctx context.Context, opts Options, q *Request) (*job, error) {
	j := &job{q: q, opts: archive.Options{Prefix: q.Prefix, Paths: q.Paths}}
	switch {
	case q.Format != "zip":
	case q.Level == 0:
		j.opts.ZipLevel = archive.ZipStore
	case q.Level > 0:
		j.opts.ZipLevel = q.Level
	}
	if q.List {
		return j, nil
	}
	if len(q.Prefix) > maxPrefix || strings.ContainsRune(q.Prefix, 0) {
		return nil, wire.Errorf("invalid prefix")
	}
	if len(q.Paths) > maxPaths {
		return nil, wire.Errorf("too many paths (limit %d)", maxPaths)
	}
	name, path, sub := strings.Cut(q.TreeIsh, ":")
	id, err := resolveName(ctx, opts, name)
	if err != nil {
		return nil, err
	}
	r := opts.Repo
	tree, isCommit, err := peelToTree(r, id)
	if err != nil {
		return nil, err
	}
	if sub {
		// REF:path names a tree, which no commit dates: C Git stamps
		// the current time.
		if tree, err = lookupTree(r, tree, path); err != nil {
			return nil, err
		}
		j.id, j.opts.Time = tree, opts.Now().Unix()
	} else {
		j.id = id
		if !isCommit {
			j.opts.Time = opts.Now().Unix()
		}
	}
	for _, p := range q.Paths {
		if _, err := lookup(r, tree, p); err != nil {
			return nil, err
		}
	}
	return j, nil
}

// Bounds of what a request may name, as internal/engine/archive
// accepts them.
const (
	maxPrefix = 4096
	maxPaths  = 1024
)

// dwimRules are the places a short reference name is looked for, in
// C Git's order (ref_rev_parse_rules in refs.c).
var dwimRules = []string{"%s", "refs/%s", "refs/tags/%s", "refs/heads/%s", "refs/remotes/%s", "refs/remotes/%s/HEAD"}

// errNoRef is the answer for a name that is not a visible reference,
// hidden or not there alike.
var errNoRef = wire.Errorf("no such ref")

// resolveName returns the object a tree-ish's name (before any ':')
// names: the first visible reference the rules find, else, for a full
// object id, the commit it names if visible references reach it.
func resolveName(ctx context.Context, opts Options, name string) (oid.ID, error) {
	r := opts.Repo
	if name == "" {
		return oid.ID{}, errNoRef
	}
	for _, rule := range dwimRules {
		full := fmt.Sprintf(rule, name)
		if full != "HEAD" && refs.CheckName(full) != nil {
			continue
		}
		ref, err := r.Refs.Read(full)
		if err != nil {
			continue
		}
		if opts.Hidden != nil && r.Refs.ChainAny(ref, opts.Hidden) {
			continue
		}
		res, err := r.Refs.Resolve(full)
		if err != nil {
			continue
		}
		return res.ID, nil
	}
	if len(name) == r.Format.HexSize() {
		if id, err := oid.ParseHex(r.Format, name); err == nil {
			return reachableCommit(ctx, opts, id)
		}
	}
	return oid.ID{}, errNoRef
}

// reachableCommit returns id if it is a commit that the visible
// references reach.
func reachableCommit(ctx context.Context, opts Options, id oid.ID) (oid.ID, error) {
	r := opts.Repo
	if t, _, err := r.ReadObject(id); err != nil || t != object.Commit {
		return oid.ID{}, errNoRef
	}
	var tips []oid.ID
	add := func(ref refs.Ref) error {
		if opts.Hidden == nil || !r.Refs.ChainAny(ref, opts.Hidden) {
			tips = append(tips, ref.ID)
		}
		return nil
	}
	if head, err := r.Refs.Read("HEAD"); err == nil && (opts.Hidden == nil || !r.Refs.ChainAny(head, opts.Hidden)) {
		if res, err := r.Refs.Resolve("HEAD"); err == nil {
			tips = append(tips, res.ID)
		}
	}
	if err := r.Refs.List("refs/", add); err != nil {
		return oid.ID{}, fmt.Errorf("uploadarchive: list references: %w", err)
	}
	w := &walk.Walker{Store: r, Format: r.Format}
	if g, err := commitgraph.Open(r.ObjectsDir(), r.Format); err == nil {
		w.Graph = g
		defer g.Close()
	}
	reached, err := w.Reachable(ctx, tips, []oid.ID{id})
	if err != nil {
		return oid.ID{}, fmt.Errorf("uploadarchive: reachability: %w", err)
	}
	if !reached[id] {
		return oid.ID{}, errNoRef
	}
	return id, nil
}

// maxTagChain bounds the tags peeled to reach a tree.
const maxTagChain = 16

// errNotTree is the answer for a tree-ish that is not one.
var errNotTree = wire.Errorf("not a tree object")

// peelToTree returns the tree id names, through tags and a commit,
// and whether it went through a commit.
func peelToTree(r *repo.Repo, id oid.ID) (oid.ID, bool, error) {
	for range maxTagChain {
		t, data, err := r.ReadObject(id)
		if err != nil {
			return oid.ID{}, false, fmt.Errorf("uploadarchive: read %s: %w", id, err)
		}
		switch t {
		case object.Tag:
			tag, err := object.ParseTag(r.Format, data)
			if err != nil {
				return oid.ID{}, false, fmt.Errorf("uploadarchive: tag %s: %w", id, err)
			}
			id = tag.Object
		case object.Commit:
			c, err := object.ParseCommit(r.Format, data)
			if err != nil {
				return oid.ID{}, false, fmt.Errorf("uploadarchive: commit %s: %w", id, err)
			}
			return c.Tree, true, nil
		case object.Tree:
			return id, false, nil
		default:
			return oid.ID{}, false, errNotTree
		}
	}
	return oid.ID{}, false, errNotTree
}

// lookupTree returns the tree at path below root ("" and "/" are
// root itself).
func lookupTree(r *repo.Repo, root oid.ID, path string) (oid.ID, error) {
	if strings.Trim(path, "/") == "" {
		return root, nil
	}
	e, err := lookup(r, root, path)
	if err != nil {
		return oid.ID{}, wire.Errorf("not a valid object name")
	}
	if e.Type() != object.Tree {
		return oid.ID{}, errNotTree
	}
	return e.ID, nil
}

// errNoMatch is the answer for a path the tree lacks.
var errNoMatch = wire.Errorf("pathspec did not match any files")

// lookup returns the entry at path (relative, '/'-separated, a
// trailing '/' allowed) below the tree root. Only plain paths are
// looked up: a pathspec with wildcards or magic matches nothing here.
func lookup(r *repo.Repo, root oid.ID, path string) (object.TreeEntry, error) {
	path = strings.TrimRight(path, "/")
	if path == "" || strings.HasPrefix(path, "/") {
		return object.TreeEntry{}, errNoMatch
	}
	parts := strings.Split(path, "/")
	if len(parts) > maxDepth {
		return object.TreeEntry{}, errNoMatch
	}
	cur := object.TreeEntry{Mode: object.ModeTree, ID: root}
	for _, part := range parts {
		if part == "" || part == "." || part == ".." || cur.Type() != object.Tree {
			return object.TreeEntry{}, errNoMatch
		}
		t, data, err := r.ReadObject(cur.ID)
		if err != nil {
			return object.TreeEntry{}, fmt.Errorf("uploadarchive: read tree %s: %w", cur.ID, err)
		}
		if t != object.Tree {
			return object.TreeEntry{}, fmt.Errorf("uploadarchive: %s is a %s, not a tree", cur.ID, t)
		}
		found := false
		it := object.NewTreeIter(r.Format, data)
		for e, ok := it.Next(); ok; e, ok = it.Next() {
			if string(e.Name) == part {
				cur, found = e, true
				break
			}
		}
		if err := it.Err(); err != nil {
			return object.TreeEntry{}, fmt.Errorf("uploadarchive: tree %s: %w", cur.ID, err)
		}
		if !found {
			return object.TreeEntry{}, errNoMatch
		}
	}
	return cur, nil
}

// maxDepth bounds the components of a path looked up, as the archive
// bounds the depth of trees.
const maxDepth = 4096

// send acknowledges the request and writes its answer on side-band 1.
func send(ctx context.Context, pw *pktline.Writer, opts Options, j *job, res *Result) error {
	if err := pw.WriteString("ACK\n"); err != nil {
		return fmt.Errorf("uploadarchive: write: %w", err)
	}
	if err := pw.Flush(); err != nil {
		return fmt.Errorf("uploadarchive: write: %w", err)
	}
	if opts.Accepted != nil {
		opts.Accepted()
	}
	sb := sideband.NewWriter(pw, true)
	var err error
	if j.q.List {
		_, err = io.WriteString(sb, strings.Join(formats, "\n")+"\n")
	} else {
		res.Format, res.ID = j.q.Format, j.id
		err = write(ctx, sb, opts.Repo, j)
	}
	if err != nil {
		sb.Errorf("upload-archive: %s\n", wire.ClientMessage(err))
		return err
	}
	if err := pw.Flush(); err != nil {
		return fmt.Errorf("uploadarchive: write: %w", err)
	}
	return nil
}

// write writes the archive of j to w.
func write(ctx context.Context, w io.Writer, r *repo.Repo, j *job) error {
	switch j.q.Format {
	case "zip":
		return archive.WriteZip(ctx, w, r, j.id, j.opts)
	case "tgz", "tar.gz":
		level := gzip.DefaultCompression
		if j.q.Level >= 0 {
			level = j.q.Level
		}
		zw, err := gzip.NewWriterLevel(w, level)
		if err != nil {
			return fmt.Errorf("uploadarchive: %w", err)
		}
		if err := archive.WriteTar(ctx, zw, r, j.id, j.opts); err != nil {
			return err
		}
		if err := zw.Close(); err != nil {
			return fmt.Errorf("uploadarchive: write: %w", err)
		}
		return nil
	}
	return archive.WriteTar(ctx, w, r, j.id, j.opts)
}
