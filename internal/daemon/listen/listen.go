// Package listen is gotd's listen process: it accepts the connections
// of gotsh and gotctl on the daemon's unix socket, learns who is
// calling from the kernel (SO_PEERCRED), reads the caller's one typed
// request, enforces the connection limits, and hands the connection
// with what it learned to the parent. It has no filesystem access and
// creates no socket.
package listen

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"gotd/internal/daemon/ipc"
	"gotd/internal/daemon/msg"
)

// helloTimeout bounds the wait for a caller's request: gotsh and gotctl
// send it at once.
const helloTimeout = 10 * time.Second

// Main serves until the parent's channel closes. l is the daemon's
// listening socket, sandboxing is the caller's (the role switch).
func Main(ctx context.Context, log *slog.Logger, parent *msg.Conn, l *net.UnixListener) error {
	s := &server{log: log, parent: parent, perUID: map[uint32]int{}, clients: map[uint32]uint32{}}
	// The limits come first, before any connection is accepted.
	if _, err := ipc.Recv(parent, &s.limits, false); err != nil {
		return fmt.Errorf("listen: limits: %w", err)
	}
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

// accept accepts connections until the listener is closed.
func (s *server) accept(l *net.UnixListener) {
	for {
		c, err := l.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Error("accept", "err", err)
			time.Sleep(100 * time.Millisecond) // out of descriptors: let some close
			continue
		}
		f, err := c.File() // a blocking duplicate, for msg
		c.Close()
		if err != nil {
			s.log.Error("accept", "err", err)
			continue
		}
		go s.serve(msg.FromFile(f))
	}
}

// serve reads one caller's request and passes the connection on, or
// refuses it.
func (s *server) serve(c *msg.Conn) {
	defer c.Close()
	uid, gid, pid, err := c.PeerCred()
	if err != nil {
		s.log.Error("peer credentials", "err", err)
		return
	}
	log := s.log.With("uid", uid, "pid", pid)
	fd := int(c.File().Fd())
	tv := unix.NsecToTimeval(helloTimeout.Nanoseconds())
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	raw, err := c.Recv()
	if err != nil {
		log.Info("no request", "err", err)
		return
	}
	if raw.Type == ipc.TypeControl {
		s.control(c, raw, uid, log)
		return
	}
	var hello ipc.Hello
	if _, err := ipc.Check(raw, &hello, false); err != nil {
		log.Warn("bad request", "err", err)
		return
	}
	var in, out ipc.Stream
	inFile, err := ipc.Recv(c, &in, true)
	if err != nil || in.Output {
		log.Warn("bad request: no input stream", "err", err)
		return
	}
	defer inFile.Close()
	outFile, err := ipc.Recv(c, &out, true)
	if err != nil || !out.Output {
		log.Warn("bad request: no output stream", "err", err)
		return
	}
	defer outFile.Close()
	tv = unix.Timeval{}
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)

	id, why := s.admit(uid)
	if why != "" {
		log.Warn("connection refused", "reason", why)
		ipc.Send(c, &ipc.Done{Status: ipc.StatusRefused, Reason: ipc.ReasonBusy, Message: why}, nil)
		return
	}
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	conn := &ipc.Connect{Client: id, UID: uid, GID: gid, PID: pid, Hello: hello}
	err = ipc.Send(s.parent, conn, c.File())
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
func (s *server) control(c *msg.Conn, raw msg.Msg, uid uint32, log *slog.Logger) {
	var ctl ipc.Control
	if _, err := ipc.Check(raw, &ctl, false); err != nil {
		log.Warn("bad control request", "err", err)
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
		log.Warn("control request refused", "command", ctl.Command)
		ipc.Send(c, &ipc.Done{Status: ipc.StatusRefused, Reason: ipc.ReasonDenied, Message: "permission denied"}, nil)
		return
	}
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if err := ipc.Send(s.parent, &ipc.ControlConnect{UID: uid, Control: ctl}, c.File()); err != nil {
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
