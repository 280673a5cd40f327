// Package listen is gotd's listen process: it accepts the connections
// of gotsh and gotctl on the daemon's unix socket, learns who is
// calling from the kernel (SO_PEERCRED), reads the caller's one typed
// request, enforces the connection limits, and hands the connection
// with what it learned to the parent. It has no filesystem access and
// creates no socket. Callers that have not sent their request yet are
// capped per uid and in all, and wait in the runtime's poller: a
// flood of idle connections costs a goroutine each, not a thread.
package listen

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"gotd/internal/daemon/admit"
	"gotd/internal/daemon/ipc"
	"gotd/internal/daemon/msg"
)

// helloTimeout bounds the wait for a caller's request: gotsh and gotctl
// send it at once.
const helloTimeout = 10 * time.Second

// writeTimeout bounds the sending of a refusal to a caller.
const writeTimeout = 5 * time.Second

// Main serves until the parent's channel closes. l is the daemon's
// listening socket, sandboxing is the caller's (the role switch).
func Main(ctx context.Context, log *slog.Logger, parent *msg.Conn, l *net.UnixListener) error {
	s := &server{log: log, parent: parent, perUID: map[uint32]int{}, clients: map[uint32]uint32{},
		summary: &admit.Summary{Log: log, Level: slog.LevelWarn}, quiet: &admit.Summary{Log: log, Level: slog.LevelInfo}}
	// The limits come first, before any connection is accepted.
	if _, err := ipc.Recv(parent, &s.limits, false); err != nil {
		return fmt.Errorf("listen: limits: %w", err)
	}
	s.pending.SetLimits(int(s.limits.PendingTotal), int(s.limits.PendingPerUser))
	go s.accept(l)
	for {
		raw, err := parent.Recv()
		if err != nil {
			return nil // the parent is gone: so is the daemon
		}
		if err := s.fromParent(raw, l); err != nil {
			return err
		}
	}
}

type server struct {
	log    *slog.Logger
	parent *msg.Conn
	// pending counts the connections waiting for their request, per
	// uid and in all.
	pending admit.Gate
	// summary logs refusals, quiet callers that give up or are slow;
	// neither logs a line per connection.
	summary, quiet *admit.Summary

	mu      sync.Mutex
	limits  ipc.Limits
	perUID  map[uint32]int
	clients map[uint32]uint32 // client id -> uid
	sendMu  sync.Mutex        // a client's messages to the parent stay together
}

// fromParent handles one message of the parent.
func (s *server) fromParent(raw msg.Msg, l *net.UnixListener) error {
	switch raw.Type {
	case ipc.TypeLimits:
		var lim ipc.Limits
		if _, err := ipc.Check(raw, &lim, false); err != nil {
			return fmt.Errorf("listen: %w", err)
		}
		s.mu.Lock()
		s.limits = lim
		s.mu.Unlock()
		s.pending.SetLimits(int(lim.PendingTotal), int(lim.PendingPerUser))
	case ipc.TypeHeld:
		// Started again while clients of the socket are connected:
		// they count as if this process had admitted them.
		var h ipc.Held
		if _, err := ipc.Check(raw, &h, false); err != nil {
			return fmt.Errorf("listen: %w", err)
		}
		s.mu.Lock()
		if _, ok := s.clients[h.Client]; !ok {
			s.clients[h.Client] = h.UID
			s.perUID[h.UID]++
		}
		s.mu.Unlock()
	case ipc.TypeDisconnect:
		var d ipc.Disconnect
		if _, err := ipc.Check(raw, &d, false); err != nil {
			return fmt.Errorf("listen: %w", err)
		}
		s.mu.Lock()
		if uid, ok := s.clients[d.Client]; ok {
			delete(s.clients, d.Client)
			if s.perUID[uid]--; s.perUID[uid] <= 0 {
				delete(s.perUID, uid)
			}
		}
		s.mu.Unlock()
	case ipc.TypeHalt:
		if _, err := ipc.Check(raw, &ipc.Halt{}, false); err != nil {
			return fmt.Errorf("listen: %w", err)
		}
		s.log.Info("no longer accepting connections")
		l.Close()
	default:
		if raw.File != nil {
			raw.File.Close()
		}
		return fmt.Errorf("listen: unexpected message %d from the parent", raw.Type)
	}
	return nil
}

// accept accepts connections until the listener is closed. A caller
// is counted as pending under its uid from here until its request has
// arrived; over the caps its connection is closed at once. Nothing here
// or in serve blocks a thread: the waits are in the runtime's poller,
// so that idle callers cost a goroutine each and no more.
func (s *server) accept(l *net.UnixListener) {
	for {
		uc, ok := admit.Accept(l.AcceptUnix, s.summary)
		if !ok {
			return
		}
		c, err := msg.FromUnixConn(uc)
		if err != nil {
			s.summary.Add("accept failed", err.Error())
			uc.Close()
			continue
		}
		uid, gid, pid, err := c.PeerCred()
		if err != nil {
			s.summary.Add("no peer credentials", err.Error())
			c.Close()
			continue
		}
		release, why, evicted := s.pending.Enter(strconv.FormatUint(uint64(uid), 10), func() { c.Close() })
		if evicted != "" {
			s.summary.Add("connection closed: "+admit.OverKey, "uid "+evicted)
		}
		if why != "" {
			s.summary.Add("connection refused: "+why, "uid "+strconv.FormatUint(uint64(uid), 10))
			c.Close()
			continue
		}
		go s.serve(c, uc, peer{uid, gid, pid}, release)
	}
}

// peer is who called, as the kernel says (SO_PEERCRED).
type peer struct{ uid, gid, pid uint32 }

// serve reads one caller's request and passes the connection on, or
// refuses it. release ends the caller's pending count.
func (s *server) serve(c *msg.Conn, uc *net.UnixConn, p peer, release func()) {
	defer c.Close()
	defer release()
	source := "uid " + strconv.FormatUint(uint64(p.uid), 10)
	log := s.log.With("uid", p.uid, "pid", p.pid)
	uc.SetReadDeadline(time.Now().Add(helloTimeout))
	uc.SetWriteDeadline(time.Now().Add(helloTimeout + writeTimeout))
	raw, err := c.Recv()
	if err != nil {
		s.quiet.Add("no request", source, "err", err)
		return
	}
	if raw.Type == ipc.TypeControl {
		release()
		s.control(c, uc, raw, p.uid, log)
		return
	}
	var hello ipc.Hello
	if _, err := ipc.Check(raw, &hello, false); err != nil {
		s.summary.Add("bad request", source, "err", err)
		return
	}
	var in, out ipc.Stream
	inFile, err := ipc.Recv(c, &in, true)
	if inFile != nil {
		defer inFile.Close()
	}
	if err != nil || in.Output {
		s.summary.Add("bad request: no input stream", source, "err", err)
		return
	}
	outFile, err := ipc.Recv(c, &out, true)
	if outFile != nil {
		defer outFile.Close()
	}
	if err != nil || !out.Output {
		s.summary.Add("bad request: no output stream", source, "err", err)
		return
	}
	release()
	uc.SetReadDeadline(time.Time{})

	id, why := s.admit(p.uid)
	if why != "" {
		s.summary.Add("connection refused: "+why, source)
		uc.SetWriteDeadline(time.Now().Add(writeTimeout))
		ipc.Send(c, &ipc.Done{Status: ipc.StatusRefused, Reason: ipc.ReasonBusy, Message: why}, nil)
		return
	}
	uc.SetWriteDeadline(time.Time{})
	// A duplicate of the connection, for the parent: it answers the
	// caller on it when the client is done.
	f, err := uc.File()
	if err != nil {
		log.Error("cannot pass the connection on", "err", err)
		s.disconnect(id)
		return
	}
	defer f.Close()
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	// The address gotsh says its OpenSSH client has is logged as the
	// client's, as a front-end's is (Hello checked its form).
	conn := &ipc.Connect{Client: id, UID: p.uid, GID: p.gid, PID: p.pid, Remote: hello.SSHRemote, Hello: hello}
	err = ipc.Send(s.parent, conn, f)
	if err == nil {
		err = ipc.Send(s.parent, &ipc.Stream{Client: id}, inFile)
	}
	if err == nil {
		err = ipc.Send(s.parent, &ipc.Stream{Client: id, Output: true}, outFile)
	}
	if err != nil {
		log.Error("cannot pass the connection on", "err", err)
	}
}

// disconnect forgets a client the parent never heard of.
func (s *server) disconnect(id uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if uid, ok := s.clients[id]; ok {
		delete(s.clients, id)
		if s.perUID[uid]--; s.perUID[uid] <= 0 {
			delete(s.perUID, uid)
		}
	}
}

// admit counts a connection of uid against the limits; it returns the
// new client's id, or why it is refused.
func (s *server) admit(uid uint32) (uint32, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	limit := s.limits.Default
	if i := slices.Index(s.limits.UIDs, uid); i >= 0 {
		limit = s.limits.PerUID[i]
	}
	switch {
	case uint32(len(s.clients)) >= s.limits.Total:
		return 0, "too many connections to the server, try again later"
	case uint32(s.perUID[uid]) >= limit:
		return 0, "too many connections from this user"
	}
	id := ipc.ClientID(ipc.ViaSocket, s.hasClient)
	s.clients[id] = uid
	s.perUID[uid]++
	return id, ""
}

func (s *server) hasClient(id uint32) bool { _, ok := s.clients[id]; return ok }

// control passes a gotctl connection on if its user may control the
// daemon: root (and the user who started gotd, when not root), or a
// member of the control group by the kernel's word on the caller's
// groups. Running as gotd's user is not enough: that account may be
// shared with other services (issue 19).
func (s *server) control(c *msg.Conn, uc *net.UnixConn, raw msg.Msg, uid uint32, log *slog.Logger) {
	var ctl ipc.Control
	if _, err := ipc.Check(raw, &ctl, false); err != nil {
		s.summary.Add("bad control request", "uid "+strconv.FormatUint(uint64(uid), 10), "err", err)
		return
	}
	s.mu.Lock()
	ok := slices.Contains(s.limits.Control, uid)
	groups := s.limits.ControlGIDs
	s.mu.Unlock()
	if !ok && len(groups) > 0 {
		_, gid, _, err := c.PeerCred()
		var gids []uint32
		if err == nil {
			gids, err = c.PeerGroups()
		}
		if err != nil {
			log.Error("control request: the caller's groups", "err", err)
		}
		ok = err == nil && (slices.Contains(groups, gid) || slices.ContainsFunc(gids, func(g uint32) bool { return slices.Contains(groups, g) }))
	}
	if !ok {
		s.summary.Add("control request refused", "uid "+strconv.FormatUint(uint64(uid), 10), "command", ctl.Command)
		uc.SetWriteDeadline(time.Now().Add(writeTimeout))
		ipc.Send(c, &ipc.Done{Status: ipc.StatusRefused, Reason: ipc.ReasonDenied, Message: "permission denied"}, nil)
		return
	}
	uc.SetDeadline(time.Time{})
	f, err := uc.File()
	if err != nil {
		log.Error("cannot pass the control connection on", "err", err)
		return
	}
	defer f.Close()
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if err := ipc.Send(s.parent, &ipc.ControlConnect{UID: uid, Control: ctl}, f); err != nil {
		log.Error("cannot pass the control connection on", "err", err)
	}
}

// Listener makes a listener of the inherited socket f.
func Listener(f *os.File) (*net.UnixListener, error) {
	l, err := net.FileListener(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	ul, ok := l.(*net.UnixListener)
	if !ok {
		l.Close()
		return nil, errors.New("listen: not a unix socket")
	}
	return ul, nil
}
