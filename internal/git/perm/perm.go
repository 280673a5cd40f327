// Package perm decides the permissions of the files and directories
// written into a repository. It follows the repository's
// core.sharedRepository setting as C Git does (git-config(1),
// git-init(1) --shared), with one difference: unless it is shared with
// everybody (all, or a mode that says so), a repository grants nothing
// to other users whatever the umask, so that a private or group's
// repository cannot be read by any local user (issue 19). The owner
// and group bits of a private repository are the umask's, as in C Git.
package perm

import (
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// kind is a sharing of core.sharedRepository.
type kind uint8

const (
	private   kind = iota // umask, false: the umask, nothing for others
	group                 // group, true: the group may read and write
	everybody             // all, world, everybody: and others may read
	explicit              // 0xxx: exactly these permissions
)

// Shared is how a repository is shared. The zero value is a private
// repository with no umask (owner and group keep the bits asked for,
// others get none); Parse and Private read the process's umask.
type Shared struct {
	kind  kind
	mode  fs.FileMode // of explicit
	umask fs.FileMode
}

// Private is a private repository under the process's umask.
func Private() Shared { return Shared{umask: umask()} }

// Parse reads a value of core.sharedRepository ("" when unset), as C
// Git does: umask, false, no, off or 0 (private); group, true, yes, on
// or 1; all, world, everybody or 2; or an octal mode that lets the
// owner read and write. The process's umask is read now.
func Parse(value string) (Shared, error) {
	s := Shared{umask: umask()}
	switch strings.ToLower(value) {
	case "", "umask", "false", "no", "off":
		return s, nil
	case "group", "true", "yes", "on":
		s.kind = group
		return s, nil
	case "all", "world", "everybody":
		s.kind = everybody
		return s, nil
	}
	n, err := strconv.ParseUint(value, 8, 32)
	switch {
	case err != nil:
		return s, fmt.Errorf("perm: core.sharedRepository: invalid value %q", value)
	case n == 0:
	case n == 1:
		s.kind = group
	case n == 2:
		s.kind = everybody
	case n&0o600 != 0o600:
		return s, fmt.Errorf("perm: core.sharedRepository: mode %#o does not let the owner read and write", n)
	default:
		s.kind, s.mode = explicit, fs.FileMode(n)&0o666
	}
	return s, nil
}

// IsShared reports whether other users than the owner are meant to
// use the repository: core.sharedRepository is set to share it.
func (s Shared) IsShared() bool { return s.kind != private }

// File returns the permissions of a new file that would be created
// with mode: 0444 for a file never written again (objects, packs,
// indexes), 0666 for others (references).
func (s Shared) File(mode fs.FileMode) fs.FileMode {
	mode &= 0o777
	base := mode &^ s.umask
	var tweak fs.FileMode
	switch s.kind {
	case private:
		return base &^ 0o007
	case group:
		base &^= 0o007
		tweak = 0o660
	case everybody:
		tweak = 0o664
	case explicit:
		tweak = s.mode
	}
	if mode&0o200 == 0 {
		tweak &^= 0o222 // read-only stays read-only
	}
	if mode&0o100 != 0 {
		tweak |= tweak & 0o444 >> 2
	}
	if s.kind == explicit {
		return tweak
	}
	return base | tweak
}

// Dir returns the permissions of a new directory: a shared one is
// set-group-ID, so that what is made in it belongs to its group.
func (s Shared) Dir() fs.FileMode {
	m := s.File(0o777)
	if s.kind == private {
		return m
	}
	return m | m&0o444>>2 | fs.ModeSetgid
}

// Chmod gives f the permissions of a file created with mode.
func (s Shared) Chmod(f *os.File, mode fs.FileMode) error {
	return f.Chmod(s.File(mode))
}

// Mkdir creates the directory path with Dir's permissions, which the
// umask does not narrow.
func (s Shared) Mkdir(path string) error {
	if err := os.Mkdir(path, 0o700); err != nil {
		return err
	}
	return s.FixDir(path)
}

// FixDir gives the directory path Dir's permissions.
func (s Shared) FixDir(path string) error {
	return os.Chmod(path, s.Dir())
}

// umask returns the process's umask. The umask is narrowed to 077 for
// the moment it takes to read it: a file another goroutine creates then
// is only more private.
func umask() fs.FileMode {
	old := syscall.Umask(0o077)
	syscall.Umask(old)
	return fs.FileMode(old) & 0o777
}

// Seal makes a written file durable and read-only (0444 with the
// repository's sharing), and closes it, as every file of a repository
// that is written once and renamed into place is.
func (s Shared) Seal(f *os.File) error {
	err := f.Sync()
	if err == nil {
		err = s.Chmod(f, 0o444)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// SyncDir makes the entries of directory dir durable: a rename into it
// is not, until it is synced.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
