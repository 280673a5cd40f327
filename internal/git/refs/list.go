package refs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"syscall"

	"gotd/internal/git/object"
)

// List calls fn for every reference whose full name starts with prefix
// (such as "refs/" or "refs/heads/"), in byte order of names as C Git
// sorts them. Only references under refs/ are listed; HEAD is not. It
// stops at and returns the first error fn returns.
//
// A loose reference overrides a packed one of the same name. Peeled is
// filled only for a packed reference without a loose override, when
// packed-refs records it. A symbolic reference under refs/ is listed
// with its Target and the ID it resolves to. Like C Git, List skips
// loose files that are not references (a broken file, a name
// CheckName refuses, a lock file, a symbolic link, a symbolic reference
// that does not resolve); they are left for a repository check to
// report.
//
// Memory: the names of the loose references under prefix are collected
// (sorted directory by directory) before packed-refs is opened, as C
// Git does, so that a concurrent `git pack-refs --prune` moving a
// reference from its loose file into packed-refs cannot hide it from the
// listing. Loose contents and packed records are read one at a time;
// packed-refs is mapped, not loaded, when large.
func (s *Store) List(prefix string, fn func(Ref) error) error {
	var startDir string
	switch {
	case strings.HasPrefix(prefix, "refs/"):
		startDir = prefix[:strings.LastIndexByte(prefix, '/')+1]
	case strings.HasPrefix("refs/", prefix):
		startDir = "refs/"
	default:
		return nil
	}
	var names []string
	if err := s.collectLoose(startDir, prefix, &names); err != nil {
		return err
	}
	snap, err := s.openPacked()
	if err != nil {
		return err
	}
	defer snap.close()
	it, err := snap.iter(prefix)
	if err != nil {
		return err
	}
	var buf [maxLooseSize]byte
	rec, pok, err := it.next()
	if err != nil {
		return err
	}
	li := 0
	for {
		if pok && !hasPrefixBytes(rec.name, prefix) {
			pok = false
		}
		lok := li < len(names)
		if !lok && !pok {
			return nil
		}
		var ref Ref
		emit := false
		if lok && (!pok || compareBytesString(rec.name, names[li]) >= 0) {
			name := names[li]
			li++
			if pok && compareBytesString(rec.name, name) == 0 {
				// The loose file overrides the packed record.
				if rec, pok, err = it.next(); err != nil {
					return err
				}
			}
			ref, emit, err = s.listLoose(name, snap, buf[:])
			if err != nil {
				return err
			}
		} else {
			ref = snap.ref(&rec)
			emit = checkReadName(ref.Name) == nil
			if rec, pok, err = it.next(); err != nil {
				return err
			}
		}
		if emit {
			if err := fn(ref); err != nil {
				return err
			}
		}
	}
}

// listLoose reads a loose reference found by collectLoose and reports
// whether List should show it.
func (s *Store) listLoose(name string, snap *packed, buf []byte) (Ref, bool, error) {
	ref, found, err := s.readLoose(name, buf)
	if errors.Is(err, ErrBroken) {
		return Ref{}, false, nil
	}
	if err != nil {
		return Ref{}, false, err
	}
	if !found {
		// The file went away since its directory was read: deleted, or
		// moved into a packed-refs file newer than snap.
		ref, err = s.Read(name)
		switch {
		case errors.Is(err, ErrNotFound), errors.Is(err, ErrBroken):
			return Ref{}, false, nil
		case err != nil:
			return Ref{}, false, err
		}
	}
	if ref.Target != "" {
		r, err := s.resolve(name, snap)
		if err != nil {
			return Ref{}, false, nil // dangling or looping: skip
		}
		ref.ID = r.ID
	}
	return ref, true, nil
}

// dirEntry is a directory entry sorted as C Git sorts names: a directory
// as its name followed by "/".
type dirEntry struct {
	name  string
	isDir bool
}

// compareEntries orders a and b as if directory names ended in "/".
func compareEntries(a, b dirEntry) int {
	return object.CompareTreeNames(a.name, a.isDir, b.name, b.isDir)
}

var errNotDir = syscall.ENOTDIR

func hasPrefixBytes(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && string(b[:len(prefix)]) == prefix
}

// collectLoose appends to names, in sorted order, the names of the loose
// files under the directory dir (a name prefix ending in "/") whose names
// start with prefix and are valid reference names.
func (s *Store) collectLoose(dir, prefix string, names *[]string) error {
	f, err := os.Open(s.path(dir))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errNotDir) {
			return nil
		}
		return fmt.Errorf("refs: list %s: %w", dir, err)
	}
	des, err := f.ReadDir(-1)
	f.Close()
	if errors.Is(err, fs.ErrNotExist) {
		// Removed since it was opened: a deletion tidied it away.
		return nil
	}
	if err != nil {
		return fmt.Errorf("refs: list %s: %w", dir, err)
	}
	ents := make([]dirEntry, 0, len(des))
	for _, de := range des {
		switch t := de.Type(); {
		case t.IsDir():
			ents = append(ents, dirEntry{de.Name(), true})
		case t.IsRegular():
			ents = append(ents, dirEntry{de.Name(), false})
		}
	}
	slices.SortFunc(ents, compareEntries)
	for _, e := range ents {
		full := dir + e.name
		if e.isDir {
			sub := full + "/"
			if (strings.HasPrefix(sub, prefix) || strings.HasPrefix(prefix, sub)) && checkFormat(sub+"x") == "" {
				if err := s.collectLoose(sub, prefix, names); err != nil {
					return err
				}
			}
			continue
		}
		if strings.HasPrefix(full, prefix) && CheckName(full) == nil {
			*names = append(*names, full)
		}
	}
	return nil
}
