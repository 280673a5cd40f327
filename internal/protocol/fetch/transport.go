package fetch

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"gotd/internal/git/repo"
	"gotd/internal/protocol/pktline"
	"gotd/internal/protocol/upload"
	"gotd/internal/protocol/wire"
)

// transport reaches an upstream's upload-pack in protocol version 2.
type transport interface {
	// advertisement returns the capability advertisement.
	advertisement(ctx context.Context) (io.Reader, error)
	// command sends one command request and returns its response.
	command(ctx context.Context, req []byte) (io.ReadCloser, error)
	close()
}

// maxResponse bounds an HTTP response that is not a pack's: the
// advertisement.
const maxResponse = 1 << 20

// dial returns the transport for rawURL.
func dial(ctx context.Context, rawURL string, ioTimeout time.Duration, v0 bool) (transport, error) {
	switch {
	case strings.HasPrefix(rawURL, "git://"):
		u, err := url.Parse(rawURL)
		if err != nil || u.Host == "" || u.Path == "" || u.User != nil || u.RawQuery != "" {
			return nil, fmt.Errorf("fetch: malformed URL %.200q", rawURL)
		}
		return dialGit(ctx, u, ioTimeout, v0)
	case strings.HasPrefix(rawURL, "http://"), strings.HasPrefix(rawURL, "https://"):
		u, err := url.Parse(rawURL)
		if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("fetch: malformed URL %.200q", rawURL)
		}
		return &httpTransport{base: strings.TrimSuffix(u.String(), "/"), client: &http.Client{}, v0: v0}, nil
	case strings.HasPrefix(rawURL, "file://"):
		return dialLocal(ctx, strings.TrimPrefix(rawURL, "file://"), v0)
	case strings.HasPrefix(rawURL, "/"):
		return dialLocal(ctx, rawURL, v0)
	}
	return nil, fmt.Errorf("fetch: unsupported URL %.200q (git://, http://, https:// or a local path)", rawURL)
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

func (s *streamTransport) command(ctx context.Context, req []byte) (io.ReadCloser, error) {
	s.c.SetWriteDeadline(time.Now().Add(s.timeout))
	if _, err := s.c.Write(req); err != nil {
		return nil, fmt.Errorf("fetch: send: %w", err)
	}
	return io.NopCloser(s), nil
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
func dialGit(ctx context.Context, u *url.URL, timeout time.Duration, v0 bool) (transport, error) {
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "9418")
	}
	d := net.Dialer{Timeout: 30 * time.Second}
	c, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	var b bytes.Buffer
	pw := pktline.NewWriter(&b)
	req := "git-upload-pack " + u.Path + "\x00host=" + u.Hostname() + "\x00"
	if !v0 {
		req += "\x00version=2\x00"
	}
	pw.WriteString(req)
	c.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := c.Write(b.Bytes()); err != nil {
		c.Close()
		return nil, fmt.Errorf("fetch: %w", err)
	}
	return &streamTransport{c: c, timeout: timeout, done: func() { stop() }}, nil
}

// dialLocal serves a local repository's upload-pack in-process, over a
// pipe: the same code that serves gotd's clients.
func dialLocal(ctx context.Context, path string, v0 bool) (transport, error) {
	r, err := repo.Open(path, repo.Options{})
	if err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	client, server := net.Pipe()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer server.Close()
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
	base   string
	client *http.Client
	v0     bool
}

func (h *httpTransport) do(ctx context.Context, method, u, ctype string, body []byte) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	if !h.v0 {
		req.Header.Set("Git-Protocol", "version=2")
	}
	req.Header.Set("User-Agent", "git/gotd")
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
		req.Header.Set("Accept", "application/x-git-upload-pack-result")
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("%w: HTTP %d", ErrUpstream, resp.StatusCode)
	}
	return resp, nil
}

func (h *httpTransport) advertisement(ctx context.Context) (io.Reader, error) {
	resp, err := h.do(ctx, http.MethodGet, h.base+"/info/refs?service=git-upload-pack", "", nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-git-upload-pack-advertisement" {
		return nil, fmt.Errorf("%w: the upstream is not a smart HTTP server (Content-Type %.64q)", ErrProtocol, ct)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	if len(b) > maxResponse {
		return nil, fmt.Errorf("%w: advertisement over %d bytes", ErrUpstream, maxResponse)
	}
	return bytes.NewReader(b), nil
}

func (h *httpTransport) command(ctx context.Context, req []byte) (io.ReadCloser, error) {
	resp, err := h.do(ctx, http.MethodPost, h.base+"/git-upload-pack", "application/x-git-upload-pack-request", req)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

func (h *httpTransport) close() { h.client.CloseIdleConnections() }
