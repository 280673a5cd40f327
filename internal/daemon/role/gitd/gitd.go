// Package gitd is gotd's git:// front-end: anonymous, read-only. It
// reads a connection's one request packet ("git-upload-pack /repo\0
// host=…\0\0version=2\0"), refuses anything but a fetch or an archive
// (git-upload-archive), and hands the connection itself to the parent
// as the client's stream: the session
// and repo processes read and write the socket directly, and nothing
// of the Git conversation passes through this process.
package gitd

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"gotd/internal/daemon/frontend"
	"gotd/internal/daemon/gitcmd"
	"gotd/internal/daemon/ipc"
	"gotd/internal/protocol/pktline"
	"gotd/internal/protocol/wire"
)

// Main serves the listeners until the parent's channel closes.
func Main(ctx context.Context, log *slog.Logger, s *frontend.Server, ls []net.Listener) error {
	return s.Serve(ls, func(c net.Conn) { serve(log, s, c) })
}

// serve reads one request and passes the connection on. Refusals
// are logged in summary: a flood of them is not a line each.
func serve(log *slog.Logger, s *frontend.Server, c net.Conn) {
	defer c.Close()
	remote := c.RemoteAddr().String()
	log = log.With("remote", remote)
	st := s.Settings()
	c.SetDeadline(time.Now().Add(st.HandshakeTimeout()))
	req, err := readRequest(c)
	if err != nil {
		s.Failed("bad request", remote, "err", err)
		writeErr(c, "malformed git:// request")
		return
	}
	s.Handshaken(c)
	if req.Service != gitcmd.UploadPack && req.Service != gitcmd.UploadArchive {
		s.Failed("push refused", remote, "service", req.Service)
		writeErr(c, "git:// is read-only: push over ssh or https")
		return
	}
	slot, err := s.Admit("", remote)
	if err != nil {
		s.Refused("connection refused: "+err.Error(), remote)
		writeErr(c, err.Error())
		return
	}
	defer slot.Release()
	c.SetDeadline(time.Time{})
	f, err := c.(interface{ File() (*os.File, error) }).File()
	if err != nil {
		log.Error("cannot pass the connection on", "err", err)
		writeErr(c, "internal server error")
		return
	}
	client, err := s.Handoff(frontend.Request{
		Service:  req.Service,
		Repo:     req.Path,
		Protocol: strings.Join(req.Extra, ":"),
		Account:  claimedAccount(),
		Remote:   c.RemoteAddr().String(),
		Mode:     ipc.ModeFull,
	}, f, f)
	f.Close()
	if err != nil {
		log.Error("cannot pass the connection on", "err", err)
		writeErr(c, "internal server error")
		return
	}
	if done := client.Wait(); done.Status == ipc.StatusRefused {
		writeErr(c, done.Message)
	}
}

// readRequest reads and parses the request packet.
func readRequest(c net.Conn) (wire.DaemonRequest, error) {
	kind, payload, err := pktline.NewReader(c).Read()
	if err != nil {
		return wire.DaemonRequest{}, err
	}
	if kind != pktline.Data {
		return wire.DaemonRequest{}, wire.ErrBadDaemonRequest
	}
	return wire.ParseDaemonRequest(payload)
}

// writeErr tells the client why, as an ERR packet, which Git prints as
// "remote error", and lingers before the connection is closed.
func writeErr(c net.Conn, why string) {
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if pktline.NewWriter(c).WriteString("ERR "+why+"\n") == nil {
		linger(c)
	}
}

// Bounds of linger: how long and how much of a refused client's input
// it reads, and how many connections linger at once (past that, a
// refused connection is closed at once, as before).
const (
	lingerTime  = 500 * time.Millisecond
	lingerBytes = 64 << 10
	maxLinger   = 64
)

var lingering atomic.Int32

// linger ends the sending side of c after a refusal and reads what the
// client sent past its request, discarding it, until the client closes
// its side, lingerBytes are read or lingerTime passes: a socket closed
// with unread input sends a reset, which ends the client's stream with
// an error instead of its end, and can make the client's system drop
// the ERR packet before the client has read it.
func linger(c net.Conn) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return
	}
	defer lingering.Add(-1)
	if lingering.Add(1) > maxLinger {
		return
	}
	if tc.CloseWrite() != nil {
		return
	}
	tc.SetReadDeadline(time.Now().Add(lingerTime))
	io.CopyN(io.Discard, tc, lingerBytes)
}
