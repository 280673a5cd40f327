package notify

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestPrepareSpool makes the spool as gotd run by root does, under a
// root umask of 077: the parents it makes are root's and 0755, the
// spool the daemon's user's and 0700; a parent that exists and that
// user cannot enter is refused, where notifications would be off
// (issue 20).
func TestPrepareSpool(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the spool is given to another user")
	}
	const uid, gid = 65534, 65534
	defer syscall.Umask(syscall.Umask(0o077))
	base := t.TempDir()
	for _, d := range []string{filepath.Dir(base), base} { // the test's directories are 0700
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}

	spool := filepath.Join(base, "var", "db", "gotd")
	if err := PrepareSpool(spool, uid, gid); err != nil {
		t.Fatalf("PrepareSpool: %v", err)
	}
	for _, c := range []struct {
		path      string
		uid       uint32
		wantPerms os.FileMode
	}{
		{filepath.Join(base, "var"), 0, 0o755},
		{filepath.Join(base, "var", "db"), 0, 0o755},
		{spool, uid, 0o700},
	} {
		fi, err := os.Lstat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if got := fi.Mode().Perm(); got != c.wantPerms || st.Uid != c.uid {
			t.Errorf("%s: got mode %v owner %d; want %v owner %d", c.path, got, st.Uid, c.wantPerms, c.uid)
		}
	}
	// Again: what exists stays.
	if err := PrepareSpool(spool, uid, gid); err != nil {
		t.Errorf("PrepareSpool again: %v", err)
	}

	closed := filepath.Join(base, "closed")
	if err := os.Mkdir(closed, 0o700); err != nil {
		t.Fatal(err)
	}
	err := PrepareSpool(filepath.Join(closed, "gotd"), uid, gid)
	if err == nil || !strings.Contains(err.Error(), "cannot enter "+closed) {
		t.Errorf("spool under a directory the user cannot enter: got %v; want refused naming %s", err, closed)
	}
}
