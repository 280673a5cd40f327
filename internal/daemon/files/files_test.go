package files

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestMakeDirs: missing parents 0755 and the leaf its mode whatever the
// umask; what exists is left alone.
func TestMakeDirs(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	top := t.TempDir()
	os.Chmod(top, 0o711)
	leaf := filepath.Join(top, "a", "b", "spool")
	if err := MakeDirs(leaf, 0o700); err != nil {
		t.Fatal(err)
	}
	for dir, want := range map[string]os.FileMode{top: 0o711, filepath.Join(top, "a"): 0o755, filepath.Join(top, "a", "b"): 0o755, leaf: 0o700} {
		if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: got %v, %v; want %v", dir, fi.Mode().Perm(), err, want)
		}
	}
	if err := MakeDirs(leaf, 0o755); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(leaf); fi.Mode().Perm() != 0o700 {
		t.Errorf("an existing leaf changed to %v", fi.Mode().Perm())
	}
}

// TestCheckOwner: a regular file of one of the owners, writable by no
// one else.
func TestCheckOwner(t *testing.T) {
	dir := t.TempDir()
	me := uint32(os.Geteuid())
	path := filepath.Join(dir, "f")
	os.WriteFile(path, nil, 0o600)
	check := func(owners []uint32, want error) {
		t.Helper()
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := CheckOwner(f, owners...); !errors.Is(err, want) && !(want == nil && err == nil) {
			t.Errorf("owners %v, mode of %s: got %v; want %v", owners, path, err, want)
		}
	}
	check([]uint32{me}, nil)
	check([]uint32{me + 1}, ErrOwner)
	os.Chmod(path, 0o622)
	check([]uint32{me}, ErrWritable)
	path = dir
	check([]uint32{me}, ErrNotRegular)
}
