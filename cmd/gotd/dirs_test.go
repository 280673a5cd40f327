//go:build linux

package main

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"gotd/internal/daemon/role/notify"
	"gotd/internal/daemon/users"
)

// TestHostKeyBesideSpool makes the SSH host key, then the notification
// spool, in one directory gotd makes, under a umask that gives others
// nothing, as the defaults have it on Linux (/var/lib/gotd): the spool
// is ready for the daemon's user (issue 20: the key's directory was
// made 0700, which that user could not enter, and notifications were
// off).
func TestHostKeyBesideSpool(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the spool is the daemon's user's")
	}
	u, err := users.ByName("nobody")
	if err != nil || u == nil {
		t.Skip("no user nobody")
	}
	top, err := os.MkdirTemp("", "gotd-dirs-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(top)
	os.Chmod(top, 0o755)
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)

	state := filepath.Join(top, "var", "lib", "gotd")
	key := filepath.Join(state, "ssh_host_ed25519_key")
	if err := makeHostKey(key, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Join(top, "var"), filepath.Join(top, "var", "lib"), state} {
		if fi, err := os.Stat(d); err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: got %v, %v; want mode 0755", d, fi.Mode().Perm(), err)
		}
	}
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: got %v, %v; want mode 0600", key, fi.Mode().Perm(), err)
	}
	if err := notify.PrepareSpool(filepath.Join(state, "notify"), u.UID, u.GID); err != nil {
		t.Errorf("spool beside the host key: %v", err)
	}
}
