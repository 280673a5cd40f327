package parent

import (
	"path/filepath"

	"gotd/internal/daemon/config"
	"gotd/internal/git/refs"
	"gotd/internal/protocol/receive"
)

// removeLeftovers removes, from every configured repository, what
// pushes of processes that died left: their reference locks (through
// the journals session_write keeps) and their quarantine directories.
// Only what gotd can prove its own and dead goes: the journals and
// quarantines of live processes, of another gotd, and C Git's locks
// and quarantines stay.
func (d *daemon) removeLeftovers() {
	for _, r := range d.cfg.Repositories {
		d.removeDeadLocks(r, "")
		n, err := receive.RemoveDeadQuarantines(filepath.Join(r.Path, "objects"))
		if err != nil {
			d.log.Error("cannot remove dead quarantines", "repo", r.Name, "err", err)
		}
		if n > 0 {
			d.log.Warn("removed the quarantines of dead pushes", "repo", r.Name, "count", n)
		}
	}
}

// removeDeadLocks removes the reference locks of r's dead writers
// (pushes, mirror syncs, upkeep runs: the processes that keep a
// journal), which died as writer says ("" at start: any). The
// parent does it, not a process of its own: it runs as the user that
// owns the repositories, with any path its Unix permissions allow (it
// already makes and removes quarantines), and it is the process that
// learns of a session_write's death.
func (d *daemon) removeDeadLocks(r *config.Repository, writer string) {
	n, err := refs.RemoveDeadJournals(r.Path)
	if err != nil {
		d.log.Error("cannot remove the reference locks of dead writers", "repo", r.Name, "err", err)
	}
	if n > 0 {
		if writer == "" {
			d.log.Warn("removed the reference locks of dead writers", "repo", r.Name, "count", n)
		} else {
			d.log.Warn("removed the reference locks of a dead "+writer, "repo", r.Name, "count", n)
		}
	}
}
