// Package refs reads and updates the references of a Git repository
// exactly as C Git's "files" backend stores them (gitrepository-layout(5),
// git-pack-refs(1)): one loose file per reference under refs/, the
// packed-refs file, and symbolic references such as HEAD.
//
// Writers use C Git's lock protocol: a reference is changed by creating
// "<name>.lock" with O_EXCL, writing and syncing it, and renaming it over
// the reference; packed-refs is rewritten under "packed-refs.lock". So a
// Store may be used next to C Git (git gc, git pack-refs, git update-ref)
// and next to other Stores on the same repository, in this process or
// another. A Store has no state besides its paths and is safe for
// concurrent use.
//
// Reference names are checked with CheckName, and only "HEAD" and names
// under refs/ are read or written: a name can never reach a file outside
// the repository's refs.
package refs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"gotd/internal/git/oid"
	"gotd/internal/git/perm"
)

var (
	// ErrNotFound is wrapped by errors for references that do not exist,
	// including a symbolic reference whose target does not exist.
	ErrNotFound = errors.New("refs: reference not found")
	// ErrConflict is wrapped by Update and SetSymbolic errors that a
	// retry with fresh values could avoid or that another writer caused:
	// an old value that does not match, a lock held by another writer,
	// or a directory/file conflict with another reference.
	ErrConflict = errors.New("refs: reference update conflict")
	// ErrLocked is wrapped, with ErrConflict, by Update and
	// SetSymbolic errors for a lock file that another writer held
	// until the wait for it ended.
	ErrLocked = errors.New("refs: reference is locked by another update")
	// ErrBroken is wrapped by errors for a reference file whose contents
	// are not a reference.
	ErrBroken = errors.New("refs: broken reference")
)

// maxSymrefDepth is how many references Resolve reads at most, C Git's
// SYMREF_MAXDEPTH.
const maxSymrefDepth = 5

// maxLooseSize bounds how much of a loose reference file is read; a valid
// one is at most "ref: " plus a name, and names are bounded by PATH_MAX.
const maxLooseSize = 4096 + 16

// Ref is a reference as stored.
type Ref struct {
	// Name is the full name, such as "HEAD" or "refs/heads/main".
	Name string
	// ID is the object the reference points at; for a symbolic
	// reference returned by Read it is the zero ID.
	ID oid.ID
	// Target is the name a symbolic reference points at, "" for a
	// reference that holds an object id.
	Target string
	// Peeled is valid only when the store knows what the reference
	// peels to, which it learns from peeled lines in packed-refs: then
	// it is the non-tag object an annotated tag finally points at, or
	// ID itself when the object is known not to be a tag. When Peeled
	// is the zero ID, the caller must peel by reading objects.
	Peeled oid.ID
}

// Store gives access to the references of one repository.
type Store struct {
	// Shared gives the permissions of the files and directories
	// written (references, packed-refs, their locks): the repository's
	// core.sharedRepository. Set it before first use.
	Shared perm.Shared

	gitDir  string
	format  oid.Format
	journal *Journal // records the locks taken, nil for none
}

// New returns a Store for the repository directory gitDir (the directory
// holding HEAD and refs/) whose object ids have format f. It does not
// touch the file system.
func New(gitDir string, f oid.Format) *Store {
	return &Store{gitDir: gitDir, format: f}
}

// Format returns the object format of the store's ids.
func (s *Store) Format() oid.Format { return s.format }

// checkReadName accepts "HEAD" and valid names under refs/.
func checkReadName(name string) error {
	if name == "HEAD" {
		return nil
	}
	return CheckName(name)
}

func (s *Store) path(name string) string {
	return filepath.Join(s.gitDir, filepath.FromSlash(name))
}

// Read returns the reference name one level deep: a symbolic reference
// is returned with its Target and a zero ID. The loose file wins over
// packed-refs. A reference that does not exist is an error wrapping
// ErrNotFound; a loose file that is not a reference wraps ErrBroken.
// Peeled is filled when the reference comes from packed-refs and the
// file records it.
func (s *Store) Read(name string) (Ref, error) {
	if err := checkReadName(name); err != nil {
		return Ref{}, err
	}
	var buf [maxLooseSize]byte
	ref, found, err := s.readLoose(name, buf[:])
	if err != nil || found {
		return ref, err
	}
	snap, err := s.openPacked()
	if err != nil {
		return Ref{}, err
	}
	defer snap.close()
	return snap.read(name)
}

// readLoose reads the loose file of name using buf. found is false when
// there is no file (or a directory) at its path.
func (s *Store) readLoose(name string, buf []byte) (Ref, bool, error) {
	data, err := readSmall(s.path(name), buf)
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.EISDIR), errors.Is(err, syscall.ENOTDIR):
		return Ref{}, false, nil
	default:
		return Ref{}, false, fmt.Errorf("refs: read %s: %w", name, err)
	}
	ref, err := parseLoose(s.format, data)
	if err != nil {
		return Ref{}, true, fmt.Errorf("%w %s: %v", ErrBroken, name, err)
	}
	ref.Name = name
	return ref, true, nil
}

// readSmall reads the file at path into buf; a file that does not fit is
// returned truncated to len(buf), which no parser accepts.
func readSmall(path string, buf []byte) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	n, err := io.ReadFull(f, buf)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		err = nil
	}
	return buf[:n], err
}

// parseLoose parses the contents of a loose reference file: an id in
// lower-case hexadecimal and a newline, or "ref: " and a valid name and
// a newline. This is stricter than C Git, which also takes ids without
// the newline, trailing garbage after whitespace, and upper-case hex;
// C Git itself never writes those forms.
func parseLoose(f oid.Format, data []byte) (Ref, error) {
	if len(data) == 0 || data[len(data)-1] != '\n' {
		return Ref{}, errors.New("missing final newline")
	}
	line := data[:len(data)-1]
	if len(line) > 5 && string(line[:5]) == "ref: " {
		target := string(line[5:])
		if err := CheckName(target); err != nil {
			return Ref{}, fmt.Errorf("bad symbolic target: %v", err)
		}
		return Ref{Target: target}, nil
	}
	id, err := parseHexLower(f, line)
	if err != nil {
		return Ref{}, err
	}
	return Ref{ID: id}, nil
}

// parseHexLower parses a full id in lower-case hexadecimal, the only form
// C Git writes in reference files.
func parseHexLower(f oid.Format, b []byte) (oid.ID, error) {
	var raw [oid.MaxSize]byte
	n := f.Size()
	if n == 0 || len(b) != 2*n {
		return oid.ID{}, fmt.Errorf("not a %s id", f)
	}
	bad := byte(0)
	for i := 0; i < n; i++ {
		hi, lo := lowerHex[b[2*i]], lowerHex[b[2*i+1]]
		bad |= hi | lo
		raw[i] = hi<<4 | lo&0x0f
	}
	if bad&0xf0 != 0 {
		return oid.ID{}, fmt.Errorf("not a %s id", f)
	}
	return oid.FromBytes(f, raw[:n])
}

// lowerHex maps a lower-case hexadecimal digit to its value and every
// other byte to 0xff.
var lowerHex = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = byte(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = byte(c-'a') + 10
	}
	return t
}()

// Resolve reads name and follows symbolic references, reading at most
// five references in all, as C Git does. The result has Name set to name, ID set to the
// final object id, and Target set to the first target if name is
// symbolic. A symbolic reference whose final target does not exist (an
// unborn branch) is an error wrapping ErrNotFound; a loop or a chain too
// long is an error.
func (s *Store) Resolve(name string) (Ref, error) {
	if err := checkReadName(name); err != nil {
		return Ref{}, err
	}
	snap, err := s.openPacked()
	if err != nil {
		return Ref{}, err
	}
	defer snap.close()
	return s.resolve(name, snap)
}

// resolve is Resolve against one packed-refs snapshot.
func (s *Store) resolve(name string, snap *packed) (Ref, error) {
	var buf [maxLooseSize]byte
	out := Ref{Name: name}
	cur := name
	for depth := 0; depth < maxSymrefDepth; depth++ {
		ref, found, err := s.readLoose(cur, buf[:])
		if err != nil {
			return Ref{}, err
		}
		if !found {
			if ref, err = snap.read(cur); err != nil {
				if cur != name {
					return Ref{}, fmt.Errorf("refs: %s points at %s: %w", name, cur, err)
				}
				return Ref{}, err
			}
		}
		if ref.Target == "" {
			out.ID, out.Peeled = ref.ID, ref.Peeled
			return out, nil
		}
		if depth == 0 {
			out.Target = ref.Target
		}
		cur = ref.Target
	}
	return Ref{}, fmt.Errorf("refs: %s: symbolic references nested too deep or in a loop", name)
}

// ChainAny reports whether pred holds for r's name or for any name its
// chain of symbolic references passes through, down to the reference
// that holds an id or to a target that does not exist (an unborn
// branch). A chain that cannot be followed (a loop, an unreadable
// target) counts as holding: callers use it to keep references out of
// sight, and err on that side.
func (s *Store) ChainAny(r Ref, pred func(name string) bool) bool {
	if pred(r.Name) {
		return true
	}
	for depth := 0; r.Target != ""; depth++ {
		if depth == maxSymrefDepth || pred(r.Target) {
			return true
		}
		next, err := s.Read(r.Target)
		if errors.Is(err, ErrNotFound) {
			return false
		}
		if err != nil {
			return true
		}
		r = next
	}
	return false
}
