// Package metrics is gotd's metrics process: it serves the parent's
// counters in the Prometheus text exposition format at /metrics, and a
// health check at /healthz, on the sockets of the "listen metrics"
// lines. It holds no files and makes no sockets: it accepts on the
// sockets it was given and asks the parent for a snapshot on its
// channel (MetricsScrape, Metrics) for each request. The parent counts
// what it sees with a Recorder.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"gotd/internal/daemon/ipc"
	"gotd/internal/daemon/msg"
)

// Bounds of the HTTP server: scrapes are small requests from a few
// monitoring systems, anything else is refused early.
const (
	maxConns       = 16               // connections at once; more wait in the kernel's backlog
	maxHeaderBytes = 8 << 10          // a request's header
	headerTimeout  = 5 * time.Second  // to read a request's header
	writeTimeout   = 10 * time.Second // to answer it
	idleTimeout    = 30 * time.Second // between requests on a connection
	askTimeout     = 5 * time.Second  // for the parent's answer
)

// Main serves ls until the parent's channel closes or a listener
// fails. version is gotd's release, for gotd_build_info.
func Main(ctx context.Context, log *slog.Logger, parent *msg.Conn, ls []net.Listener, version string) error {
	a := newAsker(parent)
	failed := make(chan error, len(ls)+1)
	go func() { failed <- a.receive() }()
	srv := &http.Server{
		Handler:           &Handler{Snapshot: a.snapshot, Version: version, Log: log},
		ReadHeaderTimeout: headerTimeout,
		ReadTimeout:       headerTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		// What net/http would print (a malformed request, a TLS
		// handshake on a plain port) is the client's doing: debug only.
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	sem := make(chan struct{}, maxConns)
	for _, l := range ls {
		log.Debug("serving metrics", "address", l.Addr().String())
		go func() { failed <- srv.Serve(&limitListener{Listener: l, sem: sem}) }()
	}
	err := <-failed
	srv.Close()
	return err
}

// Handler routes the metrics listener's requests: GET or HEAD of
// /metrics (the exposition) and /healthz ("ok" while the daemon takes
// clients); any other path is 404, any other method 405. It never
// echoes what the client sent.
type Handler struct {
	// Snapshot asks the parent for its counts; an error is answered
	// 503.
	Snapshot func(context.Context) (*ipc.Metrics, error)
	Version  string
	Log      *slog.Logger
	// failing: the last question went unanswered, which was logged;
	// the next failures are not, until one is answered.
	failing atomic.Bool
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if r.URL.Path != "/metrics" && r.URL.Path != "/healthz" {
		text(w, http.StatusNotFound, "not found\n")
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		text(w, http.StatusMethodNotAllowed, "method not allowed\n")
		return
	}
	m, err := h.Snapshot(r.Context())
	switch {
	case err != nil && r.Context().Err() != nil:
		return // the client is gone
	case err != nil:
		if !h.failing.Swap(true) {
			h.Log.Warn("no answer from the parent: answering 503 until there is one", "err", err)
		}
		text(w, http.StatusServiceUnavailable, "unavailable\n")
		return
	}
	if h.failing.Swap(false) {
		h.Log.Info("the parent answers again")
	}
	if r.URL.Path == "/healthz" {
		if !m.Serving {
			text(w, http.StatusServiceUnavailable, "stopping\n")
			return
		}
		text(w, http.StatusOK, "ok\n")
		return
	}
	w.Header().Set("Content-Type", ContentType)
	w.WriteHeader(http.StatusOK)
	w.Write(Expose(m, h.Version))
}

// text answers status with a short fixed body.
func text(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	w.Write([]byte(body))
}

// asker asks the parent for snapshots, one question at a time: callers
// that waited while a question was out share its answer, so that many
// scrapes at once cost the parent one.
type asker struct {
	parent  *msg.Conn
	replies chan *ipc.Metrics
	mu      sync.Mutex // held while a question is out
	seq     uint32
	last    *ipc.Metrics
	lastAt  time.Time // when last was asked for
}

func newAsker(parent *msg.Conn) *asker {
	return &asker{parent: parent, replies: make(chan *ipc.Metrics, 4)}
}

// errNoAnswer: the parent did not answer in time.
var errNoAnswer = errors.New("metrics: the parent did not answer")

// snapshot returns a snapshot asked for after the call began.
func (a *asker) snapshot(ctx context.Context) (*ipc.Metrics, error) {
	called := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.last != nil && !a.lastAt.Before(called) {
		return a.last, nil
	}
	a.seq++
	asked := time.Now()
	if err := ipc.Send(a.parent, &ipc.MetricsScrape{Seq: a.seq}, nil); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	timeout := time.NewTimer(askTimeout)
	defer timeout.Stop()
	for {
		select {
		case m := <-a.replies:
			if m.Seq != a.seq {
				continue // the late answer to a question given up
			}
			a.last, a.lastAt = m, asked
			return m, nil
		case <-timeout.C:
			return nil, errNoAnswer
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// receive reads the parent's answers until its channel closes or it
// sends something else, and returns why it stopped.
func (a *asker) receive() error {
	for {
		var m ipc.Metrics
		if _, err := ipc.Recv(a.parent, &m, false); err != nil {
			return fmt.Errorf("metrics: parent: %w", err)
		}
		// The newest answer always goes in: when answers to questions
		// given up fill the channel, the oldest is dropped.
		for sent := false; !sent; {
			select {
			case a.replies <- &m:
				sent = true
			default:
				select {
				case <-a.replies:
				default:
				}
			}
		}
	}
}

// limitListener accepts a connection only while fewer than cap(sem)
// are open.
type limitListener struct {
	net.Listener
	sem chan struct{}
}

func (l *limitListener) Accept() (net.Conn, error) {
	l.sem <- struct{}{}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitConn{Conn: c, release: sync.OnceFunc(func() { <-l.sem })}, nil
}

type limitConn struct {
	net.Conn
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}
