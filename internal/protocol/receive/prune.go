package receive

import (
	"errors"
	"os"
	"path/filepath"
	"time"

	"gotd/internal/git/oid"
	"gotd/internal/git/repo"
)

// A cleanup that removes unreachable objects (the engine's upkeep
// Repack) must not remove an object that a push's connectivity check
// found in the repository, unreachable, and that the push's references
// are about to reach: a push that names an old unreachable commit as
// its new value or its pack's parent, or whose client left out what a
// reference it saw reached, deleted meanwhile. So a push holds the
// repository's prune lock (repo.PruneLockFile) shared from its check to
// its reference updates, and a cleanup holds it exclusive around its
// last reachability walk and the removal: a push checks either before
// that walk, which then sees its references, or after the removal,
// which it then sees. Deletions alone rely on nothing and take no lock.

// DefaultPruneWait is how long a push waits for a cleanup's removal to
// end before it gives up: the cleanup holds the lock for its last walk
// (from what changed since its first) and the unlinking of files.
const DefaultPruneWait = 60 * time.Second

// ngPruneBusy is the reason of a push that gave up waiting.
const ngPruneBusy = "repository is being cleaned up, try again later"

// lockPrune takes the prune lock shared for the check and the update
// of a push that brings or names objects, and reports whether the push
// may go on; if not, every command fails with ngPruneBusy.
func (s *session) lockPrune() bool {
	if s.req.deleteOnly() {
		return true
	}
	wait := s.opts.PruneWait
	if wait <= 0 {
		wait = DefaultPruneWait
	}
	unlock, err := s.repo.LockPrune(s.ctx, false, wait, nil)
	if err != nil {
		s.log.Warn("cannot take the prune lock", "err", err)
		if errors.Is(err, repo.ErrPruneLocked) {
			s.setAll(ngPruneBusy)
		} else {
			s.setAll(ngInternal)
		}
		return false
	}
	s.unlockPrune = unlock
	return true
}

// unlockPruneNow lets go of the prune lock if the session holds it.
func (s *session) unlockPruneNow() {
	if s.unlockPrune != nil {
		s.unlockPrune()
		s.unlockPrune = nil
	}
}

// freshen sets the modification time of the files holding the objects
// the push's updates name without bringing them (an old commit pushed
// again to a new branch) to now, as C Git freshens an object a writer
// finds already there: a cleanup with a grace period measures an
// unreachable object's age by its file's, so these count as new
// should their references go again. It tries once per file and only
// logs a failure (a file another user owns).
func (s *session) freshen(ids []oid.ID) {
	now := time.Now()
	done := map[string]bool{}
	for _, id := range ids {
		var path string
		if p, _, ok := s.repo.LocateObject(id); ok {
			path = p.Path()
		} else if s.repo.Loose.HasObject(id) {
			h := id.String()
			path = filepath.Join(s.repo.Loose.Dir(), h[:2], h[2:])
		} else {
			continue
		}
		if done[path] {
			continue
		}
		done[path] = true
		if err := os.Chtimes(path, now, now); err != nil {
			s.log.Debug("cannot freshen", "file", filepath.Base(path), "err", err)
		}
	}
}
