package httpd

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"time"

	"gotd/internal/daemon/admit"
	"gotd/internal/daemon/frontend"
	"gotd/internal/daemon/ipc"
	"gotd/internal/web"
)

// The web pages share the URLs of smart HTTP: a request that is not
// one git makes (parseRoute answers 404 for it) and reads (GET, HEAD)
// is a page, which the parent hands to the web process of the visitor
// (anonymous, or the account its basic authentication proves). The
// request travels to that process over a socket pair as HTTP/1.1,
// rebuilt here from what a page needs (method, path and query, host,
// validators), and the answer comes back the same way, its header
// bounded and filtered.

// loginPath asks for credentials: browsers send basic authentication
// only once challenged, and a private repository is not found
// (404) by anonymous visitors, so the pages link here.
const loginPath = "/-/login"

// maxWebHeader bounds the header of a web process's answer.
const maxWebHeader = 64 << 10

// webHeaders are the headers of a web process's answer passed to the
// browser; any other is dropped.
var webHeaders = []string{"Content-Type", "Content-Length", "Content-Security-Policy", "X-Content-Type-Options",
	"X-Frame-Options", "Referrer-Policy", "ETag", "Last-Modified", "Cache-Control", "Content-Disposition",
	"Location", "Allow", "Content-Range", "Accept-Ranges", "Retry-After"}

// webRequestHeaders are the headers of a browser's request passed to
// the web process.
var webRequestHeaders = []string{"If-None-Match", "If-Modified-Since", "Range", "If-Range"}

// isPage reports whether a request that is not git's asks for a page.
func isPage(r *http.Request) bool {
	return r.Method == http.MethodGet || r.Method == http.MethodHead
}

// serveWeb serves a page request.
func (srv *server) serveWeb(w http.ResponseWriter, r *http.Request, log *slog.Logger) {
	st := srv.s.Settings()
	account, secret, ok := srv.claim(w, r)
	if !ok {
		return
	}
	if r.URL.Path == loginPath && account == "" {
		challenge(w, "log in to see the repositories your account may read")
		return
	}
	if len(r.URL.RawQuery) > 1024 || len(r.Host) > 1024 {
		fail(w, http.StatusBadRequest, "bad request")
		return
	}
	log = log.With("user", account)
	slot, ok := srv.admit(w, r, account)
	if !ok {
		return
	}
	defer slot.Release()
	mine, theirs, err := frontend.StreamPair()
	if err != nil {
		log.Error("stream", "err", err)
		fail(w, http.StatusInternalServerError, "internal server error")
		return
	}
	defer mine.Close()
	client, err := srv.s.Handoff(frontend.Request{
		Service: ipc.ServiceWeb, Account: account, Secret: secret, Remote: r.RemoteAddr, Mode: ipc.ModeFull,
	}, theirs, theirs)
	theirs.Close()
	if err != nil {
		log.Error("cannot pass the request on", "err", err)
		fail(w, http.StatusInternalServerError, "internal server error")
		return
	}
	timeout := st.RequestTimeout()
	if timeout <= 0 {
		timeout = time.Minute
	}
	mine.SetDeadline(time.Now().Add(timeout))
	out := &http.Request{
		Method: r.Method, URL: &url.URL{Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery},
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Host: r.Host, Header: http.Header{}, Close: true,
	}
	for _, k := range webRequestHeaders {
		if v := r.Header.Get(k); v != "" {
			out.Header.Set(k, v)
		}
	}
	if r.TLS != nil {
		out.Header.Set("X-Gotd-Scheme", "https")
	}
	out.Header.Set(web.RemoteHeader, remoteKey(r.RemoteAddr))
	// The request goes as the parent lets it (a refusal closes the
	// stream unread); its answer is read within the deadline.
	go out.Write(mine)
	head := &countingReader{r: mine, left: maxWebHeader}
	res, err := http.ReadResponse(bufio.NewReaderSize(head, 4<<10), out)
	if err != nil {
		done := client.Wait()
		if head.n == 0 {
			srv.webRefused(w, log, done)
			return
		}
		log.Warn("bad answer from the web process", "err", err)
		fail(w, http.StatusBadGateway, "the server could not answer")
		return
	}
	defer res.Body.Close()
	head.left = -1 // the body is bounded by time, not size
	copyWebHeaders(w.Header(), res.Header, account)
	w.WriteHeader(res.StatusCode)
	// The answer leaves at the minimum rate or is cut, as the web
	// process's own writes are: a visitor who stops reading does not
	// hold this request once the web process has given up on it.
	rc := http.NewResponseController(w)
	paced := &web.PacedWriter{W: w, SetDeadline: rc.SetWriteDeadline,
		Rate: int64(st.MinRate), Interval: time.Duration(st.RateInterval) * time.Second}
	if _, err := io.Copy(paced, res.Body); err != nil && !errors.Is(err, io.EOF) {
		log.Info("page not sent whole", "err", err)
	} else {
		// The connection may serve another request, later.
		rc.Flush()
		rc.SetWriteDeadline(time.Time{})
	}
	mine.Close()
	client.Wait()
}

// remoteKey is the address a web process counts a request of remote
// ("host:port") under: the address, or its /64 for IPv6.
func remoteKey(remote string) string {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return "unknown"
	}
	return admit.AddressKey(net.TCPAddrFromAddrPort(ap))
}

// copyWebHeaders sets on h the headers of a web process's answer that
// a browser may have: those of webHeaders, nosniff, and the pages'
// Content-Security-Policy unless the answer has one of their two.
// What an account sees is cached for it alone.
func copyWebHeaders(h, from http.Header, account string) {
	for _, k := range webHeaders {
		if v := from.Values(k); len(v) > 0 {
			h[http.CanonicalHeaderKey(k)] = v
		}
	}
	// Whatever the web process says, no script runs.
	h.Set("X-Content-Type-Options", "nosniff")
	if p := h.Values("Content-Security-Policy"); len(p) != 1 || p[0] != web.CSP && p[0] != web.RawCSP {
		h.Set("Content-Security-Policy", web.CSP)
	}
	if account != "" {
		h.Set("Cache-Control", "private, "+h.Get("Cache-Control"))
		h.Add("Vary", "Authorization")
	}
}

// webRefused answers a page request the parent refused.
func (srv *server) webRefused(w http.ResponseWriter, log *slog.Logger, done ipc.Done) {
	switch {
	case done.Status == ipc.StatusRefused && done.Reason == ipc.ReasonUnauthenticated:
		challenge(w, done.Message)
	case done.Status == ipc.StatusRefused && done.Reason == ipc.ReasonRateLimited:
		w.Header().Set("Retry-After", "60")
		fail(w, http.StatusTooManyRequests, done.Message)
	case done.Status == ipc.StatusRefused && done.Reason == ipc.ReasonBusy:
		w.Header().Set("Retry-After", "10")
		fail(w, http.StatusServiceUnavailable, done.Message)
	case done.Status == ipc.StatusRefused && done.Reason == ipc.ReasonDenied:
		fail(w, http.StatusForbidden, done.Message)
	default:
		log.Warn("page request failed", "message", done.Message)
		fail(w, http.StatusBadGateway, "the server could not answer")
	}
}

// countingReader counts what it reads, failing past left bytes while
// left is not negative.
type countingReader struct {
	r    io.Reader
	n    int64
	left int64
}

var errWebHeader = errors.New("answer header too large")

func (c *countingReader) Read(p []byte) (int, error) {
	if c.left == 0 {
		return 0, errWebHeader
	}
	if c.left > 0 && int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.left > 0 {
		c.left -= int64(n)
	}
	return n, err
}
