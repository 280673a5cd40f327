package remote

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"gotd/internal/git/repo"
	"gotd/internal/protocol/pktline"
	"gotd/internal/protocol/receive"
	"gotd/internal/protocol/upload"
	"gotd/internal/protocol/wire"
)

// transport reaches a remote's upload-pack or receive-pack.
type transport interface {
	// advertisement returns the service's advertisement.
	advertisement(ctx context.Context) (io.Reader, error)
	// command sends one request and returns its response.
	command(ctx context.Context, req io.Reader) (io.ReadCloser, error)
	close()
}

// Services a transport reaches.
const (
	uploadPack  = "git-upload-pack"
	receivePack = "git-receive-pack"
)

// maxResponse bounds an HTTP response that is not a pack's: the
// advertisement.
const maxResponse = 1 << 20

// dial returns the transport for rawURL; sshOpts configure ssh:// and
// scp-like URLs.
func dial(ctx context.Context, rawURL, service string, ioTimeout time.Duration, v0 bool, sshOpts *SSH) (transport, error) {
	switch {
	case strings.HasPrefix(rawURL, "git://"):
		u, err := url.Parse(rawURL)
		if err != nil || u.Host == "" || u.Path == "" || u.User != nil || u.RawQuery != "" {
			return nil, fmt.Errorf("remote: malformed URL %.200q", rawURL)
		}
		return dialGit(ctx, u, service, ioTimeout, v0)
	case strings.HasPrefix(rawURL, "http://"), strings.HasPrefix(rawURL, "https://"):
		u, err := url.Parse(rawURL)
		if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("remote: malformed URL %.200q", rawURL)
		}
		return &httpTransport{base: strings.TrimSuffix(u.String(), "/"), service: service, client: newHTTPClient(), ioTimeout: ioTimeout, v0: v0 || service == receivePack}, nil
	case strings.HasPrefix(rawURL, "file://"):
		return dialLocal(ctx, strings.TrimPrefix(rawURL, "file://"), service, v0)
	case strings.HasPrefix(rawURL, "/"):
		return dialLocal(ctx, rawURL, service, v0)
	}
	if t, ok, err := parseSSH(rawURL); ok {
		if err != nil {
			return nil, err
		}
		return dialSSH(ctx, t, sshOpts, service, ioTimeout, v0)
	}
	return nil, fmt.Errorf("remote: unsupported URL %.200q (git://, http://, https://, ssh://, user@host:path or a local path)", rawURL)
}

// streamTransport is a connection that carries the advertisement and
// then the commands, one after the other: git:// and local paths.
type streamTransport struct {
	c       net.Conn
	timeout time.Duration
	done    func()
}

func (s *streamTransport) advertisement(context.Context) (io.Reader, error) {
	return s, nil
}

func (s *streamTransport) command(ctx context.Context, req io.Reader) (io.ReadCloser, error) {
	if _, err := io.Copy(deadlineWriter{s}, req); err != nil {
		return nil, fmt.Errorf("remote: send: %w", err)
	}
	return io.NopCloser(s), nil
}

// deadlineWriter writes the connection with a deadline per write.
type deadlineWriter struct{ s *streamTransport }

func (d deadlineWriter) Write(p []byte) (int, error) {
	d.s.c.SetWriteDeadline(time.Now().Add(d.s.timeout))
	return d.s.c.Write(p)
}

// Read reads the connection with a deadline per read.
func (s *streamTransport) Read(p []byte) (int, error) {
	s.c.SetReadDeadline(time.Now().Add(s.timeout))
	return s.c.Read(p)
}

func (s *streamTransport) close() {
	s.c.Close()
	if s.done != nil {
		s.done()
	}
}

// dialGit connects to a git:// daemon and asks for upload-pack in
// version 2.
func dialGit(ctx context.Context, u *url.URL, service string, timeout time.Duration, v0 bool) (transport, error) {
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "9418")
	}
	d := net.Dialer{Timeout: 30 * time.Second}
	c, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, fmt.Errorf("remote: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	var b bytes.Buffer
	pw := pktline.NewWriter(&b)
	req := service + " " + u.Path + "\x00host=" + u.Hostname() + "\x00"
	if !v0 && service == uploadPack {
		req += "\x00version=2\x00"
	}
	pw.WriteString(req)
	c.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := c.Write(b.Bytes()); err != nil {
		c.Close()
		return nil, fmt.Errorf("remote: %w", err)
	}
	return &streamTransport{c: c, timeout: timeout, done: func() { stop() }}, nil
}

// dialLocal serves a local repository's upload-pack or receive-pack
// in-process, over a pipe: the same code that serves gotd's clients.
func dialLocal(ctx context.Context, path, service string, v0 bool) (transport, error) {
	r, err := repo.Open(path, repo.Options{})
	if err != nil {
		return nil, fmt.Errorf("remote: %w", err)
	}
	client, server := net.Pipe()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer server.Close()
		if service == receivePack {
			receive.Serve(ctx, server, server, receive.Options{Repo: r})
			return
		}
		version := wire.V2
		if v0 {
			version = wire.V0
		}
		upload.Serve(ctx, server, server, upload.Options{Repo: r, Version: version})
	}()
	return &streamTransport{c: client, timeout: time.Hour, done: func() {
		cancel()
		<-done
		r.Close()
	}}, nil
}

// httpTransport is smart HTTP: a GET for the advertisement, a POST per
// command, each a request of its own (stateless).
type httpTransport struct {
	base, service string
	client        *http.Client
	ioTimeout     time.Duration // per read of a response (idleBody)
	v0            bool
	auth          *BasicAuth // nil: none
}

// BasicAuth is the user and password (or token) sent to an HTTP(S)
// upstream with every request.
type BasicAuth struct{ User, Password string }

func (h *httpTransport) do(ctx context.Context, method, u, ctype string, body io.Reader) (*http.Response, error) {
	ctx, cancel := context.WithCancel(ctx)
	// Nothing sent or received for the I/O timeout cancels the
	// request: until its response's headers, the timer is reset as
	// the request's body is read to be sent; then each read of the
	// response's body must return within the timeout (idleBody).
	var timedOut atomic.Bool
	timer := time.AfterFunc(h.ioTimeout, func() {
		timedOut.Store(true)
		cancel()
	})
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		timer.Stop()
		cancel()
		return nil, fmt.Errorf("remote: %w", err)
	}
	sending := &sendingBody{timer: timer, timeout: h.ioTimeout}
	if req.Body != nil {
		sending.ReadCloser = req.Body
		req.Body = sending
	}
	if !h.v0 {
		req.Header.Set("Git-Protocol", "version=2")
	}
	req.Header.Set("User-Agent", "git/gotd")
	if h.auth != nil {
		req.SetBasicAuth(h.auth.User, h.auth.Password)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
		req.Header.Set("Accept", "application/x-"+h.service+"-result")
	}
	resp, err := h.client.Do(req)
	sending.stop()
	if err != nil {
		cancel()
		return nil, httpError(err, timedOut.Load(), h.ioTimeout)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("%w: HTTP %d", ErrUpstream, resp.StatusCode)
	}
	resp.Body = newIdleBody(resp.Body, h.ioTimeout, cancel)
	return resp, nil
}

func (h *httpTransport) advertisement(ctx context.Context) (io.Reader, error) {
	resp, err := h.do(ctx, http.MethodGet, h.base+"/info/refs?service="+h.service, "", nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-"+h.service+"-advertisement" {
		return nil, fmt.Errorf("%w: the upstream is not a smart HTTP server (Content-Type %.64q)", ErrProtocol, ct)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return nil, fmt.Errorf("remote: %w", err)
	}
	if len(b) > maxResponse {
		return nil, fmt.Errorf("%w: advertisement over %d bytes", ErrUpstream, maxResponse)
	}
	return bytes.NewReader(b), nil
}

// maxBuffered is the largest request sent with a Content-Length: as C
// Git's client does, larger ones are streamed chunked, which some web
// servers do not pass to a CGI program.
const maxBuffered = 1 << 20

func (h *httpTransport) command(ctx context.Context, req io.Reader) (io.ReadCloser, error) {
	head := make([]byte, maxBuffered+1)
	n, err := io.ReadFull(req, head)
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		req = bytes.NewReader(head[:n]) // whole: sent with its length
	case err != nil:
		return nil, fmt.Errorf("remote: %w", err)
	default:
		req = io.MultiReader(bytes.NewReader(head), req)
	}
	resp, err := h.do(ctx, http.MethodPost, h.base+"/"+h.service, "application/x-"+h.service+"-request", req)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

func (h *httpTransport) close() { h.client.CloseIdleConnections() }
