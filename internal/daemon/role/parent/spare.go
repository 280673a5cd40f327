package parent

import (
	"fmt"

	"gotd/internal/daemon/ipc"
)

// A fetch's session_read process is started before its client comes:
// the parent keeps one spare, a session_read process that has run its
// runtime's and packages' start-up and waits on its channel, as the
// unprivileged user and with nothing of any client. The next client
// that reads is given it (its streams, then its Start, on which it
// opens the repository and confines itself as any session_read does),
// and the parent starts the next spare. A spare serves one client and
// exits, as every session process does: it saves its client the wait
// for a process start (exec, runtime start, package initialisation,
// page faults of the binary: most of an ls-remote's time), not the
// process. See DESIGN.md.

// SpareTitle is what ps shows of a spare session_read until a client
// takes it; it is longer than "gotd: session_read", which the process
// writes over it then.
const SpareTitle = "gotd: spare session_read"

// sessionRead gives c a session_read process of its own, the spare
// when there is one, with c's streams.
func (d *daemon) sessionRead(c *client) (*child, error) {
	if p := d.spare; p != nil {
		d.spare = nil
		if !p.exited && ipc.SendStreams(p.ch, c.id, c.in, c.out) == nil {
			p.client = c.id
			return p, nil
		}
		// Gone, or going: a new one is started for c.
		p.kill()
	}
	p, err := d.spawn(RoleSessionRead, c.id, nil)
	if err != nil {
		return nil, err
	}
	if err := ipc.SendStreams(p.ch, c.id, c.in, c.out); err != nil {
		p.kill()
		return nil, fmt.Errorf("parent: %w", err)
	}
	return p, nil
}

// startSpare starts a spare session_read if there is none, unless the
// daemon is stopping. It is called after a client took the spare, so a
// spare that cannot start is tried again at the next client only.
func (d *daemon) startSpare() {
	if d.spare != nil || d.halted {
		return
	}
	// Named apart until it has a client, when it takes its role's
	// name (SpareTitle).
	p, err := d.spawnAs(RoleSessionRead, SpareTitle, 0, nil)
	if err != nil {
		d.log.Error("cannot start a spare session_read", "err", err)
		return
	}
	d.spare = p
}

// spareExited reports whether ch is the spare, which exited before a
// client took it (ended at a stop, or failed).
func (d *daemon) spareExited(ch *child) bool {
	if ch != d.spare {
		return false
	}
	d.spare = nil
	if !ch.killed {
		d.log.Warn("the spare session_read exited", "pid", ch.pid(), "err", ch.status)
	}
	return true
}
