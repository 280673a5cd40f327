// Package archive writes the tree of a commit as a tar or zip file, the
// snapshots of the web view and the stream of git-upload-archive. The tar
// is byte-identical to what `git archive --format=tar` writes for the
// same commit, prefix and paths (archive-tar.c with tar.umask at its
// default 0002); the zip is valid and lists the same entries as `git
// archive --format=zip` (see WriteZip for where its bytes differ).
//
// Both are streamed: a tree is read one level at a time and a blob larger
// than SmallBlob is copied through repo.Repo.OpenObject, so memory stays
// bounded by the depth of the tree and the size of its largest tree object,
// never by the size of the archive.
//
// Attributes are not applied: a .gitattributes in the tree that asks for
// export-ignore or export-subst is ignored (C Git honours both), so an
// archive of such a tree differs from C Git's.
package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/repo"
)

// SmallBlob is the size up to which a blob is read whole; larger ones
// are streamed.
const SmallBlob = 64 << 10

// maxSymlink bounds a symbolic link's target, which is read whole (C Git
// has no bound; no file system takes targets longer than PATH_MAX).
const maxSymlink = 64 << 10

// maxDepth bounds how deep trees nest, as core.maxTreeDepth's default
// does in later C Git: the walk keeps one tree object per level.
const maxDepth = 4096

// maxPrefix bounds the prefix.
const maxPrefix = 4096

// maxPaths bounds the number of paths an archive request may name.
const maxPaths = 1024

// Options are the choices `git archive` offers that this package honours.
type Options struct {
	// Prefix is prepended to every path, as --prefix: "dir/" puts the
	// tree under dir/ (with an entry for dir/ itself), "x-" prefixes
	// every top-level name. It holds no NUL and at most 4096 bytes.
	Prefix string
	// Paths restricts the archive to these paths of the tree (files or
	// directories, with everything below them), as plain pathspecs
	// without wildcards or magic, at most 1024 of them, relative, without
	// "." or ".." components. Each must match something (a directory,
	// even an empty one, counts, as in C Git).
	Paths []string
	// Time is the modification time written for every entry when the id
	// archived names a tree rather than a commit (C Git uses the current
	// time then); for a commit its committer time is used.
	Time int64
	// ZipLevel is the deflate level of a zip's files, 1 to 9 as git
	// archive's -1 to -9 give it; ZipStore stores them uncompressed, as
	// -0 does; 0 is compress/flate's default. Tar ignores it.
	ZipLevel int
}

// ZipStore is the ZipLevel of a zip whose files are stored, not
// deflated (git archive -0).
const ZipStore = -1

// snapshot is what an archive is made of: the tree, the commit it came
// from if any, and the time stamped on every entry.
type snapshot struct {
	r      *repo.Repo
	commit oid.ID // invalid when a tree was given
	tree   oid.ID
	mtime  int64
	prefix string
	paths  []string
	hit    []bool // which of paths matched an entry
}

// resolve peels id (a commit, a tag of one, or a tree) to its tree, as
// git archive does.
func resolve(r *repo.Repo, id oid.ID, opts Options) (*snapshot, error) {
	if len(opts.Prefix) > maxPrefix || strings.ContainsRune(opts.Prefix, 0) {
		return nil, errors.New("archive: invalid prefix")
	}
	s := &snapshot{r: r, mtime: opts.Time, prefix: opts.Prefix}
	paths, err := cleanPaths(opts.Paths)
	if err != nil {
		return nil, err
	}
	s.paths, s.hit = paths, make([]bool, len(paths))
	for depth := 0; ; depth++ {
		if depth > 16 {
			return nil, fmt.Errorf("archive: %s: too many tags in a chain", id)
		}
		t, data, err := r.ReadObject(id)
		if err != nil {
			return nil, fmt.Errorf("archive: read %s: %w", id, err)
		}
		switch t {
		case object.Tag:
			tag, err := object.ParseTag(r.Format, data)
			if err != nil {
				return nil, fmt.Errorf("archive: tag %s: %w", id, err)
			}
			id = tag.Object
			continue
		case object.Commit:
			c, err := object.ParseCommit(r.Format, data)
			if err != nil {
				return nil, fmt.Errorf("archive: commit %s: %w", id, err)
			}
			s.commit, s.tree, s.mtime = id, c.Tree, c.Committer.When
		case object.Tree:
			s.tree = id
		default:
			return nil, fmt.Errorf("archive: %s is a %s, not a tree-ish", id, t)
		}
		return s, nil
	}
}

// cleanPaths checks the paths an archive is restricted to and drops
// their trailing slashes.
func cleanPaths(paths []string) ([]string, error) {
	if len(paths) > maxPaths {
		return nil, fmt.Errorf("archive: more than %d paths", maxPaths)
	}
	out := make([]string, 0, len(paths))
	for _, p := range paths {
		p = strings.TrimRight(p, "/")
		if p == "" || strings.HasPrefix(p, "/") || strings.ContainsRune(p, 0) {
			return nil, errors.New("archive: invalid path")
		}
		for _, part := range strings.Split(p, "/") {
			if part == "" || part == "." || part == ".." {
				return nil, errors.New("archive: invalid path")
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// match reports how path (without trailing slash) relates to the
// archive's paths: whole when it lies at or under one of them, partial
// when it is a directory above one of them. It notes which paths
// matched.
func (s *snapshot) match(path string, dir bool) (whole, partial bool) {
	if len(s.paths) == 0 {
		return true, false
	}
	for i, p := range s.paths {
		if path == p || strings.HasPrefix(path, p) && path[len(p)] == '/' {
			s.hit[i] = true
			whole = true
			continue
		}
		if dir && strings.HasPrefix(p, path) && p[len(path)] == '/' {
			partial = true
		}
	}
	if whole {
		partial = false
	}
	return whole, partial
}

// entry is one item of an archive as the walk hands it to a format.
type entry struct {
	path string // with the prefix; a directory's ends in '/'
	mode uint32 // as in the tree (040000, 0100644, 0100755, 0120000, 0160000)
	id   oid.ID
}

// format is what a tar or zip writer does with each entry: open reads
// the content of a blob, called at most once.
type format interface {
	write(e entry, size int64, open func() (io.ReadCloser, error)) error
}

// walk hands every entry of the snapshot to f in the order C Git's
// read_tree visits them: a directory before what it holds, the entries
// of a tree in its order.
func (s *snapshot) walk(ctx context.Context, f format) error {
	if n := len(s.prefix); n > 0 && s.prefix[n-1] == '/' {
		for n > 1 && s.prefix[n-2] == '/' {
			n--
		}
		if err := f.write(entry{path: s.prefix[:n], mode: 0o40777, id: s.tree}, 0, nil); err != nil {
			return err
		}
	}
	w := walker{s: s, f: f, ctx: ctx}
	if err := w.tree(s.tree, "", 0); err != nil {
		return err
	}
	for _, hit := range s.hit {
		if !hit {
			return errors.New("archive: a path did not match any files")
		}
	}
	return nil
}

// walker holds the state of one walk: directories whose entries wait
// until a file under them is written, as C Git's queue_directory does,
// so that a directory holding no file (an empty tree, or nothing the
// paths select) has no entry.
type walker struct {
	s       *snapshot
	f       format
	ctx     context.Context
	pending []entry
}

func (w *walker) tree(id oid.ID, base string, depth int) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	if depth >= maxDepth {
		return fmt.Errorf("archive: trees nested deeper than %d", maxDepth)
	}
	t, data, err := w.s.r.ReadObject(id)
	if err != nil {
		return fmt.Errorf("archive: read tree %s: %w", id, err)
	}
	if t != object.Tree {
		return fmt.Errorf("archive: %s is a %s, not a tree", id, t)
	}
	it := object.NewTreeIter(w.s.r.Format, data)
	for e, ok := it.Next(); ok; e, ok = it.Next() {
		path := base + string(e.Name)
		isDir := e.Mode&0o170000 == object.ModeTree
		whole, partial := w.s.match(path, isDir)
		if !whole && !partial {
			continue
		}
		ent := entry{path: w.s.prefix + path, mode: e.Mode, id: e.ID}
		if isDir {
			ent.path += "/"
			w.pending = append(w.pending, ent)
			if err := w.tree(e.ID, path+"/", depth+1); err != nil {
				return err
			}
			if n := len(w.pending); n > 0 && w.pending[n-1].path == ent.path {
				w.pending = w.pending[:n-1]
			}
			continue
		}
		if !whole {
			continue
		}
		for _, d := range w.pending {
			if err := w.f.write(d, 0, nil); err != nil {
				return err
			}
		}
		w.pending = w.pending[:0]
		if err := w.file(ent); err != nil {
			return err
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("archive: tree %s: %w", id, err)
	}
	return nil
}

// file writes a blob or gitlink entry.
func (w *walker) file(e entry) error {
	switch e.mode & 0o170000 {
	case object.ModeGitlink:
		e.path += "/"
		return w.f.write(e, 0, nil)
	case object.ModeSymlink:
		t, data, err := w.s.r.ReadObject(e.id)
		if err != nil {
			return fmt.Errorf("archive: read %s: %w", e.id, err)
		}
		if t != object.Blob {
			return fmt.Errorf("archive: %s is a %s, not a blob", e.id, t)
		}
		if len(data) > maxSymlink {
			return fmt.Errorf("archive: symbolic link %s longer than %d bytes", e.id, maxSymlink)
		}
		return w.f.write(e, int64(len(data)), func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(data)), nil
		})
	}
	t, size, err := w.s.r.StatObject(e.id)
	if err != nil {
		return fmt.Errorf("archive: stat %s: %w", e.id, err)
	}
	if t != object.Blob {
		return fmt.Errorf("archive: %s is a %s, not a blob", e.id, t)
	}
	return w.f.write(e, size, func() (io.ReadCloser, error) {
		return w.s.open(e.id, size)
	})
}

// open returns a reader of a blob's content: read whole when small,
// streamed otherwise.
func (s *snapshot) open(id oid.ID, size int64) (io.ReadCloser, error) {
	if size <= SmallBlob {
		_, data, err := s.r.ReadObject(id)
		if err != nil {
			return nil, fmt.Errorf("archive: read %s: %w", id, err)
		}
		return io.NopCloser(bytes.NewReader(data)), nil
	}
	_, _, rc, err := s.r.OpenObject(id)
	if err != nil {
		return nil, fmt.Errorf("archive: open %s: %w", id, err)
	}
	return rc, nil
}
