package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SSH configures the ssh:// (and scp-like user@host:path) transport.
// The server's host key must be pinned: by KnownHosts, by HostKeys, or
// both (either one matching admits it); a server whose key neither
// names is refused before anything is sent. The client authenticates
// with Signer, or else the private key in KeyFile (unencrypted).
type SSH struct {
	// KnownHosts is the path of a known_hosts file (ssh(8)'s format,
	// hashed names and [host]:port entries included).
	KnownHosts string
	// HostKeys are the public keys the server may present.
	HostKeys []ssh.PublicKey
	// KeyFile is the path of the client's private key.
	KeyFile string
	// Signer, if set, is the client's key instead of KeyFile's.
	Signer ssh.Signer
}

// ErrHostKey is the error a connection ends with when the server's host
// key is not the one pinned, or no key is pinned for that host.
var ErrHostKey = errors.New("remote: ssh host key not accepted")

// sshHandshakeTimeout bounds the TCP connection and the SSH handshake
// with authentication.
const sshHandshakeTimeout = 30 * time.Second

// maxStderr bounds the bytes of the remote command's standard error
// kept to explain a failure.
const maxStderr = 1024

// sshTarget is a parsed ssh:// or scp-like URL.
type sshTarget struct {
	user, addr, path string
}

// parseSSH parses ssh://[user@]host[:port]/path and the scp-like
// [user@]host:path (a colon before any slash, as C Git tells them from
// local paths). ok is false when rawURL is neither. As C Git does,
// ssh://host/~user/path asks for a path relative to a home directory.
func parseSSH(rawURL string) (t sshTarget, ok bool, err error) {
	var hostport string
	switch {
	case strings.HasPrefix(rawURL, "ssh://"), strings.HasPrefix(rawURL, "git+ssh://"), strings.HasPrefix(rawURL, "ssh+git://"):
		rest := rawURL[strings.Index(rawURL, "://")+3:]
		i := strings.IndexByte(rest, '/')
		if i <= 0 {
			return t, true, fmt.Errorf("remote: malformed URL %.200q", rawURL)
		}
		hostport, t.path = rest[:i], rest[i:]
		if strings.HasPrefix(t.path, "/~") {
			t.path = t.path[1:]
		}
		if u, h, found := strings.Cut(hostport, "@"); found {
			t.user, hostport = u, h
		}
		if _, _, err := net.SplitHostPort(hostport); err != nil {
			if strings.HasPrefix(hostport, "[") && strings.HasSuffix(hostport, "]") {
				hostport = hostport[1 : len(hostport)-1]
			}
			hostport = net.JoinHostPort(hostport, "22")
		}
	default:
		colon := strings.IndexByte(rawURL, ':')
		slash := strings.IndexByte(rawURL, '/')
		if colon <= 0 || (slash >= 0 && slash < colon) || strings.HasPrefix(rawURL[colon:], "://") {
			return t, false, nil
		}
		hostport, t.path = rawURL[:colon], rawURL[colon+1:]
		if u, h, found := strings.Cut(hostport, "@"); found {
			t.user, hostport = u, h
		}
		if strings.HasPrefix(hostport, "[") && strings.HasSuffix(hostport, "]") {
			hostport = hostport[1 : len(hostport)-1]
		}
		hostport = net.JoinHostPort(hostport, "22")
	}
	host, _, _ := net.SplitHostPort(hostport)
	if host == "" || t.path == "" || strings.HasPrefix(host, "-") || strings.ContainsAny(rawURL, "\x00\n\r") || strings.HasPrefix(t.user, "-") {
		return t, true, fmt.Errorf("remote: malformed URL %.200q", rawURL)
	}
	if t.user == "" {
		t.user = os.Getenv("USER")
		if t.user == "" {
			return t, true, fmt.Errorf("remote: no user in %.200q and $USER unset", rawURL)
		}
	}
	t.addr = hostport
	return t, true, nil
}

// shellQuote quotes s for a POSIX shell as C Git's sq_quote_buf does:
// in single quotes, each ' and ! closed out, escaped, and reopened.
func shellQuote(s string) string {
	var b strings.Builder
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\'', '!':
			b.WriteString("'\\")
			b.WriteByte(c)
			b.WriteByte('\'')
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// hostKeyCallback admits the keys o pins for the server at addr
// (host:port, dialled at remote), and returns the host key algorithms
// that present them: a server with several host keys is asked for one
// the client knows, as ssh(1) orders them by known_hosts.
func (o *SSH) hostKeyCallback(addr string, remote net.Addr) (ssh.HostKeyCallback, []string, error) {
	var known ssh.HostKeyCallback
	var algos []string
	for _, k := range o.HostKeys {
		algos = append(algos, algorithmsFor(k.Type())...)
	}
	if o.KnownHosts != "" {
		cb, err := knownhosts.New(o.KnownHosts)
		if err != nil {
			return nil, nil, fmt.Errorf("remote: known_hosts: %w", err)
		}
		known = cb
		// A key no line holds makes knownhosts list the host's keys.
		var ke *knownhosts.KeyError
		if err := cb(addr, remote, noKey{}); errors.As(err, &ke) {
			for _, k := range ke.Want {
				algos = append(algos, algorithmsFor(k.Key.Type())...)
			}
		}
	}
	if known == nil && len(o.HostKeys) == 0 {
		return nil, nil, fmt.Errorf("%w: no known_hosts file or host key configured", ErrHostKey)
	}
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		for _, k := range o.HostKeys {
			if bytes.Equal(k.Marshal(), key.Marshal()) {
				return nil
			}
		}
		fp := ssh.FingerprintSHA256(key)
		if known == nil {
			return fmt.Errorf("%w: %s presented %s %s, not the pinned key", ErrHostKey, hostname, key.Type(), fp)
		}
		err := known(hostname, remote, key)
		var ke *knownhosts.KeyError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &ke) && len(ke.Want) == 0:
			return fmt.Errorf("%w: %s (%s %s) is not in %s", ErrHostKey, hostname, key.Type(), fp, o.KnownHosts)
		case errors.As(err, &ke):
			return fmt.Errorf("%w: %s presented %s %s, which does not match %s line %d", ErrHostKey, hostname, key.Type(), fp, ke.Want[0].Filename, ke.Want[0].Line)
		}
		return fmt.Errorf("%w: %v", ErrHostKey, err)
	}, algos, nil
}

// noKey is a public key of no known type, that no known_hosts line
// holds.
type noKey struct{}

func (noKey) Type() string                        { return "none" }
func (noKey) Marshal() []byte                     { return []byte("\x00\x00\x00\x04none") }
func (noKey) Verify([]byte, *ssh.Signature) error { return errors.New("no key") }

// signer returns the client's key.
func (o *SSH) signer() (ssh.Signer, error) {
	if o.Signer != nil {
		return o.Signer, nil
	}
	if o.KeyFile == "" {
		return nil, errors.New("remote: ssh: no private key configured")
	}
	b, err := os.ReadFile(o.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("remote: ssh: %w", err)
	}
	s, err := ssh.ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("remote: ssh: private key %s: %w", o.KeyFile, err)
	}
	return s, nil
}

// dialSSH connects to the server, checks its host key, authenticates,
// and runs service on the path, asking for protocol version 2 unless
// v0 (a server that does not accept the GIT_PROTOCOL variable answers
// in version 0, which the fetch reads as well).
func dialSSH(ctx context.Context, t sshTarget, o *SSH, service string, timeout time.Duration, v0 bool) (transport, error) {
	if o == nil {
		o = &SSH{}
	}
	if o.KnownHosts == "" && len(o.HostKeys) == 0 {
		return nil, fmt.Errorf("%w: no known_hosts file or host key configured", ErrHostKey)
	}
	signer, err := o.signer()
	if err != nil {
		return nil, err
	}
	handshake := min(sshHandshakeTimeout, timeout)
	d := net.Dialer{Timeout: handshake}
	c, err := d.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return nil, fmt.Errorf("remote: %w", err)
	}
	check, algos, err := o.hostKeyCallback(t.addr, c.RemoteAddr())
	if err != nil {
		c.Close()
		return nil, err
	}
	conf := &ssh.ClientConfig{
		User:              t.user,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback:   check,
		HostKeyAlgorithms: algos, // none known: the defaults, refused by check
	}
	c.SetDeadline(time.Now().Add(handshake))
	stopHandshake := context.AfterFunc(ctx, func() { c.Close() })
	cc, chans, reqs, err := ssh.NewClientConn(c, t.addr, conf)
	stopHandshake()
	if err != nil {
		c.Close()
		if errors.Is(err, ErrHostKey) {
			return nil, err
		}
		return nil, fmt.Errorf("remote: ssh %s: %w", t.addr, err)
	}
	c.SetDeadline(time.Time{})
	client := ssh.NewClient(cc, chans, reqs)
	s := &sshTransport{client: client, timeout: timeout}
	s.idle = time.AfterFunc(timeout, func() {
		s.timedOut.Store(true)
		client.Close()
	})
	s.stop = context.AfterFunc(ctx, func() { client.Close() })
	if err := s.start(t.path, service, v0); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// algorithmsFor returns the host key algorithms that present a key of
// type typ.
func algorithmsFor(typ string) []string {
	if typ == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{typ}
}

// sshTransport is a remote command's standard input and output: the
// advertisement, then the commands, as over git://. Every read and
// write must progress within the I/O timeout, or the connection is
// closed.
type sshTransport struct {
	client *ssh.Client
	sess   *ssh.Session
	in     io.WriteCloser
	out    io.Reader
	stderr limitedBuffer
	// answered is set once the command has written to its output.
	answered bool
	timeout  time.Duration
	idle     *time.Timer
	timedOut atomic.Bool // idle fired and closed the connection
	stop     func() bool
}

func (s *sshTransport) start(path, service string, v0 bool) error {
	sess, err := s.client.NewSession()
	if err != nil {
		return fmt.Errorf("remote: ssh session: %w", err)
	}
	s.sess = sess
	if !v0 && service == uploadPack {
		// Refused by servers that do not accept the variable
		// (AcceptEnv): those answer in version 0.
		sess.Setenv("GIT_PROTOCOL", "version=2")
	}
	if s.in, err = sess.StdinPipe(); err != nil {
		return fmt.Errorf("remote: ssh session: %w", err)
	}
	if s.out, err = sess.StdoutPipe(); err != nil {
		return fmt.Errorf("remote: ssh session: %w", err)
	}
	sess.Stderr = &s.stderr
	if err := sess.Start(service + " " + shellQuote(path)); err != nil {
		return fmt.Errorf("remote: ssh: start %s: %w", service, err)
	}
	return nil
}

func (s *sshTransport) advertisement(context.Context) (io.Reader, error) {
	return s, nil
}

func (s *sshTransport) command(ctx context.Context, req io.Reader) (io.ReadCloser, error) {
	if _, err := io.Copy(sshWriter{s}, req); err != nil {
		return nil, fmt.Errorf("remote: send: %w", err)
	}
	return io.NopCloser(s), nil
}

// Read reads the remote command's output; when it ends before a first
// byte (no such repository, no git-upload-pack there), what it wrote
// to standard error tells why.
func (s *sshTransport) Read(p []byte) (int, error) {
	s.idle.Reset(s.timeout)
	n, err := s.out.Read(p)
	if n > 0 {
		s.answered = true
	}
	if err != nil && s.timedOut.Load() {
		return n, fmt.Errorf("%w: nothing received for %v", ErrUpstream, s.timeout)
	}
	if err == io.EOF && !s.answered {
		s.waitExit()
		if msg := s.stderr.String(); msg != "" {
			return 0, fmt.Errorf("%w: %.200q", ErrUpstream, strings.TrimSpace(msg))
		}
	}
	return n, err
}

// waitExit waits, at most a second, for the command to exit, which is
// when its standard error has been copied whole: the end of its output
// can arrive before the message that explains it.
func (s *sshTransport) waitExit() {
	done := make(chan struct{})
	go func() {
		s.sess.Wait()
		close(done)
	}()
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

type sshWriter struct{ s *sshTransport }

func (w sshWriter) Write(p []byte) (int, error) {
	w.s.idle.Reset(w.s.timeout)
	n, err := w.s.in.Write(p)
	if err != nil && w.s.timedOut.Load() {
		return n, fmt.Errorf("%w: nothing sent for %v", ErrUpstream, w.s.timeout)
	}
	return n, err
}

func (s *sshTransport) close() {
	s.idle.Stop()
	s.stop()
	if s.in != nil {
		s.in.Close()
	}
	if s.sess != nil {
		s.sess.Close()
	}
	s.client.Close()
}

// limitedBuffer keeps the first maxStderr bytes written to it.
type limitedBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := maxStderr - len(l.b); room > 0 {
		l.b = append(l.b, p[:min(len(p), room)]...)
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}
