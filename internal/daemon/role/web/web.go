// Package web is gotd's web role: it renders the pages of the
// repositories one class of visitor may read (anonymous visitors, or
// one account) with package internal/web. The parent passes it one
// stream per page request, which httpd holds the other end of; the
// request arrives on it as HTTP/1.1 and the answer leaves on it. It
// reads only those repositories, writes nothing and has no network.
package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"gotd/internal/daemon/admit"
	"gotd/internal/daemon/ipc"
	"gotd/internal/daemon/msg"
	site "gotd/internal/web"
)

// Bounds of the requests httpd relays.
const (
	maxHeaderBytes = 64 << 10
	headerTimeout  = 10 * time.Second
	// maxStreams bounds the requests served at once, whatever they
	// are; more wait for their turn in the listener. Within it the
	// site's limits (limits) answer those over their bounds at once.
	maxStreams = 128
	// pageTimeout bounds the making of a page.
	pageTimeout = time.Minute
)

// limits are the site's limits: 32 pages made at once, the others
// waiting up to 30 s for their turn (50 visitors of blames of git.git,
// 0.7 s of CPU each, waited over 5 s on two cores; a page's place is
// held while it is made only, not sent); 16 downloads at once; 8 pages
// and 4 downloads of one address (an IPv6 /64) at once, so that
// neither a few visitors who read slowly or not at all nor one
// address's many requests hold every place.
var limits = site.Limits{Making: 32, MakeWait: 30 * time.Second, Downloads: 16, PagesPerAddress: 8, DownloadsPerAddress: 4}

// Setup is what ReadStart reads from the parent.
type Setup struct {
	Start ipc.WebStart
	Repos []ipc.WebRepo
}

// ReadStart reads the parent's WebStart and the WebRepo messages that
// follow it.
func ReadStart(parent *msg.Conn) (*Setup, error) {
	var s Setup
	if _, err := ipc.Recv(parent, &s.Start, false); err != nil {
		return nil, fmt.Errorf("web: start: %w", err)
	}
	for range s.Start.Repos {
		var r ipc.WebRepo
		if _, err := ipc.Recv(parent, &r, false); err != nil {
			return nil, fmt.Errorf("web: start: %w", err)
		}
		s.Repos = append(s.Repos, r)
	}
	return &s, nil
}

// Open opens the repositories of s; one that cannot be opened is left
// out, and logged. It returns the site and the directories it reads.
func Open(log *slog.Logger, s *Setup) (*site.Site, []string) {
	// A page has at most pageTimeout; a snapshot or a raw file the
	// request timeout, as a clone has.
	timeout := time.Duration(s.Start.Timeout) * time.Second
	st := &site.Site{Log: log, Timeout: min(timeout, pageTimeout), StreamTimeout: timeout, Account: s.Start.Account, Limits: limits}
	// Refusals are logged as counts per interval, not a line each.
	refusals := &admit.Summary{Log: log, Level: slog.LevelWarn}
	st.Limits.Refused = func(why, address string) { refusals.Add(why, address) }
	var dirs []string
	for _, r := range s.Repos {
		rp, err := site.Open(r.Name, r.Path, r.Description, r.Hidden)
		if err != nil {
			log.Warn("repository left out of the pages", "repo", r.Name, "err", err)
			continue
		}
		st.Repos = append(st.Repos, rp)
		dirs = append(dirs, rp.R.GitDir)
	}
	for _, t := range s.Start.Transports {
		st.Transports = append(st.Transports, site.Transport{Scheme: t.Scheme, Host: t.Host, Port: int(t.Port), User: t.User})
	}
	st.Init()
	return st, dirs
}

// Main serves the requests the parent passes until its channel
// closes. An answer must leave at the minimum rate of start, or the
// request is ended.
func Main(ctx context.Context, log *slog.Logger, parent *msg.Conn, st *site.Site, start *ipc.WebStart) error {
	l := &streams{conns: make(chan net.Conn), done: make(chan struct{}),
		rate: int64(start.MinRate), interval: time.Duration(start.RateInterval) * time.Second}
	hs := &http.Server{
		Handler:           st,
		ReadHeaderTimeout: headerTimeout,
		WriteTimeout:      max(st.Timeout, st.StreamTimeout) + headerTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(l) }()
	for {
		var m ipc.WebRequest
		f, err := ipc.Recv(parent, &m, true)
		if err != nil {
			l.Close()
			hs.Close()
			if errors.Is(err, ipc.ErrUnexpected) || errors.Is(err, ipc.ErrNoFile) || errors.Is(err, ipc.ErrFile) {
				return fmt.Errorf("web: %w", err)
			}
			return nil // the parent is gone, or ends this process
		}
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			log.Error("request stream", "client", m.Client, "err", err)
			continue
		}
		select {
		case l.conns <- c:
		case err := <-served:
			c.Close()
			return fmt.Errorf("web: %w", err)
		}
	}
}

// streams is the listener of the request streams the parent passes.
type streams struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	sem   chan struct{}
	// rate bytes of an answer must leave in every interval (0: no
	// bound).
	rate     int64
	interval time.Duration
}

// Accept returns the next stream, once fewer than maxStreams are
// being served.
func (l *streams) Accept() (net.Conn, error) {
	l.once.Do(func() { l.sem = make(chan struct{}, maxStreams) })
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	select {
	case c := <-l.conns:
		sc := &slotConn{Conn: c, release: func() { <-l.sem }}
		sc.paced = site.PacedWriter{W: c, SetDeadline: c.SetWriteDeadline, Rate: l.rate, Interval: l.interval}
		return sc, nil
	case <-l.done:
		<-l.sem
		return nil, net.ErrClosed
	}
}

func (l *streams) Close() error {
	select {
	case <-l.done:
	default:
		close(l.done)
	}
	return nil
}

func (l *streams) Addr() net.Addr { return addr{} }

type addr struct{}

func (addr) Network() string { return "unix" }
func (addr) String() string  { return "parent" }

// slotConn gives its place back when it is closed, and writes at the
// minimum rate or fails: a visitor who stops reading a download (or
// a page) holds it one rate interval once the buffers between are
// full, not for the whole request timeout.
type slotConn struct {
	net.Conn
	once    sync.Once
	release func()
	paced   site.PacedWriter
}

func (c *slotConn) Write(p []byte) (int, error) { return c.paced.Write(p) }

// SetWriteDeadline and SetDeadline set the latest any write may end
// (the server's write timeout), which the pace's deadlines do not
// pass.
func (c *slotConn) SetWriteDeadline(t time.Time) error {
	c.paced.Deadline = t
	return c.Conn.SetWriteDeadline(t)
}

func (c *slotConn) SetDeadline(t time.Time) error {
	c.paced.Deadline = t
	return c.Conn.SetDeadline(t)
}

func (c *slotConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}
