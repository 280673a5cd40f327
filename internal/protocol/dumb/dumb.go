// Package dumb serves the files that Git's "dumb" HTTP clients read
// (gitprotocol-http(5), "Dumb Clients"): info/refs as `git
// update-server-info` writes it, HEAD, objects/info/packs, loose
// objects and pack files with their indexes, as C Git's http-backend
// serves them. Nothing is written: info/refs, objects/info/packs and
// HEAD are generated from the repository at each request, the objects
// and packs are the repository's own files, read as they are.
//
// Dumb clients walk from the references, fetching objects one by one
// and, when one is not loose, the packs that hold it: so every object
// of the repository is open to them by id, whether the references
// reach it or not (as with C Git's and dulwich's dumb serving). Hence a
// repository with hidden references serves the references that are not
// hidden and HEAD, but no object (ErrHidden).
package dumb

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"gotd/internal/git/refs"
	"gotd/internal/git/repo"
)

// Errors of Open, both answered "not found".
var (
	// ErrNotFound: the path names no file a dumb client may read.
	ErrNotFound = errors.New("dumb: not found")
	// ErrHidden: the path names objects, and the repository hides
	// references.
	ErrHidden = errors.New("dumb: objects of a repository with hidden references are not served")
)

// MaxPath bounds the paths Open takes.
const MaxPath = 128

// maxGenerated bounds a generated file (info/refs of some million
// references).
const maxGenerated = 128 << 20

// Content types, as C Git's http-backend sends them.
const (
	TypeText      = "text/plain"
	TypeTextUTF8  = "text/plain; charset=utf-8"
	TypeLoose     = "application/x-git-loose-object"
	TypePack      = "application/x-git-packed-objects"
	TypePackIndex = "application/x-git-packed-objects-toc"
)

// File is one answer: its content type, size (-1 when not known) and
// body, which the caller must close. Immutable says its name fixes its
// content (objects and packs), so that it may be cached for ever.
type File struct {
	ContentType string
	Size        int64
	Body        io.ReadCloser
	Immutable   bool
}

// Open returns the file path (relative to the repository, as the URL
// names it below the repository's) for a dumb client. hidden, if set,
// names the references never shown: they are left out of info/refs, a
// HEAD through one is not found, and no object is served.
func Open(r *repo.Repo, path string, hidden func(name string) bool) (*File, error) {
	if len(path) > MaxPath {
		return nil, ErrNotFound
	}
	switch {
	case path == "info/refs":
		b, err := infoRefs(r, hidden)
		return generated(TypeText, b, err)
	case path == "HEAD":
		b, err := head(r, hidden)
		return generated(TypeText, b, err)
	case strings.HasPrefix(path, "objects/") && hidden != nil:
		return nil, ErrHidden
	case path == "objects/info/packs":
		return generated(TypeTextUTF8, infoPacks(r), nil)
	case strings.HasPrefix(path, "objects/pack/"):
		return packFile(r, strings.TrimPrefix(path, "objects/pack/"))
	case strings.HasPrefix(path, "objects/"):
		return looseObject(r, strings.TrimPrefix(path, "objects/"))
	}
	return nil, ErrNotFound
}

// generated wraps a generated file.
func generated(contentType string, b []byte, err error) (*File, error) {
	if err != nil {
		return nil, err
	}
	return &File{ContentType: contentType, Size: int64(len(b)), Body: io.NopCloser(bytes.NewReader(b))}, nil
}

// infoRefs lists the references as `git update-server-info` does: each
// reference under refs/ in name order, "ID\tNAME", followed for an
// annotated tag by what it peels to, "ID\tNAME^{}".
func infoRefs(r *repo.Repo, hidden func(string) bool) ([]byte, error) {
	var b bytes.Buffer
	err := r.Refs.List("refs/", func(ref refs.Ref) error {
		if hidden != nil && r.Refs.ChainAny(ref, hidden) {
			return nil
		}
		fmt.Fprintf(&b, "%s\t%s\n", ref.ID, ref.Name)
		peeled := ref.Peeled
		if !peeled.Valid() {
			peeled = r.Peel(ref.ID)
		}
		if peeled.Valid() && peeled != ref.ID {
			fmt.Fprintf(&b, "%s\t%s^{}\n", peeled, ref.Name)
		}
		if b.Len() > maxGenerated {
			return fmt.Errorf("dumb: info/refs over %d bytes", maxGenerated)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("dumb: list references: %w", err)
	}
	return b.Bytes(), nil
}

// head is the HEAD file as a client reads it: "ref: TARGET" or an id.
func head(r *repo.Repo, hidden func(string) bool) ([]byte, error) {
	h, err := r.Refs.Read("HEAD")
	if err != nil {
		return nil, ErrNotFound
	}
	if hidden != nil && r.Refs.ChainAny(h, hidden) {
		return nil, ErrNotFound
	}
	if h.Target != "" {
		return []byte("ref: " + h.Target + "\n"), nil
	}
	return []byte(h.ID.String() + "\n"), nil
}

// infoPacks lists the packs as `git update-server-info` does: "P
// NAME" each, then an empty line.
func infoPacks(r *repo.Repo) []byte {
	var b bytes.Buffer
	for _, p := range r.Packs() {
		fmt.Fprintf(&b, "P %s\n", filepath.Base(p.Path()))
	}
	b.WriteString("\n")
	return b.Bytes()
}

// packFile opens objects/pack/NAME: pack-HEX.pack or pack-HEX.idx of a
// pack of the repository.
func packFile(r *repo.Repo, name string) (*File, error) {
	base, ext := name, ""
	switch {
	case strings.HasSuffix(name, ".pack"):
		base, ext = strings.TrimSuffix(name, ".pack"), TypePack
	case strings.HasSuffix(name, ".idx"):
		base, ext = strings.TrimSuffix(name, ".idx"), TypePackIndex
	default:
		return nil, ErrNotFound
	}
	hex, ok := strings.CutPrefix(base, "pack-")
	if !ok || !lowerHex(hex, r.Format.HexSize()) {
		return nil, ErrNotFound
	}
	known := false
	for _, p := range r.Packs() {
		known = known || filepath.Base(p.Path()) == base+".pack"
	}
	if !known {
		return nil, ErrNotFound
	}
	return openFile(filepath.Join(r.ObjectsDir(), "pack", name), ext)
}

// looseObject opens objects/XX/REST, a loose object as stored.
func looseObject(r *repo.Repo, name string) (*File, error) {
	dir, rest, ok := strings.Cut(name, "/")
	if !ok || !lowerHex(dir, 2) || !lowerHex(rest, r.Format.HexSize()-2) {
		return nil, ErrNotFound
	}
	return openFile(filepath.Join(r.ObjectsDir(), dir, rest), TypeLoose)
}

// openFile opens a regular file of the repository for reading.
func openFile(path, contentType string) (*File, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("dumb: %w", err)
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, ErrNotFound
	}
	return &File{ContentType: contentType, Size: fi.Size(), Body: f, Immutable: true}, nil
}

// lowerHex reports whether s is n lower-case hexadecimal digits.
func lowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
