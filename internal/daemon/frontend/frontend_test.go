package frontend

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"syscall"
	"testing"
	"time"

	"gotd/internal/daemon/ipc"
)

// TestAdmit checks the limits: per account, anonymous per address,
// and in all; a released slot is free again, once.
func TestAdmit(t *testing.T) {
	s := New(slog.Default(), ipc.ViaGit, nil)
	s.settings = &Settings{Frontend: ipc.Frontend{Default: 2, Total: 5, Names: []string{"anonymous"}, PerName: []uint32{1}}}
	close(s.ready)
	admit := func(account, remote string, want error) *Slot {
		t.Helper()
		sl, err := s.Admit(account, remote)
		if !errors.Is(err, want) {
			t.Fatalf("Admit(%q, %q) = %v, want %v", account, remote, err, want)
		}
		return sl
	}
	a1 := admit("alice", "10.0.0.1:1", nil)
	admit("alice", "10.0.0.2:1", nil)
	admit("alice", "10.0.0.3:1", ErrUserLimit)
	anon := admit("", "10.0.0.1:1", nil)
	admit("", "10.0.0.1:2", ErrUserLimit) // same address
	admit("", "[::1]:3", nil)             // another address
	admit("bob", "10.0.0.9:1", nil)
	admit("bob", "10.0.0.9:2", ErrBusy) // five in all
	a1.Release()
	a1.Release()
	admit("carol", "10.0.0.4:1", nil)
	admit("carol", "10.0.0.4:2", ErrBusy)
	anon.Release()
	if s.total != 4 || s.count["anonymous@10.0.0.1"] != 0 {
		t.Errorf("counts %d %v", s.total, s.count)
	}
}

// TestPending fills the front-end's pending places from one address
// (a burst is admitted whole while there is room): the next from it is
// closed at once, one from another address takes the place of its
// oldest, and a handshake frees a place (issue 18: 2,060 idle sockets
// from one address locked everyone out).
func TestPending(t *testing.T) {
	s := New(slog.Default(), ipc.ViaGit, nil)
	s.settings = &Settings{Frontend: ipc.Frontend{Total: 1024, PendingTotal: 4, PendingPerAddress: 3}}
	s.gate.SetLimits(4, 3)
	close(s.ready)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 16)
	go func() {
		gl := s.Listener(l)
		for {
			c, err := gl.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func(from string) net.Conn {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		c, err := d.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// closed tells whether the server closed c at once.
	closed := func(c net.Conn) bool {
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		_, err := c.Read(make([]byte, 1))
		return err == io.EOF || errors.Is(err, syscall.ECONNRESET)
	}
	next := func() net.Conn {
		t.Helper()
		select {
		case c := <-accepted:
			return c
		case <-time.After(5 * time.Second):
			t.Fatal("no connection accepted")
			return nil
		}
	}
	var held, clients []net.Conn
	for range 4 {
		clients = append(clients, dial("127.0.0.2"))
		held = append(held, next())
	}
	for i := range 3 {
		if c := dial("127.0.0.2"); !closed(c) {
			t.Fatalf("connection %d from the address holding every place: got open; want closed at once", 5+i)
		}
	}
	if c := dial("127.0.0.1"); closed(c) {
		t.Fatal("connection from another address: got closed; want accepted")
	}
	next()
	if !closed(clients[0]) {
		t.Error("the oldest connection of the address holding every place: got open; want closed to make room")
	}
	if total, of := s.gate.Pending("127.0.0.2"); total != 4 || of != 3 {
		t.Fatalf("pending: got %d in all, %d of 127.0.0.2; want 4, 3", total, of)
	}
	s.Handshaken(held[1])
	s.Handshaken(held[1]) // once only
	if c := dial("127.0.0.2"); closed(c) {
		t.Fatal("after a handshake: got closed; want accepted")
	}
	next()
	if total, of := s.gate.Pending("127.0.0.2"); total != 4 || of != 3 {
		t.Fatalf("pending after a handshake: got %d in all, %d of 127.0.0.2; want 4, 3", total, of)
	}
}

// TestAdmitClaim: unverified claims to an account count per address,
// so that claims from elsewhere (wrong passwords sent in its name)
// leave the account's places to its real clients; a verified claim
// takes one of those places (issue 19: 73 addresses sending wrong
// passwords for alice kept alice out with 503).
func TestAdmitClaim(t *testing.T) {
	s := New(slog.Default(), ipc.ViaHTTP, nil)
	s.settings = &Settings{Frontend: ipc.Frontend{Default: 2, Total: 100}}
	close(s.ready)
	var claims []*Slot
	for i := range 5 {
		sl, err := s.AdmitClaim("alice", fmt.Sprintf("10.0.1.%d:1", i))
		if err != nil {
			t.Fatalf("claim %d: %v", i, err)
		}
		claims = append(claims, sl)
	}
	if _, err := s.AdmitClaim("alice", "10.0.1.0:2"); err != nil {
		t.Fatalf("second claim from one address: %v", err)
	}
	if _, err := s.AdmitClaim("alice", "10.0.1.0:3"); !errors.Is(err, ErrUserLimit) {
		t.Errorf("third claim from one address: got %v; want %v", err, ErrUserLimit)
	}
	// The real alice, verified, still has both places.
	real1, _ := s.AdmitClaim("alice", "10.0.2.1:1")
	real2, _ := s.AdmitClaim("alice", "10.0.2.1:2")
	for _, sl := range []*Slot{real1, real2} {
		if err := sl.Become("alice"); err != nil {
			t.Fatalf("Become: %v", err)
		}
	}
	if err := claims[0].Become("alice"); !errors.Is(err, ErrUserLimit) {
		t.Errorf("third verified client of alice: got %v; want %v", err, ErrUserLimit)
	}
	claims[0].Release()
	real1.Release()
	if s.count["alice"] != 1 || s.count["claim:alice@10.0.1.0"] != 1 || s.total != 6 {
		t.Errorf("counts %d %v", s.total, s.count)
	}
}
