// Package sshd is gotd's built-in SSH server: accounts declared in
// gotd.conf log in with their public keys (no other method exists),
// and a session may do one thing, execute git-upload-pack or
// git-receive-pack on a repository, with GIT_PROTOCOL as its only
// environment variable. The account is the identity the parent's rules
// see. SSH encrypts, so the Git stream is relayed between the channel
// and a socket whose other end the session and repo processes hold.
package sshd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"gotd/internal/daemon/frontend"
	"gotd/internal/daemon/gitcmd"
	"gotd/internal/daemon/ipc"
	"gotd/internal/daemon/stream"
	"gotd/internal/protocol/pktline"
)

// Version is the server's SSH identification string.
const Version = "SSH-2.0-gotd"

type server struct {
	log    *slog.Logger
	s      *frontend.Server
	config *ssh.ServerConfig
}

// Main serves the listeners with the host keys among creds, all of
// them offered (one per key type), until the parent's channel closes.
func Main(ctx context.Context, log *slog.Logger, s *frontend.Server, creds []ipc.Credential, ls []net.Listener) error {
	var signers []ssh.Signer
	for _, c := range creds {
		if c.Kind == ipc.CredHostKey {
			k, err := ssh.ParsePrivateKey(c.Key)
			if err != nil {
				return fmt.Errorf("sshd: host key: %w", err)
			}
			signers = append(signers, k)
		}
	}
	if len(signers) == 0 {
		return errors.New("sshd: no host key")
	}
	srv := &server{log: log, s: s}
	srv.config = &ssh.ServerConfig{
		PublicKeyCallback: srv.publicKey,
		MaxAuthTries:      6,
		ServerVersion:     Version,
		AuthLogCallback: func(meta ssh.ConnMetadata, method string, err error) {
			if err != nil && method != "none" && !errors.Is(err, ssh.ErrNoAuth) {
				s.Failed("authentication failed", meta.RemoteAddr().String(), "method", method)
			}
		},
	}
	// A second key of one type would replace the first: the parent
	// sends one of each.
	for _, k := range signers {
		srv.config.AddHostKey(k)
	}
	return s.Serve(ls, srv.serve)
}

// errUnauthorized is every public key refusal: the client learns
// nothing about which accounts exist.
var errUnauthorized = errors.New("public key not authorized")

// publicKey accepts a key listed for the account the client logs in
// as. The library calls it also for keys offered without a signature;
// the connection is authenticated only once the client has proved it
// holds the private key.
func (srv *server) publicKey(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
	a := srv.s.Settings().Accounts[meta.User()]
	if a == nil {
		return nil, errUnauthorized
	}
	want := key.Marshal()
	for _, line := range a.Keys {
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
		if err == nil && bytes.Equal(k.Marshal(), want) {
			return &ssh.Permissions{Extensions: map[string]string{"account": a.Name}}, nil
		}
	}
	return nil, errUnauthorized
}

// serve runs one SSH connection.
func (srv *server) serve(c net.Conn) {
	defer c.Close()
	st := srv.s.Settings()
	log := srv.log.With("remote", c.RemoteAddr().String())
	ic := &idleConn{Conn: c}
	c.SetDeadline(time.Now().Add(st.HandshakeTimeout()))
	conn, chans, reqs, err := ssh.NewServerConn(ic, srv.config)
	if err != nil {
		srv.s.Failed("handshake failed", c.RemoteAddr().String(), "err", err)
		return
	}
	srv.s.Handshaken(c)
	defer conn.Close()
	c.SetDeadline(time.Time{})
	ic.setIdle(st.RequestTimeout())
	account := conn.Permissions.Extensions["account"]
	log = log.With("user", account)
	log.Debug("authenticated", "client", string(conn.ClientVersion()))
	go ssh.DiscardRequests(reqs)
	var wg sync.WaitGroup
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "only session channels are allowed")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			log.Info("channel", "err", err)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			srv.session(log, account, c.RemoteAddr().String(), ch, creqs, func() { conn.Close() })
		}()
	}
	wg.Wait()
}

// session runs one session channel: environment requests, then one
// exec.
func (srv *server) session(log *slog.Logger, account string, remote string, ch ssh.Channel, reqs <-chan *ssh.Request, abort func()) {
	defer ch.Close()
	var protocol string
	for req := range reqs {
		switch req.Type {
		case "env":
			var kv struct{ Name, Value string }
			ok := ssh.Unmarshal(req.Payload, &kv) == nil && kv.Name == "GIT_PROTOCOL" && len(kv.Value) <= ipc.MaxProtocol
			if ok {
				protocol = kv.Value
			}
			req.Reply(ok, nil)
		case "exec", "shell":
			var cmd struct{ Command string }
			if req.Type == "exec" && ssh.Unmarshal(req.Payload, &cmd) != nil {
				req.Reply(false, nil)
				return
			}
			req.Reply(true, nil)
			go ssh.DiscardRequests(reqs)
			status, input := srv.exec(log, account, remote, cmd.Command, protocol, ch, abort)
			ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{status}))
			// The channel is closed once the client has closed its
			// input too, or after closeWait: closed at once, go-git
			// found it closed when it closed its input after the pack,
			// and failed the clone ("closing input: EOF").
			ch.CloseWrite()
			if input != nil {
				select {
				case <-input:
				case <-time.After(closeWait):
				}
			}
			return
		default:
			// No terminal, no forwarding, no agent, no subsystem.
			req.Reply(false, nil)
		}
	}
}

// closeWait bounds how long a session waits, after the command's exit
// status, for the client to close its input before the channel is
// closed.
const closeWait = 2 * time.Second

// exec serves one Git command on ch and returns its exit status, and,
// once the command ran, a channel closed when the client's input has
// ended; abort ends the connection of a client that does not read.
func (srv *server) exec(log *slog.Logger, account string, remote string, command, protocol string, ch ssh.Channel, abort func()) (uint32, <-chan struct{}) {
	service, repo, err := gitcmd.Parse(command)
	if err != nil {
		log.Info("command refused", "err", err)
		return refuse(ch, err.Error()), nil
	}
	slot, err := srv.s.Admit(account, remote)
	if err != nil {
		srv.s.Refused("connection refused: "+err.Error(), remote, "user", account)
		return refuse(ch, err.Error()), nil
	}
	defer slot.Release()
	mine, theirs, err := frontend.StreamPair()
	if err != nil {
		log.Error("stream", "err", err)
		return refuse(ch, "internal server error"), nil
	}
	defer mine.Close()
	client, err := srv.s.Handoff(frontend.Request{
		Service: service, Repo: repo, Protocol: protocol, Account: account, Remote: remote, Mode: ipc.ModeFull,
	}, theirs, theirs)
	theirs.Close()
	if err != nil {
		log.Error("cannot pass the client on", "err", err)
		return refuse(ch, "internal server error"), nil
	}
	// The client's bytes to the server's processes, and theirs back;
	// the stream ends when the last of them has closed it.
	input := make(chan struct{})
	go func() {
		io.Copy(mine, ch)
		mine.CloseWrite()
		close(input)
	}()
	copied := make(chan struct{})
	go func() {
		io.Copy(ch, mine)
		close(copied)
	}()
	switch done := client.WaitWhile(copied, abort); done.Status {
	case ipc.StatusOK:
		return 0, input
	case ipc.StatusRefused:
		return refuse(ch, done.Message), input
	default:
		if done.Message != "" {
			fmt.Fprintf(ch.Stderr(), "gotd: %s\n", done.Message)
		}
		return 1, input
	}
}

// refuse tells the client why, as an ERR packet that Git prints as
// "remote error" and on its standard error, as gotsh does.
func refuse(ch ssh.Channel, why string) uint32 {
	pktline.NewWriter(ch).WriteString("ERR " + why + "\n")
	fmt.Fprintf(ch.Stderr(), "gotd: %s\n", why)
	return 1
}

// idleConn ends a connection on which nothing has arrived for the idle
// time, once it is set (the handshake has a deadline of its own).
type idleConn struct {
	net.Conn
	mu   sync.Mutex
	idle time.Duration
}

func (c *idleConn) setIdle(d time.Duration) {
	c.mu.Lock()
	c.idle = d
	c.mu.Unlock()
}

func (c *idleConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	idle := c.idle
	c.mu.Unlock()
	if idle > 0 {
		c.Conn.SetReadDeadline(time.Now().Add(idle))
	}
	n, err := c.Conn.Read(p)
	// OpenSSH's client leaves Nagle's algorithm on without a terminal:
	// acknowledge at once, or each request waits on the delayed ACK.
	if sc, ok := c.Conn.(syscall.Conn); ok {
		stream.AckNow(sc)
	}
	return n, err
}
