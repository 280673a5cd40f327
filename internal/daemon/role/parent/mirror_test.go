package parent

import (
	"errors"
	"log/slog"
	"os/exec"
	"testing"
	"time"

	"gotd/internal/daemon/config"
)

// TestMirrorWait: a mirror that syncs is synced again after its
// interval, give or take 10%; one that fails is tried again after 30s,
// doubling with each failure in a row, never later than its interval.
func TestMirrorWait(t *testing.T) {
	for _, tc := range []struct {
		every    time.Duration
		failures int
		min, max time.Duration
	}{
		{10 * time.Minute, 0, 9 * time.Minute, 11 * time.Minute},
		{time.Hour, 0, 54 * time.Minute, 66 * time.Minute},
		{10 * time.Minute, 1, 30 * time.Second, 30 * time.Second},
		{10 * time.Minute, 2, time.Minute, time.Minute},
		{10 * time.Minute, 3, 2 * time.Minute, 2 * time.Minute},
		{10 * time.Minute, 5, 8 * time.Minute, 8 * time.Minute},
		{10 * time.Minute, 6, 10 * time.Minute, 10 * time.Minute},
		{10 * time.Minute, 1000, 10 * time.Minute, 10 * time.Minute},
		{10 * time.Second, 1, 10 * time.Second, 10 * time.Second},
	} {
		for range 50 {
			if got := mirrorWait(tc.every, tc.failures); got < tc.min || got > tc.max {
				t.Errorf("mirrorWait(%v, %d) = %v; want %v to %v", tc.every, tc.failures, got, tc.min, tc.max)
				break
			}
		}
	}
}

// TestMirrorFetchDone: once the fetch process of a sync has ended
// well, session_write, still checking and installing what it sent, is
// left to finish (it was killed killGrace after: every initial mirror
// of a large repository, whose check takes longer, failed); after a
// failed fetch it is ended.
func TestMirrorFetchDone(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the grace period")
	}
	for _, tc := range []struct {
		fetchStatus error
		wantKilled  bool
	}{
		{nil, false},
		{errors.New("exit status 1"), true},
	} {
		write := exec.Command("sleep", "60")
		if err := write.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { write.Wait(); close(exited) }()
		d := &daemon{log: slog.New(slog.DiscardHandler), cfg: &config.Config{}}
		m := &mirroring{fetch: &child{role: RoleFetch, cmd: exec.Command("true"), exited: true, status: tc.fetchStatus}, write: &child{role: RoleSessionWrite, cmd: write}}
		d.mirrorExited("mirror", m, m.fetch)
		select {
		case <-exited:
		case <-time.After(killGrace + 2*time.Second):
		}
		killed := write.ProcessState != nil
		if !killed {
			write.Process.Kill()
			<-exited
		}
		if killed != tc.wantKilled {
			t.Errorf("fetch ended with %v: session_write killed %v; want %v", tc.fetchStatus, killed, tc.wantKilled)
		}
	}
}
