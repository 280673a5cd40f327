package frontend

import (
	"errors"
	"log/slog"
	"testing"

	"gotd/internal/daemon/ipc"
)

// TestAdmit checks the limits: per account, anonymous per address,
// and in all; a released slot is free again, once.
func TestAdmit(t *testing.T) {
	s := New(slog.Default(), ipc.ViaGit, nil)
	s.settings = &Settings{Frontend: ipc.Frontend{Default: 2, Total: 5, Names: []string{"anonymous"}, PerName: []uint32{1}}}
	close(s.ready)
	admit := func(account, remote string, want error) *Slot {
		t.Helper()
		sl, err := s.Admit(account, remote)
		if !errors.Is(err, want) {
			t.Fatalf("Admit(%q, %q) = %v, want %v", account, remote, err, want)
		}
		return sl
	}
	a1 := admit("alice", "10.0.0.1:1", nil)
	admit("alice", "10.0.0.2:1", nil)
	admit("alice", "10.0.0.3:1", ErrUserLimit)
	anon := admit("", "10.0.0.1:1", nil)
	admit("", "10.0.0.1:2", ErrUserLimit) // same address
	admit("", "[::1]:3", nil)             // another address
	admit("bob", "10.0.0.9:1", nil)
	admit("bob", "10.0.0.9:2", ErrBusy) // five in all
	a1.Release()
	a1.Release()
	admit("carol", "10.0.0.4:1", nil)
	admit("carol", "10.0.0.4:2", ErrBusy)
	anon.Release()
	if s.total != 4 || s.count["anonymous@10.0.0.1"] != 0 {
		t.Errorf("counts %d %v", s.total, s.count)
	}
}
