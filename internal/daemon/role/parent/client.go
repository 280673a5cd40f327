package parent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"gotd/internal/daemon/config"
	"gotd/internal/daemon/gitcmd"
	"gotd/internal/daemon/ipc"
	"gotd/internal/daemon/msg"
	"gotd/internal/protocol/receive"
)

// state is where a client is in its life.
type state int

const (
	// stateConnecting: listen has passed the connection, the streams
	// follow.
	stateConnecting state = iota
	// stateAuth: auth is deciding.
	stateAuth
	// stateServing: the session and repo processes run.
	stateServing
	// stateEnding: the outcome is known; waiting for processes to exit.
	stateEnding
)

func (s state) String() string {
	return [...]string{"connecting", "authenticating", "serving", "ending"}[s]
}

// client is one connection of gotsh, or one request of a front-end.
type client struct {
	id      uint32
	connect ipc.Connect
	conn    *msg.Conn
	in, out *os.File
	since   time.Time
	state   state
	write   bool
	repoCfg *config.Repository
	user    string

	auth, session, repo *child
	verifying           bool // auth is verifying the client's credentials
	quarantine          string
	quarantineHold      *os.File // tells gotd's next start the quarantine is in use
	// repoEnd is the repo process's end of its channel to the session
	// and repoStart its Start message, for a push's repo_write.
	repoEnd   *msg.Conn
	repoStart *ipc.Start

	end     *ipc.SessionEnd // the session's report
	refusal string          // told the client before any Git data
	reason  uint32          // of the refusal, ipc.Reason…
	failure string          // why the client's service failed, for gotsh
	told    bool            // the outcome was sent (Done)
	// stats is the session's account of its request, for the metrics.
	stats *ipc.SessionStats
	// identity is who the client is, as the push policy's rules
	// match it.
	identity config.Identity
	// deadline ends the processes that outlive the client's request
	// deadline; stopped when the client is done, so that the parent
	// keeps no timer, nor the client, for hours after it.
	deadline *time.Timer
	// rec is the record of the request, logged when it ends.
	rec request
}

// fromSource handles a new client's messages from listen (via
// ipc.ViaSocket) or a front-end.
func (d *daemon) fromSource(from *child, via uint32, raw msg.Msg) {
	switch raw.Type {
	case ipc.TypeConnect:
		var m ipc.Connect
		f, err := ipc.Check(raw, &m, true)
		if err != nil {
			d.log.Error("bad message", "child", from.role, "err", err)
			return
		}
		c := &client{id: m.Client, connect: m, conn: msg.FromFile(f), since: time.Now()}
		c.rec = newRequest(m.Client, &m, c.since)
		// A source names its own clients only, with ids of its own.
		switch {
		case m.Via != via || ipc.Via(m.Client) != via || (via != ipc.ViaSocket) != (m.UID == 0 && m.PID == 0):
			d.log.Error("client of another source", "child", from.role, "client", m.Client, "transport", viaNames[m.Via])
			c.conn.Close()
			return
		case m.Client == 0 || d.clients[m.Client] != nil:
			d.log.Error("reused client id", "child", from.role, "client", m.Client)
			c.conn.Close()
			return
		}
		d.clients[c.id] = c
	case ipc.TypeStream:
		var m ipc.Stream
		f, err := ipc.Check(raw, &m, true)
		if err != nil {
			d.log.Error("bad message", "child", from.role, "err", err)
			return
		}
		c := d.clients[m.Client]
		switch {
		case c == nil || c.state != stateConnecting || c.connect.Via != via:
			f.Close()
			d.log.Error("stream for no new client", "child", from.role, "client", m.Client)
		case !m.Output && c.in == nil:
			c.in = f
		case m.Output && c.in != nil && c.out == nil:
			c.out = f
			d.start(c)
		default:
			f.Close()
			d.fail(c, "internal server error")
			d.maybeDone(c)
		}
	case ipc.TypeControlConnect:
		if via != ipc.ViaSocket {
			closeFile(raw)
			d.log.Error("control connection from a front-end", "child", from.role)
			return
		}
		var m ipc.ControlConnect
		f, err := ipc.Check(raw, &m, true)
		if err != nil {
			d.log.Error("bad message from listen", "err", err)
			return
		}
		d.controlCommand(msg.FromFile(f), &m)
	default:
		closeFile(raw)
		d.log.Error("unexpected message", "child", from.role, "type", raw.Type)
	}
}

// start looks the repository up and starts auth, or decides itself
// for a front-end's client.
func (d *daemon) start(c *client) {
	h := &c.connect.Hello
	switch h.Service {
	case gitcmd.UploadPack:
		// A dumb HTTP read: from the HTTP front-end only.
		if c.connect.Mode == ipc.ModeDumb && c.connect.Via != ipc.ViaHTTP {
			d.refuse(c, ipc.ReasonBadRequest, "bad request", "dumb read not over HTTP")
			return
		}
	case gitcmd.UploadArchive:
		// git archive --remote: read access, as a fetch, over a whole
		// conversation (no HTTP front-end passes one on).
		if c.connect.Mode != ipc.ModeFull {
			d.refuse(c, ipc.ReasonBadRequest, gitcmd.ErrRefused.Error(), "upload-archive in a stateless mode")
			return
		}
		c.rec.mode = ipc.ModeArchive
	case gitcmd.ReceivePack:
		if c.connect.Mode == ipc.ModeDumb {
			d.refuse(c, ipc.ReasonBadRequest, "bad request", "dumb push")
			return
		}
		c.write = true
	case ipc.ServiceWeb:
	default:
		d.refuse(c, ipc.ReasonBadRequest, gitcmd.ErrRefused.Error(), "unknown service")
		return
	}
	if c.write && c.connect.Via == ipc.ViaGit {
		d.refuse(c, ipc.ReasonDenied, "permission denied", "push over git://")
		return
	}
	if d.claimed(c) {
		d.lookup(c)
	}
}

// lookup looks the repository up and starts auth, or decides itself
// for a front-end's client, whose identity is established.
func (d *daemon) lookup(c *client) {
	h := &c.connect.Hello
	if h.Service == ipc.ServiceWeb {
		d.web(c)
		return
	}
	log := d.log.With("client", c.id)
	// Past claimed, what a front-end's client claims is established:
	// only anonymous clients remain unproven.
	c.rec.unproven = c.connect.Via != ipc.ViaSocket && c.connect.Account == ""
	c.repoCfg = d.cfg.FindRepository(h.Repo)
	if c.repoCfg == nil {
		d.refuse(c, ipc.ReasonNoRepo, "no such repository", "no such repository")
		return
	}
	c.rec.repo = c.repoCfg.Name
	if c.connect.Via != ipc.ViaSocket {
		d.decide(c)
		return
	}
	auth, err := d.spawn(RoleAuth, c.id, nil)
	if err != nil {
		log.Error("cannot start auth", "err", err)
		d.refuse(c, ipc.ReasonInternal, "internal server error", err.Error())
		return
	}
	c.auth, c.state = auth, stateAuth
	req := &ipc.AuthRequest{UID: c.connect.UID, GID: c.connect.GID, Repo: c.repoCfg.Name,
		Groups: c.write && c.repoCfg.Push.NamesGroups()}
	for _, r := range c.repoCfg.Rules {
		req.Rules = append(req.Rules, ipc.Rule{Deny: r.Deny, Write: r.Write, Ident: r.Ident})
	}
	if err := ipc.Send(auth.ch, req, c.conn.File()); err != nil {
		log.Error("cannot ask auth", "err", err)
		d.refuse(c, ipc.ReasonInternal, "internal server error", err.Error())
		return
	}
	id := c.id
	time.AfterFunc(authTimeout, func() { d.events <- event{authTimeout: id} })
}

// authResult starts the session if the user may do what it asks.
func (d *daemon) authResult(c *client, raw msg.Msg) error {
	if c.state != stateAuth {
		return errors.New("auth answered twice")
	}
	var m ipc.AuthResult
	if _, err := ipc.Check(raw, &m, false); err != nil {
		return err
	}
	c.auth.kill() // its work is done
	if a := config.Access(m.Access); a < config.NoAccess || a > config.ReadWrite {
		return fmt.Errorf("auth answered access %d", m.Access)
	}
	id := config.Identity{User: m.User, UID: int(c.connect.UID), Groups: m.Groups}
	for _, gid := range m.GIDs {
		id.GIDs = append(id.GIDs, int(gid))
	}
	d.access(c, config.Access(m.Access), id)
	return nil
}

// access starts the session of c if user may do what it asks, or
// refuses it.
func (d *daemon) access(c *client, a config.Access, id config.Identity) {
	user := id.User
	c.user, c.identity = user, id
	c.rec.user = user
	log := d.log.With("client", c.id)
	switch {
	case a == config.NoAccess:
		// Not told apart from a repository that does not exist.
		d.refuse(c, ipc.ReasonNoRepo, "no such repository", "no rule permits the user")
		return
	case a == config.Denied:
		d.refuse(c, ipc.ReasonDenied, "permission denied", "denied by rule")
		return
	case a == config.Read && c.write:
		d.refuse(c, ipc.ReasonDenied, "permission denied: read-only access", "read-only user pushing")
		return
	case c.write && c.repoCfg.Mirror != nil:
		// Its references follow the upstream's alone.
		d.refuse(c, ipc.ReasonDenied, mirrorRefusal(c.repoCfg), "push to a pull mirror")
		return
	}
	log.Debug("access granted", "user", user, "transport", c.rec.transport, "repo", c.rec.repo, "service", service(c.write))
	if d.tooManyFailed(c) {
		return
	}
	if err := d.startSession(c); err != nil {
		log.Error("cannot start the session", "err", err)
		if receive.NoSpace(err) {
			d.fail(c, "no space left on the server")
		} else {
			d.fail(c, "internal server error")
		}
		d.maybeDone(c)
	}
}

// startSession starts the session process of c, and the repo process
// of a push, and gives the session the client's streams. A fetch has
// its session only, which sends the pack itself.
func (d *daemon) startSession(c *client) error {
	sessionRole, repoRole := RoleSessionRead, RoleRepoWrite
	start := &ipc.Start{
		Client:   c.id,
		Repo:     c.repoCfg.Name,
		Path:     c.repoCfg.Path,
		Protocol: c.connect.Protocol,
		User:     c.user,
		Timeout:  uint32(d.cfg.RequestTimeout / time.Second),
		Mode:     c.connect.Mode,
		Hidden:   c.repoCfg.Hidden,
		// Every session and repo process has the same budget.
		MemoryLimit: uint64(d.cfg.MemoryLimit),
	}
	d.pace(c, start)
	if c.connect.Hello.Service == gitcmd.UploadArchive {
		start.Mode = ipc.ModeArchive
	}
	// The advertisement of smart HTTP needs no pack: no repo process,
	// no quarantine.
	advertise := c.connect.Mode == ipc.ModeAdvertise
	if c.write {
		sessionRole = RoleSessionWrite
		p := &c.repoCfg.Protect
		start.Branches, start.BranchNamespaces, start.TagNamespaces = p.Branches, p.BranchNamespaces, p.TagNamespaces
		n := &c.repoCfg.Notify
		start.Notify, start.NotifyBranches, start.NotifyNamespaces = n.HasTargets(), n.Branches, n.Namespaces
		push := &c.repoCfg.Push
		start.Push = push.For(c.identity)
		start.MaxPackSize, start.MaxObjects, start.MinFree = uint64(push.MaxPackSize), uint64(push.MaxObjects), uint64(push.MinFree)
		start.MaxObjectSize = uint64(push.MaxObjectSize)
	}
	if c.write && !advertise {
		q, hold, err := receive.NewQuarantine(filepath.Join(c.repoCfg.Path, "objects"))
		if err != nil {
			return fmt.Errorf("parent: quarantine: %w", err)
		}
		c.quarantine, c.quarantineHold, start.Quarantine = q, hold, q
	}
	// The session ⇄ repo channel, a push's only: a fetch's session
	// has no descriptor there.
	var peer *os.File
	var rp *msg.Conn
	closeRepoEnd := func() {
		if rp != nil {
			rp.Close()
		}
	}
	if c.write {
		sp, mine, err := msg.Pair()
		if err != nil {
			return fmt.Errorf("parent: %w", err)
		}
		defer sp.Close()
		peer, rp = sp.File(), mine
	}
	var err error
	if c.write {
		c.session, err = d.spawn(sessionRole, c.id, []*os.File{peer, c.in, c.out})
	} else {
		c.session, err = d.sessionRead(c)
	}
	if err != nil {
		closeRepoEnd()
		return err
	}
	c.state = stateServing
	c.in.Close()
	c.out.Close()
	c.in, c.out = nil, nil
	if err := ipc.Send(c.session.ch, start, nil); err != nil {
		closeRepoEnd()
		return fmt.Errorf("parent: %w", err)
	}
	if !c.write {
		d.startSpare()
	}
	if !c.write || advertise {
		closeRepoEnd()
		return nil
	}
	c.repoEnd, c.repoStart = rp, start
	return d.startRepo(c, repoRole)
}

// overdueGrace is how long the parent lets a client's processes run
// past its deadline, by which they stop by themselves, before it ends
// them.
const overdueGrace = 10 * time.Second

// pace gives start the configuration's pace, with a deadline counted
// from when c connected, and has the processes of c ended if they
// outlive it: a process busy with something else than the client's
// stream cannot stretch the request either.
func (d *daemon) pace(c *client, start *ipc.Start) {
	p := d.cfg.Pace
	deadline := c.since.Add(p.RequestDeadline)
	start.Deadline = deadline.UnixNano()
	start.MinRate, start.RateInterval = uint64(p.MinRate), uint32(p.RateInterval/time.Second)
	c.deadline = time.AfterFunc(time.Until(deadline)+overdueGrace, func() { d.events <- event{overdue: c} })
}

// overdue ends the processes of c, if it is still served.
func (d *daemon) overdue(c *client) {
	if d.clients[c.id] != c || c.state != stateServing {
		return
	}
	d.log.Warn("request deadline passed: ending the client's processes", "client", c.id, "user", c.rec.user,
		"transport", c.rec.transport, "remote", c.rec.remote, "repo", c.rec.repo)
	d.fail(c, "request deadline passed")
	d.maybeDone(c)
}

// startRepo starts the repo process of c on the channel kept for it.
func (d *daemon) startRepo(c *client, role string) error {
	if c.repoEnd == nil || c.repo != nil {
		return errors.New("repo process asked for twice")
	}
	defer func() {
		c.repoEnd.Close()
		c.repoEnd = nil
	}()
	var err error
	if c.repo, err = d.spawn(role, c.id, []*os.File{c.repoEnd.File()}); err != nil {
		return err
	}
	if err := ipc.Send(c.repo.ch, c.repoStart, nil); err != nil {
		return fmt.Errorf("parent: %w", err)
	}
	return nil
}

// sessionEnd records the session's outcome.
func (d *daemon) sessionEnd(c *client, raw msg.Msg) error {
	if c.state != stateServing || c.end != nil {
		return errors.New("session ended twice")
	}
	var m ipc.SessionEnd
	if _, err := ipc.Check(raw, &m, false); err != nil {
		return err
	}
	c.end = &m
	c.state = stateEnding
	d.noteFailed(c, &m)
	d.maybeDone(c)
	return nil
}

// refuse ends c before any Git data with a message for the client;
// why is for the log, in the request's record.
func (d *daemon) refuse(c *client, reason uint32, clientMsg, why string) {
	if c.refusal == "" {
		c.refusal, c.reason = clientMsg, reason
		c.rec.reason = why
	}
	d.fail(c, "")
	d.maybeDone(c)
}

// fail stops every process of c.
func (d *daemon) fail(c *client, why string) {
	if c.failure == "" {
		c.failure = why
	}
	c.state = stateEnding
	c.auth.kill()
	c.session.kill()
	c.repo.kill()
}

// maybeDone finishes c once all its processes have exited: it tells
// gotsh or the front-end the outcome, removes the quarantine and frees
// the client's place in listen's count (a front-end counts its own).
// A session that reported its end may go on describing the push for
// notifications: the outcome is told as soon as the others are gone.
func (d *daemon) maybeDone(c *client) {
	if c.state != stateEnding {
		return
	}
	gone := func(ch *child) bool { return ch == nil || ch.exited }
	if !c.told && gone(c.auth) && gone(c.repo) && (c.end != nil || gone(c.session)) {
		c.told = true
		d.tell(c)
	}
	if !gone(c.auth) || !gone(c.session) || !gone(c.repo) {
		return
	}
	if c.repoEnd != nil {
		c.repoEnd.Close()
		c.repoEnd = nil
	}
	for _, f := range []*os.File{c.in, c.out} {
		if f != nil {
			f.Close()
		}
	}
	if c.quarantine != "" {
		if err := os.RemoveAll(c.quarantine); err != nil {
			d.log.Error("cannot remove a quarantine directory", "client", c.id, "err", err)
		}
		c.quarantineHold.Close()
	}
	delete(d.clients, c.id)
	if c.deadline != nil {
		c.deadline.Stop()
	}
	if c.connect.Via == ipc.ViaSocket && !d.listen.exited {
		ipc.Send(d.listen.ch, &ipc.Disconnect{Client: c.id}, nil)
	}
	// A push that moved references added a pack or loose objects:
	// perhaps the one that calls for upkeep.
	if c.write && c.end != nil && c.end.Updated > 0 && c.repoCfg != nil {
		d.afterPush(c.repoCfg.Name)
		d.mirrorPushed(c.repoCfg.Name, c.end)
	}
}

// tell sends c's outcome to gotsh or its front-end, which ends the
// client's connection.
func (d *daemon) tell(c *client) {
	done := &ipc.Done{Status: ipc.StatusOK}
	switch {
	case c.refusal != "":
		done.Status, done.Reason, done.Message = ipc.StatusRefused, c.reason, c.refusal
	case c.failure != "" || c.end == nil || c.end.Status != ipc.StatusOK:
		done.Status, done.Message = ipc.StatusFailed, c.failure
	}
	ipc.Send(c.conn, done, nil) // gotsh may be gone
	c.conn.Close()
	d.countDone(c, done)
	d.requestDone(c.ended())
}
