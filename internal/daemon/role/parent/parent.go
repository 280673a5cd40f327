// Package parent is gotd's parent process: it owns the configuration,
// the listening socket and the table of clients; it starts every other
// process by executing its own binary with a role flag, passes each
// the descriptors and messages it needs, and routes between them. It
// never reads a byte of the Git protocol: clients reach it only as
// typed messages from listen, and their streams go from listen to the
// session and repo processes without being read here.
//
// One goroutine (run) owns all state; every channel and child has a
// goroutine that turns what happens on it into an event for run.
package parent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"gotd/internal/daemon/admit"
	"gotd/internal/daemon/config"
	"gotd/internal/daemon/gitcmd"
	"gotd/internal/daemon/ipc"
	"gotd/internal/daemon/logs"
	"gotd/internal/daemon/msg"
	"gotd/internal/daemon/role/metrics"
)

// Roles, the values of the -T flag.
const (
	RoleListen       = "listen"
	RoleAuth         = "auth"
	RoleSessionRead  = "session_read"
	RoleSessionWrite = "session_write"
	RoleRepoWrite    = "repo_write"
	RoleNotify       = "notify"
	RoleSSHD         = "sshd"  // the built-in SSH server
	RoleGitD         = "gitd"  // the git:// daemon
	RoleHTTPD        = "httpd" // smart HTTP
	RoleMetrics      = "metrics"
	RoleUpkeep       = "upkeep" // tidies one repository's storage
	RoleSend         = "send"   // brings one push mirror up to date
	RoleFetch        = "fetch"  // fetches a pull mirror's upstream
)

// Time limits of the parent.
const (
	authTimeout = 5 * time.Second // for auth's answer
	killGrace   = 5 * time.Second // from SIGTERM to SIGKILL
)

// Options configure the daemon.
type Options struct {
	Config     *config.Config
	Foreground bool
	Verbosity  int
	// Exe is the daemon's binary, executed for every child.
	Exe string
	// Listener is the bound socket.
	Listener *net.UnixListener
	// ConfigPath and SecretsPath are the files the daemon started
	// with: SIGHUP reads them again, gotctl reload is told them.
	ConfigPath, SecretsPath string
	// Reload parses the configuration from the files a reload opened
	// (gotctl reload, SIGHUP); the caller closes them.
	Reload func(ReloadFiles) (*config.Config, error)
	// ControlUIDs may use gotctl: root and the daemon's user.
	ControlUIDs []uint32
	// Limits resolves the configuration's per-user limits to uids.
	Limits func(*config.Config) *ipc.Limits
	// Frontends are the network front-ends to run.
	Frontends []Frontend
	// Ready, if set, is called once every long-lived process (listen,
	// notify, the front-ends) has confined itself and said it serves
	// (ipc.Ready); Main fails instead if one exits first, or if they
	// have not all said so within startTimeout.
	Ready func()
	// Metrics are the sockets of the metrics process (kept, to start
	// it again should it die); none: no metrics process.
	Metrics []*os.File
}

// startTimeout bounds the start of the long-lived processes.
const startTimeout = 30 * time.Second

// child is a process started for a role.
type child struct {
	role   string
	cmd    *exec.Cmd
	ch     *msg.Conn
	client uint32 // 0 for listen and notify
	exited bool
	killed bool          // the parent ended it: its status is no failure
	status error         // of Wait
	stderr *lastLine     // the last line of its standard error (client 0 only)
	done   chan struct{} // closed when the process has been reaped
}

func (c *child) pid() int {
	if c == nil || c.cmd.Process == nil {
		return 0
	}
	return c.cmd.Process.Pid
}

// kill stops c: SIGTERM, then SIGKILL after the grace period.
func (c *child) kill() {
	if c == nil || c.exited {
		return
	}
	c.killed = true
	c.cmd.Process.Signal(syscall.SIGTERM)
	c.killAfter(killGrace)
}

// killAfter sends SIGKILL to c after d unless it has exited by then
// (os.Process does not signal a process it has reaped).
func (c *child) killAfter(d time.Duration) {
	p := c.cmd.Process
	time.AfterFunc(d, func() { p.Kill() })
}

// event is something run must handle.
type event struct {
	from   *child
	raw    msg.Msg
	exit   *child
	status error // of exit
	sig    os.Signal
	// authTimeout names a client whose auth took too long.
	authTimeout uint32
	// overdue is a client whose processes outlived its deadline.
	overdue *client
	// restart names a front-end to start again.
	restart *frontend
	// restartNotify starts the notify process again.
	restartNotify bool
	// restartListen starts listen again.
	restartListen bool
	// restartMetrics starts the metrics process again.
	restartMetrics bool
	// restartWeb starts the anonymous visitors' web process again;
	// webTick looks for idle web processes (web.go).
	restartWeb, webTick bool
	// drained: the shutdown timeout of gotctl stop has passed.
	drained bool
	// reloaded is a reload prepared, to apply; haltWait, one whose
	// answer waited too long for front-ends to halt.
	reloaded *reloaded
	haltWait *haltWait
	// startTimeout: the long-lived processes' time to start is over.
	startTimeout bool
	// pushMirrorDue is a push mirror whose next attempt is due
	// (mirrorto.go).
	pushMirrorDue *mirrorTarget
	// mirrorDue names a pull mirror to sync; mirrorOverdue one whose
	// sync outlived its deadline (mirror.go).
	mirrorDue, mirrorOverdue string
}

// daemon is the parent's state, owned by run.
type daemon struct {
	opts       Options
	log        *slog.Logger
	audit      *slog.Logger   // the record of each request, at every verbosity
	refused    *admit.Summary // refusals of unproven identities
	cfg        *config.Config
	events     chan event
	listen     *child
	listenFile *os.File // the socket, kept to start listen again
	notify     *child
	nstate     notifyState
	verifier   *verifier
	failed     *admit.Buckets // failed requests per address (failed.go)
	frontends  []*frontend
	// retired are front-ends replaced at a reload, serving their last
	// clients; reloading: a reload is being prepared.
	retired   []*frontend
	reloading bool
	haltWaits []*haltWait
	clients   map[uint32]*client
	control   []*msg.Conn // gotctl stop callers, answered on exit
	halted    bool
	// starting holds the long-lived processes that have not yet said
	// they serve, while the daemon starts; nil once it has.
	starting map[*child]bool
	metrics  *child
	recorder *metrics.Recorder
	// upkeeps are the repositories' upkeep runs, by repository name
	// (upkeep.go).
	upkeeps map[string]*upkeeping
	// pushMirrors are the push mirrors' targets, by mirrorKey
	// (mirrorto.go).
	pushMirrors map[string]*mirrorTarget
	// mirrors are the pull mirrors' states, by repository name
	// (mirror.go).
	mirrors map[string]*mirroring
	// webs are the web processes by account, "" for anonymous
	// visitors (web.go).
	webs map[string]*webProc
	// spare is a session_read started before its client (spare.go).
	spare *child
}

// Main runs the daemon until it is stopped.
func Main(ctx context.Context, log *slog.Logger, opts Options) error {
	d := &daemon{opts: opts, log: log, cfg: opts.Config, events: make(chan event, 64), clients: map[uint32]*client{}, upkeeps: map[string]*upkeeping{}, webs: map[string]*webProc{}}
	d.audit = logs.Audit(log)
	d.refused = newRefusals(d.audit)
	d.verifier = newVerifier(d)
	d.recorder = metrics.NewRecorder(time.Now())
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	go func() {
		for s := range sigs {
			d.events <- event{sig: s}
		}
	}()
	d.removeLeftovers()
	lf, err := opts.Listener.File()
	opts.Listener.Close() // listen accepts; the parent keeps a copy
	if err != nil {
		return fmt.Errorf("parent: %w", err)
	}
	d.listenFile = lf
	if err := d.startListen(); err != nil {
		return err
	}
	if err := d.startNotify(); err != nil {
		return err
	}
	if err := d.startMetrics(); err != nil {
		return err
	}
	d.startPushMirrors()
	for _, f := range opts.Frontends {
		fe := &frontend{Frontend: f}
		d.frontends = append(d.frontends, fe)
		if err := d.startFrontend(fe); err != nil {
			return err
		}
	}
	d.startWebs()
	d.starting = map[*child]bool{d.listen: true, d.notify: true}
	for _, f := range d.frontends {
		d.starting[f.proc] = true
	}
	time.AfterFunc(startTimeout, func() { d.events <- event{startTimeout: true} })
	d.scheduleMirrors()
	return d.run(ctx)
}

// startListen starts listen with the socket and sends it the limits
// and, when it is started again, the clients of the socket still
// connected.
func (d *daemon) startListen() error {
	p, err := d.spawn(RoleListen, 0, []*os.File{d.listenFile})
	if err != nil {
		return err
	}
	d.listen = p
	if err := ipc.Send(p.ch, d.limits(), nil); err != nil {
		return fmt.Errorf("parent: listen: %w", err)
	}
	for _, c := range d.clients {
		if c.connect.Via == ipc.ViaSocket {
			if err := ipc.Send(p.ch, &ipc.Held{Client: c.id, UID: c.connect.UID}, nil); err != nil {
				return fmt.Errorf("parent: listen: %w", err)
			}
		}
	}
	return nil
}

// limits is the Limits message of the current configuration.
func (d *daemon) limits() *ipc.Limits {
	l := d.opts.Limits(d.cfg)
	l.Control = d.opts.ControlUIDs
	return l
}

// spawn starts a child for role with its channel on fd 3 and extra on
// the following descriptors.
func (d *daemon) spawn(role string, client uint32, extra []*os.File) (*child, error) {
	return d.spawnAs(role, "gotd: "+role, client, extra)
}

// spawnAs is spawn with title as the child's argv[0], what ps shows.
func (d *daemon) spawnAs(role, title string, client uint32, extra []*os.File) (*child, error) {
	mine, theirs, err := msg.Pair()
	if err != nil {
		return nil, fmt.Errorf("parent: start %s: %w", role, err)
	}
	args := []string{"-T", role}
	if d.opts.Foreground {
		args = append(args, "-d")
	}
	for i := 0; i < d.opts.Verbosity; i++ {
		args = append(args, "-v")
	}
	// The child's standard error is a pipe the parent logs, never the
	// operator's terminal; its other standard streams are /dev/null.
	errR, errW, err := os.Pipe()
	if err != nil {
		mine.Close()
		theirs.Close()
		return nil, fmt.Errorf("parent: start %s: %w", role, err)
	}
	cmd := exec.Command(d.opts.Exe, args...)
	cmd.Args[0] = title // ps shows the role
	cmd.Stderr = errW
	cmd.ExtraFiles = append([]*os.File{theirs.File()}, extra...)
	// A child outlives no parent: if the daemon dies, so do its clients'
	// processes. It has no controlling terminal.
	cmd.SysProcAttr = sysProcAttr()
	err = cmd.Start()
	theirs.Close()
	errW.Close()
	if err != nil {
		mine.Close()
		errR.Close()
		return nil, fmt.Errorf("parent: start %s: %w", role, err)
	}
	c := &child{role: role, cmd: cmd, ch: mine, client: client, done: make(chan struct{}), stderr: newLastLine()}
	go func() {
		defer close(c.stderr.done)
		defer errR.Close()
		var r io.Reader = errR
		if client == 0 {
			// A long-lived process: its last words say why it could
			// not start.
			r = io.TeeReader(errR, c.stderr)
		}
		logs.Relay(d.log.With("child", role, "pid", cmd.Process.Pid), r)
	}()
	d.recorder.Started(role)
	// The exit event follows every message of the child: its channel
	// reaches its end when the child is gone.
	read := make(chan struct{})
	go func() {
		defer close(read)
		for {
			raw, err := mine.Recv()
			if err != nil {
				return
			}
			d.events <- event{from: c, raw: raw}
		}
	}()
	go func() {
		status := cmd.Wait()
		close(c.done)
		<-read
		d.events <- event{exit: c, status: status}
	}()
	d.log.Debug("started", "child", role, "pid", cmd.Process.Pid, "client", client)
	return c, nil
}

// run handles events until the daemon stops.
func (d *daemon) run(ctx context.Context) error {
	for {
		var ev event
		select {
		case ev = <-d.events:
		case <-ctx.Done():
			d.shutdown()
			return nil
		}
		switch {
		case ev.sig != nil:
			if ev.sig == syscall.SIGHUP {
				d.startReload(d.selfReload, nil)
				continue
			}
			d.log.Info("stopping on signal", "signal", ev.sig)
			d.shutdown()
			return nil
		case ev.exit != nil:
			ev.exit.status = ev.status
			if err := d.exited(ev.exit); err != nil {
				d.shutdown()
				return err
			}
		case ev.authTimeout != 0:
			if c := d.clients[ev.authTimeout]; c != nil && c.state == stateAuth && c.connect.Via == ipc.ViaHTTP {
				// Waiting for a verifier, or verifying, too long: the
				// server is busy.
				d.refuse(c, ipc.ReasonBusy, "authentication timed out: the server is busy, try again later", "verification timed out")
			} else if c != nil && c.state == stateAuth {
				d.refuse(c, ipc.ReasonInternal, "authentication timed out", "auth timed out")
			}
		case ev.restartListen:
			if !d.halted && d.listen.exited {
				if err := d.startListen(); err != nil {
					d.log.Error("cannot start listen", "err", err)
					d.listen.kill()
					d.afterDelay(event{restartListen: true})
				}
			}
		case ev.startTimeout:
			if len(d.starting) > 0 {
				d.shutdown()
				return fmt.Errorf("parent: not started within %v: %s", startTimeout, d.startingRoles())
			}
		case ev.restartMetrics:
			d.restartMetrics()
		case ev.pushMirrorDue != nil:
			d.pushMirrorDue(ev.pushMirrorDue)
		case ev.mirrorDue != "":
			d.mirrorDue(ev.mirrorDue)
		case ev.mirrorOverdue != "":
			d.mirrorOverdue(ev.mirrorOverdue)
		case ev.restartWeb:
			d.restartWeb()
		case ev.webTick:
			d.webTick()
		case ev.drained:
			if len(d.clients) > 0 {
				d.log.Warn("shutdown timeout: ending the clients still connected", "clients", len(d.clients), "timeout", d.cfg.ShutdownTimeout)
				d.shutdown()
				return nil
			}
		case ev.overdue != nil:
			d.overdue(ev.overdue)
		case ev.restartNotify:
			if !d.halted && (d.notify == nil || d.notify.exited) {
				if err := d.startNotify(); err != nil {
					d.log.Error("cannot start notify", "err", err)
					d.restartNotifyLater()
				}
			}
		case ev.reloaded != nil:
			d.finishReload(ev.reloaded)
		case ev.haltWait != nil:
			d.haltWaitDone(ev.haltWait)
		case ev.restart != nil:
			// Not one replaced by a reload since.
			if !d.halted && slices.Contains(d.frontends, ev.restart) {
				if err := d.startFrontend(ev.restart); err != nil {
					d.log.Error("cannot start a front-end", "child", ev.restart.Role, "err", err)
					d.restartLater(ev.restart)
				}
			}
		default:
			d.message(ev.from, ev.raw)
		}
		if d.halted && len(d.clients) == 0 {
			d.log.Info("all clients are done: stopping")
			d.shutdown()
			return nil
		}
	}
}

// message handles a message from a child, checking that its role may
// send it.
func (d *daemon) message(from *child, raw msg.Msg) {
	if from.exited {
		closeFile(raw)
		return
	}
	if raw.Type == ipc.TypeReady && (from == d.listen || from == d.notify || d.frontendOf(from) != nil) {
		if _, err := ipc.Check(raw, &ipc.Ready{}, false); err != nil {
			d.log.Error("bad message", "child", from.role, "pid", from.pid(), "err", err)
			from.kill()
			return
		}
		d.started(from)
		return
	}
	if from == d.listen {
		d.fromSource(from, ipc.ViaSocket, raw)
		return
	}
	if from == d.metrics {
		if err := d.fromMetrics(raw); err != nil {
			closeFile(raw)
			d.log.Error("bad message from metrics", "err", err)
			from.kill()
		}
		return
	}
	if from == d.notify {
		if err := d.fromNotify(raw); err != nil {
			closeFile(raw)
			d.log.Error("bad message from notify", "err", err)
			from.kill()
		}
		return
	}
	if f := d.frontendOf(from); f != nil {
		if raw.Type == ipc.TypeHalt {
			d.frontendHalted(f, raw)
			return
		}
		d.fromSource(from, f.Via, raw)
		return
	}
	if w := d.webOf(from); w != nil {
		// A web process sends nothing: one that does is not what it
		// was started as.
		closeFile(raw)
		d.log.Error("unexpected message from a web process", "pid", from.pid(), "type", raw.Type)
		from.kill()
		return
	}
	if u := d.upkeepOf(from); u != nil {
		if err := d.fromUpkeep(u, raw); err != nil {
			closeFile(raw)
			d.log.Error("bad message from upkeep", "pid", from.pid(), "err", err)
			from.kill()
		}
		return
	}
	if t := d.pushMirrorOf(from); t != nil {
		if err := d.fromSend(t, raw); err != nil {
			closeFile(raw)
			d.log.Error("bad message from send", "pid", from.pid(), "err", err)
			from.kill()
		}
		return
	}
	if name, m := d.mirrorOf(from); m != nil {
		if err := d.fromMirror(name, m, from, raw); err != nil {
			closeFile(raw)
			d.log.Error("bad message from a mirror sync", "child", from.role, "pid", from.pid(), "repo", name, "err", err)
			m.fetch.kill()
			m.write.kill()
		}
		return
	}
	c := d.clients[from.client]
	var err error
	switch {
	case c == nil:
		err = errors.New("message for no client")
	case from == c.auth && raw.Type == ipc.TypeVerdict:
		err = d.verdict(c, raw)
	case from == c.auth && raw.Type == ipc.TypeAuthResult && !c.verifying:
		err = d.authResult(c, raw)
	case from == c.session && raw.Type == ipc.TypeSessionStats:
		err = d.sessionStats(c, raw)
	case from == c.session && raw.Type == ipc.TypeSessionEnd:
		err = d.sessionEnd(c, raw)
	case from == c.session && raw.Type == ipc.TypePushNote:
		err = d.pushNote(c, raw)
	default:
		err = fmt.Errorf("unexpected message %d", raw.Type)
	}
	if err != nil {
		closeFile(raw)
		d.log.Error("bad message: dropping the client", "child", from.role, "pid", from.pid(), "client", from.client, "err", err)
		if c != nil {
			d.fail(c, "internal server error")
		} else {
			from.kill()
		}
	}
}

// exited handles the end of a child process.
func (d *daemon) exited(ch *child) error {
	ch.exited = true
	ch.ch.Close()
	d.recorder.Exited(ch.role)
	if d.starting[ch] {
		return fmt.Errorf("%s exited during start-up: %s", ch.role, ch.stderr.reason(ch.status))
	}
	switch ch {
	case d.listen:
		// Its clients are the parent's: they go on. Callers waiting for
		// their request lost their connection, and call again.
		if !d.halted {
			d.log.Error("listen exited: starting it again", "err", ch.status)
			d.afterDelay(event{restartListen: true})
		}
		return nil
	case d.notify:
		d.notifyExited()
		return nil
	case d.metrics:
		d.metricsExited()
		return nil
	}
	if u := d.upkeepOf(ch); u != nil {
		d.upkeepExited(u)
		return nil
	}
	if t := d.pushMirrorOf(ch); t != nil {
		d.sendExited(t)
		return nil
	}
	if name, m := d.mirrorOf(ch); m != nil {
		d.mirrorExited(name, m, ch)
		return nil
	}
	if w := d.webOf(ch); w != nil {
		d.webExited(w)
		return nil
	}
	if d.spareExited(ch) {
		return nil
	}
	if i := slices.IndexFunc(d.retired, func(f *frontend) bool { return f.proc == ch }); i >= 0 {
		d.log.Info("a front-end replaced at a reload is done", "child", ch.role, "pid", ch.pid(), "err", ch.status)
		f := d.retired[i]
		d.retired = slices.Delete(d.retired, i, i+1)
		d.halted1(f)
		return nil
	}
	if f := d.frontendOf(ch); f != nil {
		d.frontendExited(f)
		return nil
	}
	if ru, ok := ch.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		d.log.Debug("exited", "child", ch.role, "pid", ch.pid(), "client", ch.client,
			"user", time.Duration(ru.Utime.Nano()), "sys", time.Duration(ru.Stime.Nano()), "maxrss_kib", ru.Maxrss)
	}
	c := d.clients[ch.client]
	if c == nil {
		return nil
	}
	switch {
	case ch.status == nil:
	case ch.killed:
		// Ended by the parent: auth once it has answered, the others
		// when their client failed, which its record says.
		d.log.Debug("child ended", "child", ch.role, "pid", ch.pid(), "client", c.id, "err", ch.status)
	default:
		d.log.Warn("child failed", "child", ch.role, "pid", ch.pid(), "client", c.id, "err", ch.status)
	}
	switch {
	case ch == c.auth:
		d.verifyDone(c)
		if c.state == stateAuth {
			d.refuse(c, ipc.ReasonInternal, "authentication failed", "auth exited without an answer")
		}
	case ch == c.session:
		if c.end == nil || ch.status != nil {
			d.fail(c, "the server's session failed")
		}
		if ch.status != nil && c.write {
			d.removeDeadLocks(c.repoCfg, "push")
		}
		// The repo process ends when its session's channel closes; one
		// that does not is stopped.
		if c.repo != nil && !c.repo.exited {
			c.repo.killAfter(killGrace)
		}
	case ch == c.repo:
		if ch.status != nil && c.end == nil {
			d.fail(c, "the server's repository process failed")
		}
	}
	d.maybeDone(c)
	return nil
}

// shutdown kills every child and waits for them to be gone, so that
// the daemon's ports and socket are free when it exits.
func (d *daemon) shutdown() {
	// notify first queues what it was handed.
	d.stopNotify()
	if n := len(d.nstate.backlog); n > 0 {
		d.log.Error("notifications lost: notify was not running at shutdown", "count", n)
	}
	all := append([]*child{d.listen, d.metrics, d.spare}, d.webProcs()...)
	for _, f := range slices.Concat(d.frontends, d.retired) {
		all = append(all, f.proc)
	}
	for _, u := range d.upkeeps {
		all = append(all, u.proc)
		for _, ctl := range u.callers {
			ipc.Send(ctl, &ipc.Done{Status: ipc.StatusFailed, Message: "gotd stopped"}, nil)
			ctl.Close()
		}
		u.callers = nil
	}
	all = append(all, d.mirrorProcs()...)
	syncs, removeQuarantines := d.stopMirrors()
	defer removeQuarantines()
	all = append(all, syncs...)
	for _, c := range d.clients {
		all = append(all, c.auth, c.session, c.repo)
		if !c.told {
			c.told = true
			d.fail(c, "gotd stopped")
			d.requestDone(c.ended())
		}
		c.conn.Close()
		if c.quarantine != "" {
			defer c.quarantineHold.Close()
			defer os.RemoveAll(c.quarantine)
		}
	}
	for _, c := range all {
		c.kill()
	}
	all = append(all, d.notify)
	deadline := time.After(killGrace + time.Second)
wait:
	for _, c := range all {
		if c == nil {
			continue
		}
		select {
		case <-c.done:
		case <-deadline:
			d.log.Warn("a child outlived the daemon", "child", c.role, "pid", c.pid())
			break wait
		}
	}
	for _, ctl := range d.control {
		ipc.Send(ctl, &ipc.Done{Status: ipc.StatusOK}, nil)
		ctl.Close()
	}
}

func closeFile(raw msg.Msg) {
	if raw.File != nil {
		raw.File.Close()
	}
}

// service names a client's service for messages.
func service(write bool) string {
	if write {
		return gitcmd.ReceivePack
	}
	return gitcmd.UploadPack
}
