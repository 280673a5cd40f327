package parent

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gotd/internal/daemon/config"
	"gotd/internal/daemon/ipc"
	"gotd/internal/daemon/msg"
	"gotd/internal/protocol/receive"
)

// Pull mirrors (gotd.conf's "mirror from"): each is synced at start,
// every Mirror.Every (jittered), and at gotctl sync; one sync at a time
// per repository. A sync is two processes joined by a channel: fetch,
// which reaches the upstream and indexes its pack into a quarantine the
// parent made, and session_write in ModeMirror, which checks what
// fetch brought, installs the pack and moves the references, as it
// does for a push, and reports to the parent (SessionEnd). Failures are
// retried after mirrorRetry, doubling up to the mirror's interval.
const (
	mirrorRetry = 30 * time.Second
	// mirrorTimeout bounds a whole sync; the parent ends its processes
	// mirrorGrace after.
	mirrorTimeout = time.Hour
	mirrorGrace   = 10 * time.Second
)

// mirroring is a pull mirror's state, by repository name.
type mirroring struct {
	fetch, write *child
	quarantine   string
	hold         *os.File
	started      time.Time
	end          *ipc.SessionEnd // session_write's report, once sent
	overdue      *time.Timer
	// lastOK and lastErr are when the last sync succeeded and failed,
	// errText why; next is when the next is due, timer what starts it.
	lastOK, lastErr time.Time
	errText         string
	failures        int
	next            time.Time
	timer           *time.Timer
	// callers are gotctl sync connections answered when the sync ends.
	callers []*msg.Conn
}

// mirrorRefusal is what a client pushing to the mirror r is told.
func mirrorRefusal(r *config.Repository) string {
	return fmt.Sprintf("%s is a read-only mirror of %s", r.Name, r.Mirror.URL)
}

// scheduleMirrors syncs every configured mirror that has no state yet
// at once, and forgets the state of repositories no longer mirrors: at
// start and after a reload.
func (d *daemon) scheduleMirrors() {
	if d.mirrors == nil {
		d.mirrors = map[string]*mirroring{}
	}
	for name, m := range d.mirrors {
		if r := d.cfg.FindRepository(name); r == nil || r.Mirror == nil {
			if m.timer != nil {
				m.timer.Stop()
			}
			if m.fetch == nil && m.write == nil {
				delete(d.mirrors, name)
			}
		}
	}
	for _, r := range d.cfg.Repositories {
		if r.Mirror != nil && d.mirrors[r.Name] == nil {
			m := &mirroring{}
			d.mirrors[r.Name] = m
			d.mirrorAfter(r.Name, m, 0)
		}
	}
}

// mirrorAfter has the mirror named name synced after wait.
func (d *daemon) mirrorAfter(name string, m *mirroring, wait time.Duration) {
	if m.timer != nil {
		m.timer.Stop()
	}
	m.next = time.Now().Add(wait)
	m.timer = time.AfterFunc(wait, func() { d.events <- event{mirrorDue: name} })
}

// mirrorDue starts the sync of the mirror named name, unless one runs.
func (d *daemon) mirrorDue(name string) {
	m := d.mirrors[name]
	r := d.cfg.FindRepository(name)
	if m == nil || r == nil || r.Mirror == nil || d.halted || m.fetch != nil || m.write != nil {
		return
	}
	if err := d.startMirror(r, m); err != nil {
		d.log.Error("cannot start a mirror sync", "repo", r.Name, "err", err)
		d.mirrorDone(r.Name, m, fmt.Sprintf("cannot start the sync: %v", err))
	}
}

// startMirror starts the two processes of a sync of r.
func (d *daemon) startMirror(r *config.Repository, m *mirroring) error {
	q, hold, err := receive.NewQuarantine(filepath.Join(r.Path, "objects"))
	if err != nil {
		return err
	}
	m.quarantine, m.hold, m.started, m.end = q, hold, time.Now(), nil
	fail := func(err error) error {
		m.fetch.kill()
		m.write.kill()
		return err
	}
	ours, theirs, err := msg.Pair()
	if err != nil {
		return fail(err)
	}
	defer ours.Close()
	defer theirs.Close()
	// session_write has no client: its streams are /dev/null.
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return fail(err)
	}
	defer null.Close()
	push := &r.Push
	start := &ipc.Start{
		Repo: r.Name, Path: r.Path, User: "mirror", Mode: ipc.ModeMirror, Quarantine: q,
		MaxObjectSize: uint64(push.MaxObjectSize), MemoryLimit: uint64(d.cfg.MemoryLimit),
		Timeout:          uint32(mirrorTimeout / time.Second),
		MirrorNamespaces: r.Mirror.MirrorNamespaces(),
	}
	n := &r.Notify
	start.Notify, start.NotifyBranches, start.NotifyNamespaces = n.HasTargets(), n.Branches, n.Namespaces
	if m.write, err = d.spawn(RoleSessionWrite, 0, []*os.File{ours.File(), null, null}); err != nil {
		return fail(err)
	}
	if err := ipc.Send(m.write.ch, start, nil); err != nil {
		return fail(err)
	}
	mf := r.Mirror
	fs := &ipc.MirrorStart{
		Name: r.Name, Path: r.Path, URL: mf.URL, Quarantine: q,
		AuthUser: mf.AuthUser, AuthPassword: mf.AuthPassword,
		KeyFile: mf.KeyFile, KnownHosts: mf.KnownHosts, HostKeys: mf.HostKeys,
		Timeout:     uint32(mirrorTimeout / time.Second),
		MaxPackSize: uint64(push.MaxPackSize), MaxObjects: uint64(push.MaxObjects),
		MaxObjectSize: uint64(push.MaxObjectSize), MinFree: uint64(push.MinFree),
		MemoryLimit: uint64(d.cfg.MemoryLimit),
		CA:          mf.CA,
		Namespaces:  mf.MirrorNamespaces(),
	}
	if m.fetch, err = d.spawn(RoleFetch, 0, []*os.File{theirs.File()}); err != nil {
		return fail(err)
	}
	if err := ipc.Send(m.fetch.ch, fs, nil); err != nil {
		return fail(err)
	}
	name := r.Name
	m.overdue = time.AfterFunc(mirrorTimeout+mirrorGrace, func() { d.events <- event{mirrorOverdue: name} })
	d.log.Info("mirror sync started", "repo", r.Name, "upstream", mf.URL)
	return nil
}

// mirrorOf returns the mirror whose sync runs ch, and its name.
func (d *daemon) mirrorOf(ch *child) (string, *mirroring) {
	for name, m := range d.mirrors {
		if ch != nil && (m.fetch == ch || m.write == ch) {
			return name, m
		}
	}
	return "", nil
}

// fromMirror handles a message of a sync's process: session_write's
// SessionEnd, then its PushNotes; fetch talks to session_write only.
func (d *daemon) fromMirror(name string, m *mirroring, from *child, raw msg.Msg) error {
	if from != m.write {
		return fmt.Errorf("unexpected message %d", raw.Type)
	}
	switch raw.Type {
	case ipc.TypeSessionEnd:
		if m.end != nil {
			return errors.New("sync ended twice")
		}
		var e ipc.SessionEnd
		if _, err := ipc.Check(raw, &e, false); err != nil {
			return err
		}
		m.end = &e
		return nil
	case ipc.TypePushNote:
		var n ipc.PushNote
		if _, err := ipc.Check(raw, &n, false); err != nil {
			return err
		}
		if m.end == nil || m.end.Status != ipc.StatusOK {
			return errors.New("push note out of turn")
		}
		d.notifyNote(&ipc.Notification{Repo: name, User: "mirror", Note: n.Note})
		return nil
	}
	return fmt.Errorf("unexpected message %d", raw.Type)
}

// mirrorExited handles the end of a sync's process; once both are gone
// the sync is over.
func (d *daemon) mirrorExited(name string, m *mirroring, ch *child) {
	if ch.status != nil && !ch.killed {
		d.log.Warn("mirror sync process failed", "child", ch.role, "pid", ch.pid(), "repo", name, "err", ch.status)
	}
	if ch == m.fetch && ch.status != nil && m.write != nil && !m.write.exited && m.end == nil {
		// session_write waits for what fetch sends; fetch failed. A
		// fetch that succeeded sent it all, and session_write, which
		// checks the pack again and installs it (tens of seconds for
		// a large repository), is bounded by the sync's deadline.
		m.write.killAfter(killGrace)
	}
	if ch == m.write && m.fetch != nil && !m.fetch.exited {
		m.fetch.kill()
	}
	if (m.fetch != nil && !m.fetch.exited) || (m.write != nil && !m.write.exited) {
		return
	}
	if m.write != nil && m.write.status != nil {
		if r := d.cfg.FindRepository(name); r != nil {
			d.removeDeadLocks(r, "mirror sync")
		}
	}
	text := ""
	switch e := m.end; {
	case e == nil:
		text = "the sync's processes ended without a report"
	case e.Status != ipc.StatusOK:
		text = e.Error
		if text == "" {
			text = "failed"
		}
	}
	d.mirrorDone(name, m, text)
}

// mirrorDone records how a sync of the mirror named name ended (errText
// "" for success), removes its quarantine, answers the gotctl callers
// and schedules the next sync.
func (d *daemon) mirrorDone(name string, m *mirroring, errText string) {
	m.fetch, m.write = nil, nil
	if m.overdue != nil {
		m.overdue.Stop()
		m.overdue = nil
	}
	if m.quarantine != "" {
		if err := os.RemoveAll(m.quarantine); err != nil {
			d.log.Error("cannot remove a quarantine directory", "repo", name, "err", err)
		}
		m.hold.Close()
		m.quarantine, m.hold = "", nil
	}
	status, text := uint32(ipc.StatusOK), ""
	if errText == "" {
		m.lastOK, m.failures = time.Now(), 0
		updated := uint32(0)
		if m.end != nil {
			updated = m.end.Updated
		}
		text = fmt.Sprintf("synced: %d references updated", updated)
		if m.end != nil {
			for _, u := range m.end.Updates {
				text += fmt.Sprintf("\n%s: %s", u.Name, u.Move)
			}
		}
		if updated > 0 {
			d.log.Info("mirror synced", "repo", name, "updated", updated)
		}
	} else {
		m.lastErr, m.errText, m.failures = time.Now(), errText, m.failures+1
		status, text = ipc.StatusFailed, "sync failed: "+errText
		d.log.Warn("mirror sync failed", "repo", name, "err", errText)
	}
	for _, c := range m.callers {
		if status == ipc.StatusOK {
			ipc.Send(c, &ipc.Text{Text: truncate(text, ipc.MaxText-1) + "\n"}, nil)
			ipc.Send(c, &ipc.Done{Status: status}, nil)
		} else {
			ipc.Send(c, &ipc.Done{Status: status, Message: truncate(text, ipc.MaxMessage)}, nil)
		}
		c.Close()
	}
	m.callers = nil
	r := d.cfg.FindRepository(name)
	if r == nil || r.Mirror == nil {
		delete(d.mirrors, name)
		return
	}
	if d.halted {
		return
	}
	d.mirrorAfter(name, m, mirrorWait(r.Mirror.Every, m.failures))
	// A sync that moved references added a pack: perhaps the one that
	// calls for upkeep.
	if errText == "" && m.end != nil && m.end.Updated > 0 {
		d.afterPush(name)
	}
}

// mirrorWait is the time to the next sync of a mirror synced every
// every, after failures failed syncs in a row: every, ±10% so that
// mirrors started together spread out; after a failure mirrorRetry,
// doubling, up to every.
func mirrorWait(every time.Duration, failures int) time.Duration {
	if failures > 0 {
		w := mirrorRetry
		for i := 1; i < failures && w < every; i++ {
			w *= 2
		}
		return min(w, every)
	}
	jitter := time.Duration(rand.Int64N(int64(every)/5+1)) - every/10
	return every + jitter
}

// mirrorOverdue ends the processes of a sync past its deadline.
func (d *daemon) mirrorOverdue(name string) {
	m := d.mirrors[name]
	if m == nil || (m.fetch == nil && m.write == nil) {
		return
	}
	d.log.Warn("mirror sync deadline passed: ending its processes", "repo", name)
	m.fetch.kill()
	m.write.kill()
}

// syncNow syncs the mirror named name for gotctl sync and answers conn
// when the sync ends; one already running answers it too.
func (d *daemon) syncNow(conn *msg.Conn, name string) {
	r := d.cfg.FindRepository(name)
	refuse := func(text string) {
		ipc.Send(conn, &ipc.Done{Status: ipc.StatusRefused, Message: text}, nil)
		conn.Close()
	}
	switch {
	case r == nil:
		refuse("no such repository")
		return
	case r.Mirror == nil:
		refuse("not a mirror")
		return
	case d.halted:
		refuse("gotd is stopping")
		return
	}
	d.scheduleMirrors()
	m := d.mirrors[r.Name]
	m.callers = append(m.callers, conn)
	if m.fetch == nil && m.write == nil {
		d.mirrorDue(r.Name)
	}
}

// mirrorInfo describes the mirrors, for gotctl info.
func (d *daemon) mirrorInfo(b *strings.Builder) {
	at := func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.UTC().Format(time.RFC3339)
	}
	for _, r := range d.cfg.Repositories {
		m := d.mirrors[r.Name]
		if r.Mirror == nil || m == nil {
			continue
		}
		fmt.Fprintf(b, "mirror %q from %s: last success %s", r.Name, r.Mirror.URL, at(m.lastOK))
		if !m.lastErr.IsZero() {
			fmt.Fprintf(b, ", last error %s: %s", at(m.lastErr), m.errText)
		}
		if m.fetch != nil || m.write != nil {
			fmt.Fprintf(b, ", syncing since %s\n", at(m.started))
		} else {
			fmt.Fprintf(b, ", next attempt %s\n", at(m.next))
		}
	}
}

// stopMirrors answers the callers of the syncs running, at shutdown;
// it returns their processes, for the caller to end, and the function
// that removes their quarantines once they are gone.
func (d *daemon) stopMirrors() ([]*child, func()) {
	var all []*child
	var dirs []string
	var holds []*os.File
	for _, m := range d.mirrors {
		if m.timer != nil {
			m.timer.Stop()
		}
		all = append(all, m.fetch, m.write)
		for _, c := range m.callers {
			ipc.Send(c, &ipc.Done{Status: ipc.StatusFailed, Message: "gotd stopped"}, nil)
			c.Close()
		}
		m.callers = nil
		if m.quarantine != "" {
			dirs, holds = append(dirs, m.quarantine), append(holds, m.hold)
		}
	}
	return all, func() {
		for i, dir := range dirs {
			os.RemoveAll(dir)
			holds[i].Close()
		}
	}
}
