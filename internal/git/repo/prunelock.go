package repo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// PruneLockFile is the file, in the repository directory, whose
// flock(2) orders the removal of unreachable objects against pushes. A
// push holds it shared from its connectivity check to its reference
// updates, so that the objects the check found stay until the
// references reach them; a cleanup holds it exclusive around its last
// reachability walk and the removal, so that no push relies on an
// object it is about to remove. It is left in place, empty.
const PruneLockFile = "gotd-prune.lock"

// ErrPruneLocked is returned by LockPrune when the lock could not be
// taken within its wait.
var ErrPruneLocked = errors.New("repo: the prune lock is held by another process")

// pruneLockPoll is how often LockPrune tries again while it waits:
// flock(2) has no timeout, and a blocked call cannot be cancelled.
const pruneLockPoll = 5 * time.Millisecond

// LockPrune takes the repository's prune lock (PruneLockFile), shared
// or exclusive, trying for up to wait (at least once), and returns the
// function that lets go of it. The kernel lets go of it too when the
// process dies, however it dies. own, if not nil, is given the lock
// file's path once it exists (gotadmin run as root gives it to the
// repository's owner). It fails with an error wrapping ErrPruneLocked
// when the wait ran out, or ctx's error when ctx ends first.
//
// flock(2) does not queue an exclusive request ahead of later shared
// ones: a cleanup finds the lock free between pushes, whose hold is
// short, and gives up after wait if pushes overlap all that time.
func (r *Repo) LockPrune(ctx context.Context, exclusive bool, wait time.Duration, own func(string)) (func(), error) {
	path := filepath.Join(r.GitDir, PruneLockFile)
	// Read-only is enough to take either kind of lock, and lets a
	// process that cannot write the file (made by another user) lock it.
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, r.Shared.File(0o444))
	if err != nil {
		return nil, fmt.Errorf("repo: prune lock: %w", err)
	}
	if own != nil {
		own(path)
	}
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	deadline := time.Now().Add(wait)
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("repo: prune lock: %w", err)
		}
		if !time.Now().Before(deadline) {
			f.Close()
			return nil, fmt.Errorf("%w (waited %v)", ErrPruneLocked, wait)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(pruneLockPoll):
		}
	}
}
