// Package httpd is gotd's smart HTTP front-end (gitprotocol-http(5)):
// GET …/info/refs?service=git-upload-pack|git-receive-pack and POST
// …/git-upload-pack|git-receive-pack, protocol version 2 through the
// Git-Protocol header, gzip-encoded and chunked request bodies within a
// size limit, and HTTPS on listeners given a certificate. Anonymous
// clients may read what the rules let "anonymous" read; a push needs
// HTTP basic authentication as an account, with its password or one of
// its tokens. httpd does not hold their hashes: it passes the pair a
// client presents to the parent with the request, and an auth process
// verifies it for that request only.
//
// GETs of the dumb protocol's files (info/refs without ?service=, HEAD,
// objects/…) are passed on the same way, as reads of upload-pack in
// ipc.ModeDumb: the session answers the file (dumb.go).
//
// Each request is one client of the parent (smart HTTP is stateless):
// its body is relayed to a socket whose other end the session and repo
// processes hold, and their answer is relayed back as the response.
package httpd

import (
	"compress/gzip"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/netutil"

	"gotd/internal/daemon/frontend"
	"gotd/internal/daemon/gitcmd"
	"gotd/internal/daemon/ipc"
	"gotd/internal/protocol/dumb"
	"gotd/internal/protocol/pktline"
	"gotd/internal/protocol/wire"
)

// Realm is the realm of the basic authentication challenge.
const Realm = "gotd"

// maxHeaderBytes bounds a request's header.
const maxHeaderBytes = 64 << 10

// maxFetchBody bounds the body of a fetch (a POST to git-upload-pack)
// after gzip decoding, below the configured body limit, which is sized
// for pushed packs: a fetch sends negotiation lines only. 64 MiB hold
// the want lines of some 900,000 references, or a round of over a
// million haves (C Git sends at most tens of thousands per round).
const maxFetchBody = 64 << 20

// bodyLimit returns the bound of a request body to service, counted
// decompressed: the configured limit, and for a fetch maxFetchBody if
// lower.
func bodyLimit(service string, configured int64) int64 {
	if service == gitcmd.UploadPack {
		return min(configured, maxFetchBody)
	}
	return configured
}

type server struct {
	log *slog.Logger
	s   *frontend.Server
}

// Main serves the listeners until the parent's channel closes. A
// listener with a certificate among creds serves HTTPS.
func Main(ctx context.Context, log *slog.Logger, s *frontend.Server, creds []ipc.Credential, ls []net.Listener) error {
	srv := &server{log: log, s: s}
	st := s.Settings()
	for _, c := range creds {
		if c.Kind != ipc.CredTLS || int(c.Listener) >= len(ls) {
			continue
		}
		cert, err := tls.X509KeyPair(c.Cert, c.Key)
		if err != nil {
			return fmt.Errorf("httpd: listener %d: %w", c.Listener, err)
		}
		ls[c.Listener] = tls.NewListener(ls[c.Listener], &tls.Config{
			Certificates: []tls.Certificate{cert},
			MinVersion:   tls.VersionTLS12,
		})
	}
	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: st.HandshakeTimeout(),
		IdleTimeout:       st.HandshakeTimeout(),
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, c)
		},
		ConnState: func(c net.Conn, state http.ConnState) {
			switch state {
			case http.StateIdle:
				if !s.Pending(c) {
					c.Close()
				}
			case http.StateClosed, http.StateHijacked:
				s.Handshaken(c)
			}
		},
	}
	for _, l := range ls {
		// Connections in their handshake or idle between requests
		// count too: at most twice the clients allowed in all.
		// A connection is pending from accept (the TLS handshake comes
		// with its first read) until a request's header has arrived,
		// and again while it waits for the next request: the server
		// sees the connections the pending count knows.
		l := s.Listener(netutil.LimitListener(l, 2*int(st.Total)))
		go func() {
			if err := hs.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("serve", "err", err)
			}
		}()
	}
	var once sync.Once
	halt := func() {
		// Running requests finish; no new ones are read.
		// The process ends once they have.
		once.Do(func() {
			for _, l := range ls {
				l.Close() // at once: Shutdown closes them in its time
			}
			go func() {
				hs.Shutdown(context.Background())
				s.Finish()
			}()
		})
	}
	defer hs.Close()
	return s.Run(halt)
}

// connKey is the request context's key of its connection.
type connKey struct{}

// route is what a request asks for.
type route struct {
	repo    string
	service string
	mode    uint32
	file    string // a dumb read's file below the repository (ipc.ModeDumb)
}

// parseRoute maps a request to a repository and service.
func parseRoute(r *http.Request) (route, int) {
	p := r.URL.Path
	var rt route
	switch {
	case strings.HasSuffix(p, "/info/refs"):
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			return rt, http.StatusMethodNotAllowed
		}
		rt.repo, rt.mode = strings.TrimSuffix(p, "/info/refs"), ipc.ModeAdvertise
		rt.service = r.URL.Query().Get("service")
		if rt.service == "" {
			// The "dumb" protocol reads files.
			return checkDumb(r)
		}
	case strings.HasSuffix(p, "/"+gitcmd.UploadPack), strings.HasSuffix(p, "/"+gitcmd.ReceivePack):
		if r.Method != http.MethodPost {
			return rt, http.StatusMethodNotAllowed
		}
		i := strings.LastIndexByte(p, '/')
		rt.repo, rt.service, rt.mode = p[:i], p[i+1:], ipc.ModeStateless
	default:
		return checkDumb(r)
	}
	rt.repo = strings.Trim(rt.repo, "/")
	if rt.service != gitcmd.UploadPack && rt.service != gitcmd.ReceivePack {
		return rt, http.StatusForbidden
	}
	if rt.repo == "" || len(rt.repo) > ipc.MaxRepoName {
		return rt, http.StatusNotFound
	}
	return rt, 0
}

// ServeHTTP serves one request.
func (srv *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if c, ok := r.Context().Value(connKey{}).(net.Conn); ok {
		srv.s.Handshaken(c)
	}
	log := srv.log.With("remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path)
	rt, code := parseRoute(r)
	if code == http.StatusNotFound && isPage(r) {
		srv.serveWeb(w, r, log)
		return
	}
	if code != 0 {
		srv.s.Failed("request refused", r.RemoteAddr, "status", code)
		fail(w, code, http.StatusText(code))
		return
	}
	st := srv.s.Settings()
	// The account is claimed, not proven: the parent has the secret
	// verified after admission, for this request only.
	account, secret, ok := srv.claim(w, r)
	if !ok {
		return
	}
	if account == "" && rt.service == gitcmd.ReceivePack {
		challenge(w, "authentication required to push")
		return
	}
	log = log.With("user", account)
	slot, ok := srv.admit(w, r, account)
	if !ok {
		return
	}
	defer slot.Release()

	// The body is relayed as it is read (and decoded), never held
	// whole: the bound counts the decoded bytes.
	limit := bodyLimit(rt.service, int64(st.BodyLimit))
	if r.ContentLength > limit {
		log.Warn("request body too large", "length", r.ContentLength)
		fail(w, http.StatusRequestEntityTooLarge, "request body too large")
		return
	}
	body := io.Reader(r.Body)
	switch r.Header.Get("Content-Encoding") {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			fail(w, http.StatusBadRequest, "bad gzip body")
			return
		}
		defer zr.Close()
		body = zr
	default:
		fail(w, http.StatusUnsupportedMediaType, "unsupported content encoding")
		return
	}
	// The limit counts the decompressed bytes, and the time between
	// reads is bounded as for every other request.
	lb := &limitedBody{r: body, left: limit, rc: http.NewResponseController(w), idle: st.RequestTimeout()}

	protocol := r.Header.Get("Git-Protocol")
	if len(protocol) > ipc.MaxProtocol {
		protocol = ""
	}
	mine, theirs, err := frontend.StreamPair()
	if err != nil {
		log.Error("stream", "err", err)
		fail(w, http.StatusInternalServerError, "internal server error")
		return
	}
	defer mine.Close()
	client, err := srv.s.Handoff(frontend.Request{
		Service: rt.service, Repo: rt.repo, Protocol: protocol, Account: account, Secret: secret, Remote: r.RemoteAddr, Mode: rt.mode,
	}, theirs, theirs)
	theirs.Close()
	if err != nil {
		log.Error("cannot pass the request on", "err", err)
		fail(w, http.StatusInternalServerError, "internal server error")
		return
	}
	go func() {
		switch rt.mode {
		case ipc.ModeStateless:
			if _, err := io.Copy(mine, lb); err != nil && !lb.over.Load() {
				log.Info("request body", "err", err)
			}
		case ipc.ModeDumb:
			dumb.WriteRequest(mine, rt.file)
		}
		mine.CloseWrite()
	}()
	if rt.mode == ipc.ModeDumb {
		srv.serveDumb(w, r, log, rt, account, slot, st, lb, client, mine)
		return
	}

	// Headers go once the server's processes have started to answer:
	// until then the request may still be refused.
	buf := make([]byte, 64<<10)
	n, rerr := mine.Read(buf)
	if n == 0 {
		done := client.Wait()
		srv.refused(w, log, rt, account, st, lb, done, rerr)
		return
	}
	// The server's processes answer: the parent has verified the
	// account, whose place the request now takes.
	if account != "" {
		if err := slot.Become(account); err != nil {
			mine.Close()
			client.Wait()
			srv.s.Refused("connection refused: "+err.Error(), r.RemoteAddr, "user", account)
			w.Header().Set("Retry-After", "10")
			fail(w, http.StatusServiceUnavailable, err.Error())
			return
		}
	}
	if lb.over.Load() {
		mine.Close()
		client.Wait()
		log.Warn("request body too large")
		fail(w, http.StatusRequestEntityTooLarge, "request body too large")
		return
	}
	h := w.Header()
	kind := "result"
	if rt.mode == ipc.ModeAdvertise {
		kind = "advertisement"
	}
	h.Set("Content-Type", "application/x-"+rt.service+"-"+kind)
	h.Set("Cache-Control", "no-cache, max-age=0, must-revalidate")
	h.Set("Pragma", "no-cache")
	h.Set("Expires", "Fri, 01 Jan 1980 00:00:00 GMT")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	if rt.mode == ipc.ModeAdvertise && (rt.service == gitcmd.ReceivePack || wire.ParseVersion(protocol) != 2) {
		// Versions 0 and 1 start with the service line; version 2 does
		// not (git http-backend does the same).
		pw := pktline.NewWriter(w)
		pw.WriteString("# service=" + rt.service + "\n")
		pw.Flush()
	}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		for n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				break
			}
			rc.Flush() // progress and keepalives reach the client as they come
			if rerr != nil {
				break
			}
			n, rerr = mine.Read(buf)
		}
		mine.Close() // a client gone early stops the server's processes
	}()
	// A client that does not read holds this request no longer than
	// its processes, which stop at the deadline or when it reads too
	// slowly.
	done := client.WaitWhile(copied, func() { rc.SetWriteDeadline(time.Now()) })
	if done.Status != ipc.StatusOK {
		log.Info("request failed", "service", rt.service, "repo", rt.repo, "message", done.Message)
	}
}

// refused answers a request that produced no Git data.
func (srv *server) refused(w http.ResponseWriter, log *slog.Logger, rt route, account string, st *frontend.Settings, lb *limitedBody, done ipc.Done, rerr error) {
	if lb.over.Load() {
		log.Warn("request body too large")
		fail(w, http.StatusRequestEntityTooLarge, "request body too large")
		return
	}
	if done.Status == ipc.StatusOK {
		w.WriteHeader(http.StatusOK) // a request with nothing to answer
		return
	}
	if done.Status != ipc.StatusRefused {
		log.Warn("request failed", "message", done.Message, "err", rerr)
		fail(w, http.StatusInternalServerError, "the server could not answer: "+done.Message)
		return
	}
	switch done.Reason {
	case ipc.ReasonUnauthenticated:
		challenge(w, done.Message)
	case ipc.ReasonRateLimited:
		w.Header().Set("Retry-After", "60")
		fail(w, http.StatusTooManyRequests, done.Message)
	case ipc.ReasonNoRepo, ipc.ReasonDenied:
		// An anonymous client may be one that has not yet sent its
		// credentials: ask for them, whether or not the repository
		// exists.
		if account == "" && len(st.Accounts) > 0 {
			challenge(w, "authentication required")
			return
		}
		code := http.StatusNotFound
		if done.Reason == ipc.ReasonDenied {
			code = http.StatusForbidden
		}
		fail(w, code, done.Message)
	case ipc.ReasonBusy:
		w.Header().Set("Retry-After", "10")
		fail(w, http.StatusServiceUnavailable, done.Message)
	case ipc.ReasonBadRequest:
		fail(w, http.StatusBadRequest, done.Message)
	default:
		fail(w, http.StatusInternalServerError, done.Message)
	}
}

// claim returns the account and secret the request claims (none for
// an anonymous one). A claim out of bounds is answered and counted as
// a failed authentication, and ok is false.
func (srv *server) claim(w http.ResponseWriter, r *http.Request) (account, secret string, ok bool) {
	account, secret, present := r.BasicAuth()
	if present && account == "" || len(account) > ipc.MaxUser || len(secret) > ipc.MaxSecret {
		srv.s.Failed("authentication failed", r.RemoteAddr)
		challenge(w, "authentication failed")
		return "", "", false
	}
	return account, secret, true
}

// admit takes the request's place among its address's (and account's)
// connections, or answers 503 and returns false. A claimed account
// counts for the client's address alone until the parent has checked
// its secret (Slot.Become).
func (srv *server) admit(w http.ResponseWriter, r *http.Request, account string) (*frontend.Slot, bool) {
	admit := srv.s.Admit
	if account != "" {
		admit = srv.s.AdmitClaim
	}
	slot, err := admit(account, r.RemoteAddr)
	if err != nil {
		srv.s.Refused("connection refused: "+err.Error(), r.RemoteAddr, "user", account)
		w.Header().Set("Retry-After", "10")
		fail(w, http.StatusServiceUnavailable, err.Error())
		return nil, false
	}
	return slot, true
}

// fail answers with an error status and a message.
func fail(w http.ResponseWriter, code int, message string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(code)
	fmt.Fprintln(w, message)
}

// challenge asks for credentials.
func challenge(w http.ResponseWriter, message string) {
	w.Header().Set("WWW-Authenticate", `Basic realm="`+Realm+`", charset="UTF-8"`)
	fail(w, http.StatusUnauthorized, message)
}

// limitedBody reads a request body up to left bytes, each read within
// the idle time.
type limitedBody struct {
	r    io.Reader
	left int64
	rc   *http.ResponseController
	idle time.Duration
	over atomic.Bool
}

// errTooLarge ends a body over the limit.
var errTooLarge = errors.New("request body too large")

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.idle > 0 {
		b.rc.SetReadDeadline(time.Now().Add(b.idle))
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.r.Read(p)
	if int64(n) > b.left {
		b.over.Store(true)
		return int(b.left), errTooLarge
	}
	b.left -= int64(n)
	return n, err
}
