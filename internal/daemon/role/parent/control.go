package parent

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"gotd/internal/daemon/ipc"
	"gotd/internal/daemon/msg"
)

// controlCommand answers gotctl; listen has checked that its user may
// control the daemon.
func (d *daemon) controlCommand(conn *msg.Conn, m *ipc.ControlConnect) {
	d.log.Info("control command", "command", m.Command, "uid", m.UID)
	reply := func(status uint32, text string) {
		ipc.Send(conn, &ipc.Done{Status: status, Message: text}, nil)
		conn.Close()
	}
	switch m.Command {
	case "info":
		text := d.info()
		for len(text) > 0 {
			n := min(len(text), ipc.MaxText)
			if err := ipc.Send(conn, &ipc.Text{Text: text[:n]}, nil); err != nil {
				break
			}
			text = text[n:]
		}
		reply(ipc.StatusOK, "")
	case "reload":
		// Answered once gotctl has passed the files and sockets the
		// reload needs, and it is applied (reload.go).
		c, uc, err := ctlConn(conn)
		if err != nil {
			d.log.Error("reload: the control connection", "err", err)
			return
		}
		d.startReload(d.ctlReload(c, uc), c)
	case "stop":
		// Answered when the daemon exits, after its clients.
		d.control = append(d.control, conn)
		if !d.halted {
			d.halted = true
			d.log.Info("stopping once the clients are done", "clients", len(d.clients), "timeout", d.cfg.ShutdownTimeout)
			// Clients that take longer are ended: a slow one cannot hold
			// the daemon.
			time.AfterFunc(d.cfg.ShutdownTimeout, func() { d.events <- event{drained: true} })
			if !d.listen.exited {
				ipc.Send(d.listen.ch, &ipc.Halt{}, nil)
			}
			for _, f := range d.frontends {
				if !f.proc.exited {
					ipc.Send(f.proc.ch, &ipc.Halt{}, nil)
				}
			}
		}
	case "upkeep":
		// Answered when the run ends (upkeep.go).
		d.upkeepNow(conn, m.Repo)
	case "sync":
		// Answered when the sync ends (mirror.go).
		d.syncNow(conn, m.Repo)
	default:
		reply(ipc.StatusRefused, "unknown command")
	}
}

// viaNames name the sources of clients.
var viaNames = [...]string{ipc.ViaSocket: "gotsh", ipc.ViaSSH: "ssh", ipc.ViaGit: "git", ipc.ViaHTTP: "http"}

// info describes the daemon and its clients, for gotctl info.
func (d *daemon) info() string {
	var b strings.Builder
	fmt.Fprintf(&b, "gotd PID: %d\n", os.Getpid())
	fmt.Fprintf(&b, "verbosity: %d\n", d.opts.Verbosity)
	fmt.Fprintf(&b, "number of repositories: %d\n", len(d.cfg.Repositories))
	fmt.Fprintf(&b, "number of connected clients: %d\n", len(d.clients))
	b.WriteString(d.notifyInfo())
	d.upkeepInfo(&b)
	d.mirrorToInfo(&b)
	d.mirrorInfo(&b)
	for _, r := range d.cfg.Repositories {
		fmt.Fprintf(&b, "repository %q, path %s\n", r.Name, r.Path)
	}
	var cs []*client
	for _, c := range d.clients {
		cs = append(cs, c)
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].since.Before(cs[j].since) })
	for _, c := range cs {
		dir := "reading from"
		if c.write {
			dir = "writing to"
		}
		name := c.connect.Repo
		if c.repoCfg != nil {
			name = c.repoCfg.Name
		}
		user := c.user
		if user == "" {
			user = "-"
		}
		from := fmt.Sprintf("UID %d, GID %d", c.connect.UID, c.connect.GID)
		if c.connect.Via != ipc.ViaSocket {
			from = fmt.Sprintf("via %s from %s", viaNames[c.connect.Via], c.connect.Remote)
		}
		fmt.Fprintf(&b, "client %d: user %s, %s, %s repository %q, state %s, session PID %d, repo PID %d, since %s\n",
			c.id, user, from, dir, name, c.state, c.session.pid(), c.repo.pid(),
			c.since.UTC().Format(time.RFC3339))
	}
	return b.String()
}
