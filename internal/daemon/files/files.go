// Package files holds what gotd's programs share about the files and
// directories they make and take: directories made with modes whatever
// the umask, and files passed by others checked for their owner.
package files

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
)

// MakeDirs makes dir with mode leaf and the parents it lacks 0755,
// whatever the umask; directories that exist are left as they are
// (one made meanwhile by someone else too).
func MakeDirs(dir string, leaf os.FileMode) error {
	var missing []string
	for p := filepath.Clean(dir); ; p = filepath.Dir(p) {
		_, err := os.Lstat(p)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrNotExist) || p == filepath.Dir(p) {
			return err
		}
		missing = append(missing, p)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		p, mode := missing[i], os.FileMode(0o755)
		if i == 0 {
			mode = leaf
		}
		if err := os.Mkdir(p, mode); err != nil {
			if errors.Is(err, fs.ErrExist) {
				continue // made meanwhile by someone else: theirs
			}
			return err
		}
		if err := os.Chmod(p, mode); err != nil {
			return err
		}
	}
	return nil
}

// Why CheckOwner refuses a file.
var (
	ErrNotRegular = errors.New("not a regular file")
	ErrOwner      = errors.New("owned by another user")
	ErrWritable   = errors.New("writable by its group or others")
)

// CheckOwner checks that f is a regular file owned by one of owners and
// writable by no one else: a file another process passes to be trusted.
func CheckOwner(f *os.File, owners ...uint32) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.Mode().IsRegular():
		return ErrNotRegular
	case !ok || !slices.Contains(owners, st.Uid):
		return ErrOwner
	case fi.Mode().Perm()&0o022 != 0:
		return ErrWritable
	}
	return nil
}
