package parent

import (
	"fmt"
	"os"
	"strconv"

	"gotd/internal/daemon/ipc"
	"gotd/internal/daemon/msg"
	"gotd/internal/daemon/role/notify"
	"gotd/internal/daemon/users"
)

// maxBacklog bounds the notifications kept while no notify process
// runs (between a crash or a restart and the next start).
const maxBacklog = 10000

// notifyState is what the parent keeps about the notify process.
type notifyState struct {
	// key names what the running process's sandbox was made for (its
	// spool and ports): a reload that changes it restarts the process.
	key string
	// restart: the process was asked to stop for new settings; start
	// the next one at once. Notifications wait in the backlog
	// meanwhile.
	restart bool
	// failed: the process could not be given its settings and was
	// stopped; the next one starts after restartDelay.
	failed bool
	// backlog holds notifications while no process runs.
	backlog []*ipc.Notification
	// queued is the queue length the process last reported.
	queued uint32
}

// notifyMessages are the current configuration's notify settings and
// the key of their sandbox. When the spool cannot be prepared they name
// none: notifications are off until it is mended.
func (d *daemon) notifyMessages() ([]ipc.Message, string) {
	host, err := os.Hostname()
	if err != nil {
		host = "localhost"
	}
	user := d.cfg.User
	if u, _ := users.ByUID(os.Geteuid()); u != nil {
		user = u.Name
	}
	ms := notify.Messages(d.cfg, host, user)
	first := ms[0].(*ipc.NotifySettings)
	if first.Spool != "" {
		if err := notify.PrepareSpool(first.Spool, os.Geteuid(), os.Getegid()); err != nil {
			d.log.Error("notifications are off", "err", err)
			first.Spool = ""
		}
	}
	s, err := notify.SettingsOf(ms)
	if err != nil {
		d.log.Error("notifications are off", "err", err)
		return []ipc.Message{&ipc.NotifySettings{}, &ipc.AccountsEnd{}}, ""
	}
	return ms, first.Spool + " " + fmt.Sprint(s.Ports())
}

// startNotify starts the notify process with the current settings and
// hands it the notifications kept meanwhile.
func (d *daemon) startNotify() error {
	ms, key := d.notifyMessages()
	p, err := d.spawn(RoleNotify, 0, nil)
	if err != nil {
		return err
	}
	d.notify, d.nstate.key, d.nstate.restart, d.nstate.failed = p, key, false, false
	for _, m := range ms {
		if err := ipc.Send(p.ch, m, nil); err != nil {
			p.kill()
			d.nstate.restart, d.nstate.failed = true, true
			return fmt.Errorf("parent: notify: %w", err)
		}
	}
	backlog := d.nstate.backlog
	d.nstate.backlog = nil
	for _, n := range backlog {
		d.notifyNote(n)
	}
	return nil
}

// reloadNotify gives the notify process the reloaded settings, or
// stops it to start again when its sandbox must change.
func (d *daemon) reloadNotify() {
	ms, key := d.notifyMessages()
	if d.notify == nil || d.notify.exited {
		return // it starts with the new settings
	}
	if key != d.nstate.key {
		d.log.Info("notify: new spool or ports: restarting it")
		d.stopNotify()
		d.nstate.restart = true
		return
	}
	for _, m := range ms {
		if err := ipc.Send(d.notify.ch, m, nil); err != nil {
			d.log.Error("reload: cannot update notify", "err", err)
			return
		}
	}
}

// stopNotify ends the notify process's input: it queues what it was
// handed and exits; it is killed if it takes longer than killGrace.
func (d *daemon) stopNotify() {
	if d.notify == nil || d.notify.exited {
		return
	}
	d.notify.ch.CloseWrite()
	d.notify.killAfter(killGrace)
}

// notifyExited starts the notify process again: at once when it was
// stopped for new settings, after restartDelay when it failed.
func (d *daemon) notifyExited() {
	if d.halted {
		return
	}
	if d.nstate.failed {
		d.restartNotifyLater() // not at once: it may fail again
		return
	}
	if d.nstate.restart {
		if err := d.startNotify(); err != nil {
			d.log.Error("cannot start notify", "err", err)
			d.restartNotifyLater()
		}
		return
	}
	d.log.Error("notify exited: starting it again", "err", d.notify.status)
	d.restartNotifyLater()
}

func (d *daemon) restartNotifyLater() {
	d.nstate.restart = true
	d.afterDelay(event{restartNotify: true})
}

// pushNote hands a session_write's push note to the notify process,
// with the repository and user the parent knows the client by.
func (d *daemon) pushNote(c *client, raw msg.Msg) error {
	var m ipc.PushNote
	if _, err := ipc.Check(raw, &m, false); err != nil {
		return err
	}
	// session_write describes the push after it reported its end.
	if !c.write || c.end == nil || c.failure != "" {
		return fmt.Errorf("push note out of turn")
	}
	d.notifyNote(&ipc.Notification{Repo: c.repoCfg.Name, User: c.user, Note: m.Note})
	return nil
}

// notifyNote sends n to the notify process, or keeps it until one runs.
func (d *daemon) notifyNote(n *ipc.Notification) {
	if d.notify != nil && !d.notify.exited && !d.nstate.restart {
		if err := ipc.Send(d.notify.ch, n, nil); err == nil {
			return
		}
	}
	if len(d.nstate.backlog) >= maxBacklog {
		d.log.Error("notification dropped: notify is not running and its backlog is full", "repo", n.Repo, "user", n.User)
		return
	}
	d.nstate.backlog = append(d.nstate.backlog, n)
}

// fromNotify handles a message of the notify process.
func (d *daemon) fromNotify(raw msg.Msg) error {
	var m ipc.NotifyStatus
	if _, err := ipc.Check(raw, &m, false); err != nil {
		return err
	}
	d.nstate.queued = m.Queued
	return nil
}

// notifyInfo is gotctl info's line about notifications.
func (d *daemon) notifyInfo() string {
	queued := strconv.Itoa(int(d.nstate.queued) + len(d.nstate.backlog))
	return "notifications queued: " + queued + "\n"
}
