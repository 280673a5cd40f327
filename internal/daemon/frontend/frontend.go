// Package frontend is what gotd's network front-ends (sshd, gitd,
// httpd) share: the settings the parent sends them, the connection
// limits they enforce (pending connections per remote address from
// accept on, clients per identity once known), and the hand-off of an
// authenticated client to the parent, which then treats it as listen's
// clients: a Connect message with the identity the front-end
// established, and the client's two streams as descriptors. The parent
// answers on a channel of the client's own with one Done message when
// the client's processes are gone.
package frontend

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"gotd/internal/daemon/admit"
	"gotd/internal/daemon/ipc"
	"gotd/internal/daemon/msg"
)

// Settings are the configuration a front-end works with, replaced as a
// whole on a reload.
type Settings struct {
	ipc.Frontend
	Accounts map[string]*ipc.Account
}

// HandshakeTimeout and RequestTimeout are the settings' timeouts.
func (s *Settings) HandshakeTimeout() time.Duration {
	return time.Duration(s.Frontend.HandshakeTimeout) * time.Second
}
func (s *Settings) RequestTimeout() time.Duration {
	return time.Duration(s.Frontend.RequestTimeout) * time.Second
}

// Server is a front-end's link to the parent.
type Server struct {
	Log *slog.Logger
	Via uint32
	// Refusals (warnings: connections refused over a limit) and
	// Failures (information: bad requests, failed handshakes) are
	// logged in summary: a flood is a line per interval and kind, not
	// a line per connection.
	Refusals, Failures *admit.Summary

	// gate counts the connections accepted and not yet through their
	// handshake (pending), per remote address and in all; waiting
	// holds their release functions.
	gate    admit.Gate
	waiting sync.Map // net.Conn -> func()

	parent *msg.Conn
	sendMu sync.Mutex // a client's three messages stay together

	mu          sync.Mutex
	settings    *Settings
	pending     *Settings
	ready       chan struct{} // closed when the first settings are complete
	credentials []ipc.Credential
	count       map[string]int // connections by limit key
	total       int
	ids         map[uint32]bool
	halted      bool
	onHalt      func()
	// finished, closed by Finish, ends Run.
	finished   chan struct{}
	finishOnce sync.Once
}

// New returns the front-end's link on the parent's channel.
func New(log *slog.Logger, via uint32, parent *msg.Conn) *Server {
	return &Server{Log: log, Via: via, parent: parent, ready: make(chan struct{}), finished: make(chan struct{}),
		count: map[string]int{}, ids: map[uint32]bool{},
		Refusals: &admit.Summary{Log: log, Level: slog.LevelWarn},
		Failures: &admit.Summary{Log: log, Level: slog.LevelInfo}}
}

// Start reads the parent's messages until the first settings are
// complete, and returns the credentials sent before them. Run reads the
// rest.
func (s *Server) Start() ([]ipc.Credential, error) {
	for {
		raw, err := s.parent.Recv()
		if err != nil {
			return nil, fmt.Errorf("frontend: settings: %w", err)
		}
		if err := s.fromParent(raw); err != nil {
			return nil, err
		}
		select {
		case <-s.ready:
			return s.credentials, nil
		default:
		}
	}
}

// Run handles the parent's messages (new settings after a reload, Halt,
// which calls onHalt, which must close the listeners before it returns)
// until its channel closes or Finish is called.
func (s *Server) Run(onHalt func()) error {
	s.mu.Lock()
	s.onHalt = onHalt
	s.mu.Unlock()
	errc := make(chan error, 1)
	go func() {
		for {
			raw, err := s.parent.Recv()
			if err != nil {
				errc <- nil // the parent is gone: so is the daemon
				return
			}
			if err := s.fromParent(raw); err != nil {
				errc <- err
				return
			}
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-s.finished:
		return nil
	}
}

// Finish ends Run: the front-end has halted and its last connection is
// done, so its process exits. A front-end replaced at a reload ends so
// (its listeners closed at Halt, its clients served to their end).
func (s *Server) Finish() {
	s.finishOnce.Do(func() {
		s.Log.Info("halted and every connection is done: exiting")
		close(s.finished)
	})
}

func (s *Server) fromParent(raw msg.Msg) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch raw.Type {
	case ipc.TypeCredential:
		var m ipc.Credential
		if _, err := ipc.Check(raw, &m, false); err != nil {
			return fmt.Errorf("frontend: %w", err)
		}
		s.credentials = append(s.credentials, m)
	case ipc.TypeFrontend:
		var m ipc.Frontend
		if _, err := ipc.Check(raw, &m, false); err != nil {
			return fmt.Errorf("frontend: %w", err)
		}
		s.pending = &Settings{Frontend: m, Accounts: map[string]*ipc.Account{}}
	case ipc.TypeAccount:
		var m ipc.Account
		if _, err := ipc.Check(raw, &m, false); err != nil {
			return fmt.Errorf("frontend: %w", err)
		}
		if s.pending == nil {
			return errors.New("frontend: account before settings")
		}
		s.pending.Accounts[m.Name] = &m
	case ipc.TypeAccountsEnd:
		if _, err := ipc.Check(raw, &ipc.AccountsEnd{}, false); err != nil {
			return fmt.Errorf("frontend: %w", err)
		}
		if s.pending == nil {
			return errors.New("frontend: settings end before settings")
		}
		first := s.settings == nil
		s.settings, s.pending = s.pending, nil
		s.gate.SetLimits(int(s.settings.PendingTotal), int(s.settings.PendingPerAddress))
		if first {
			close(s.ready)
		}
	case ipc.TypeHalt:
		if _, err := ipc.Check(raw, &ipc.Halt{}, false); err != nil {
			return fmt.Errorf("frontend: %w", err)
		}
		if !s.halted && s.onHalt != nil {
			s.halted = true
			s.Log.Info("no longer accepting connections")
			halt := s.onHalt
			go func() {
				// onHalt closes the listeners before it returns: the
				// parent then knows that the front-end started in
				// this one's place accepts every new connection.
				halt()
				s.sendMu.Lock()
				defer s.sendMu.Unlock()
				ipc.Send(s.parent, &ipc.Halt{}, nil)
			}()
		}
	default:
		if raw.File != nil {
			raw.File.Close()
		}
		return fmt.Errorf("frontend: unexpected message %d from the parent", raw.Type)
	}
	return nil
}

// Settings returns the current settings.
func (s *Server) Settings() *Settings {
	<-s.ready
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.settings
}

// Slot is a connection's place in the limits; Release gives it back.
type Slot struct {
	s        *Server
	key      string
	released sync.Once
}

// Release frees the slot.
func (sl *Slot) Release() {
	sl.released.Do(func() {
		s := sl.s
		s.mu.Lock()
		defer s.mu.Unlock()
		s.total--
		if s.count[sl.key]--; s.count[sl.key] <= 0 {
			delete(s.count, sl.key)
		}
	})
}

// ErrBusy refuses a connection over a limit.
var (
	ErrBusy      = errors.New("too many connections to the server, try again later")
	ErrUserLimit = errors.New("too many connections from this user")
)

// Admit counts a connection of account ("" for anonymous, which is
// counted per remote address, "host:port") against the limits.
func (s *Server) Admit(account, remote string) (*Slot, error) {
	st := s.Settings()
	name, key := account, account
	if account == "" {
		name, key = "anonymous", "anonymous@"+host(remote)
	}
	return s.admit(st.limit(name), key)
}

// AdmitClaim counts a connection that claims account, not yet
// verified, against that account's limit for its remote address alone:
// wrong passwords sent in a name from elsewhere cannot use up the
// places of the account's real clients (issue 19). Once the parent
// has verified the claim, Slot.Become counts it as the account's.
func (s *Server) AdmitClaim(account, remote string) (*Slot, error) {
	st := s.Settings()
	return s.admit(st.limit(account), "claim:"+account+"@"+host(remote))
}

// admit takes a place under key, whose limit is limit.
func (s *Server) admit(limit uint32, key string) (*Slot, error) {
	st := s.Settings()
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case uint32(s.total) >= st.Total:
		return nil, ErrBusy
	case uint32(s.count[key]) >= limit:
		return nil, ErrUserLimit
	}
	s.total++
	s.count[key]++
	return &Slot{s: s, key: key}, nil
}

// limit is the number of connections name may have at once.
func (st *Settings) limit(name string) uint32 {
	if i := slices.Index(st.Names, name); i >= 0 {
		return st.PerName[i]
	}
	return st.Default
}

// Become moves a slot taken by AdmitClaim to account, once the parent
// has verified the claim. Over the account's limit it returns
// ErrUserLimit and the slot stays as it was.
func (sl *Slot) Become(account string) error {
	s := sl.s
	limit := s.Settings().limit(account)
	s.mu.Lock()
	defer s.mu.Unlock()
	if uint32(s.count[account]) >= limit {
		return ErrUserLimit
	}
	if s.count[sl.key]--; s.count[sl.key] <= 0 {
		delete(s.count, sl.key)
	}
	sl.key = account
	s.count[account]++
	return nil
}

// host is the address of remote without its port.
func host(remote string) string {
	h, _, err := net.SplitHostPort(remote)
	if err != nil {
		return remote
	}
	return h
}

// Request is what a front-end learned of a client.
type Request struct {
	Service  string // gitcmd.UploadPack or gitcmd.ReceivePack
	Repo     string
	Protocol string // GIT_PROTOCOL
	Account  string // "" for anonymous: claimed, the parent checks it
	Secret   string // the password or token presented for Account (HTTP)
	Remote   string // "host:port"
	Mode     uint32 // ipc.Mode…
}

// Client is a client handed to the parent.
type Client struct {
	conn *msg.Conn
	id   uint32
	s    *Server
}

// Handoff passes a client with its input and output (which may be the
// same file) to the parent. The caller keeps in and out, and must Wait.
func (s *Server) Handoff(req Request, in, out *os.File) (*Client, error) {
	mine, theirs, err := msg.Pair()
	if err != nil {
		return nil, fmt.Errorf("frontend: %w", err)
	}
	defer theirs.Close()
	s.mu.Lock()
	id := ipc.ClientID(s.Via, func(id uint32) bool { return s.ids[id] })
	s.ids[id] = true
	s.mu.Unlock()
	c := &ipc.Connect{Client: id, Via: s.Via, Mode: req.Mode, Account: req.Account, Secret: req.Secret, Remote: truncate(req.Remote, ipc.MaxRemote),
		Hello: ipc.Hello{Service: req.Service, Repo: req.Repo, Protocol: req.Protocol}}
	s.sendMu.Lock()
	err = ipc.Send(s.parent, c, theirs.File())
	if err == nil {
		err = ipc.Send(s.parent, &ipc.Stream{Client: id}, in)
	}
	if err == nil {
		err = ipc.Send(s.parent, &ipc.Stream{Client: id, Output: true}, out)
	}
	s.sendMu.Unlock()
	if err != nil {
		mine.Close()
		s.forget(id)
		return nil, fmt.Errorf("frontend: hand-off: %w", err)
	}
	return &Client{conn: mine, id: id, s: s}, nil
}

func (s *Server) forget(id uint32) {
	s.mu.Lock()
	delete(s.ids, id)
	s.mu.Unlock()
}

// Wait returns the parent's verdict on the client: when it arrives the
// client's processes are gone. A closed channel without one is an
// internal error.
func (c *Client) Wait() ipc.Done {
	defer c.s.forget(c.id)
	defer c.conn.Close()
	var done ipc.Done
	if _, err := ipc.Recv(c.conn, &done, false); err != nil {
		return ipc.Done{Status: ipc.StatusFailed, Reason: ipc.ReasonInternal, Message: "internal server error"}
	}
	return done
}

// drainGrace is how long a front-end goes on relaying the output of a
// client's processes once they are gone.
const drainGrace = 5 * time.Second

// WaitWhile is Wait for a front-end that relays the processes' output
// to the client meanwhile: copied is closed when that relay ends. Once
// the processes are gone (they stop at the request's deadline, or when
// the client reads too slowly), a relay still blocked on a client that
// does not read is ended by abort after drainGrace, so that the client
// holds the front-end no longer than it held its processes.
func (c *Client) WaitWhile(copied <-chan struct{}, abort func()) ipc.Done {
	done := make(chan ipc.Done, 1)
	go func() { done <- c.Wait() }()
	select {
	case <-copied:
		return <-done
	case d := <-done:
		t := time.AfterFunc(drainGrace, abort)
		<-copied
		t.Stop()
		return d
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// StreamPair returns the two ends of a new stream socket: one for the
// front-end, as a connection with deadlines and half-close, and the
// other to hand to the parent as the client's input and output.
func StreamPair() (*net.UnixConn, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("frontend: socketpair: %w", err)
	}
	f := os.NewFile(uintptr(fds[0]), "stream")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		unix.Close(fds[1])
		return nil, nil, fmt.Errorf("frontend: %w", err)
	}
	return c.(*net.UnixConn), os.NewFile(uintptr(fds[1]), "client stream"), nil
}

// Listeners returns the listening sockets the front-end inherited, in
// order, from ipc.FDPeer on.
func Listeners() ([]net.Listener, error) {
	var ls []net.Listener
	for i := 0; ; i++ {
		fd := ipc.FDPeer + i
		if v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil || v != 1 {
			if i == 0 {
				return nil, errors.New("frontend: no listening socket")
			}
			return ls, nil
		}
		f := os.NewFile(uintptr(fd), "listener")
		l, err := net.FileListener(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("frontend: listener %d: %w", i, err)
		}
		ls = append(ls, l)
	}
}

// Pending counts c as pending, from accept or from the end of a
// request on a connection kept for the next one, until Handshaken. It
// returns false if the front-end is full of pending connections and
// c's address holds its share of them: the caller closes c at once.
// Once the front-end is full, c may take the place of the oldest
// pending connection of an address that holds more than its share,
// which is closed. Refusals and evictions are logged in summary.
func (s *Server) Pending(c net.Conn) bool {
	key := admit.AddressKey(c.RemoteAddr())
	release, why, evicted := s.gate.Enter(key, func() { c.Close() })
	if evicted != "" {
		s.Refusals.Add("connection closed: "+admit.OverKey, evicted)
	}
	if why != "" {
		s.Refusals.Add("connection closed: "+why, key)
		return false
	}
	if old, loaded := s.waiting.Swap(c, release); loaded {
		old.(func())()
	}
	return true
}

// Handshaken ends c's pending count: its handshake is done (or it is
// closed). Calling it for a connection not pending does nothing.
func (s *Server) Handshaken(c net.Conn) {
	if release, ok := s.waiting.LoadAndDelete(c); ok {
		release.(func())()
	}
}

// Refused logs, in summary, a connection refused over a limit for why
// (a fixed text: the kind of the summary) from remote ("host:port").
func (s *Server) Refused(why, remote string, attrs ...any) {
	s.Refusals.Add(why, admit.AddressKey(addr(remote)), attrs...)
}

// Failed logs, in summary, a connection that failed for why (a fixed
// text: a bad request, a failed handshake) from remote ("host:port").
func (s *Server) Failed(why, remote string, attrs ...any) {
	s.Failures.Add(why, admit.AddressKey(addr(remote)), attrs...)
}

// addr is a net.Addr of "host:port".
type addr string

func (a addr) Network() string { return "tcp" }
func (a addr) String() string  { return string(a) }

// Listener returns l counting each accepted connection as pending
// (Pending), and closing at once those over the limits; the caller
// calls Handshaken.
func (s *Server) Listener(l net.Listener) net.Listener { return &gateListener{Listener: l, s: s} }

type gateListener struct {
	net.Listener
	s *Server
}

func (l *gateListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.s.Pending(c) {
			return c, nil
		}
		c.Close()
	}
}

// drainPoll is how often a halted front-end looks whether its last
// connection is done.
const drainPoll = 100 * time.Millisecond

// Serve accepts on every listener, serving each connection with serve
// in a goroutine of its own, and handles the parent's messages until
// its channel closes; Halt closes the listeners. A connection is
// pending (Pending) from accept until serve calls Handshaken or
// returns; over the pending limits it is closed at once, before any
// goroutine is started for it.
func (s *Server) Serve(ls []net.Listener, serve func(net.Conn)) error {
	var once sync.Once
	// Connections past their handshake count too: at most twice the
	// clients allowed in all are open at once.
	var open atomic.Int64
	halt := func() {
		once.Do(func() {
			for _, l := range ls {
				l.Close()
			}
			// The process ends once its connections are done.
			go func() {
				for open.Load() > 0 {
					time.Sleep(drainPoll)
				}
				s.Finish()
			}()
		})
	}
	for _, l := range ls {
		go func() {
			gl := s.Listener(l)
			for {
				c, ok := admit.Accept(gl.Accept, s.Refusals)
				if !ok {
					return
				}
				if open.Add(1) > 2*int64(s.Settings().Total) {
					open.Add(-1)
					s.Handshaken(c)
					s.Refusals.Add("connection closed: too many open connections", admit.AddressKey(c.RemoteAddr()))
					c.Close()
					continue
				}
				go func() {
					defer open.Add(-1)
					defer s.Handshaken(c)
					serve(c)
				}()
			}
		}()
	}
	defer halt()
	return s.Run(halt)
}
