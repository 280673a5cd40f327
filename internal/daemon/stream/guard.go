package stream

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"gotd/internal/daemon/ipc"
	"gotd/internal/protocol/wire"
)

// Limits bound the time a client may take over its stream. Every
// process that touches the stream (session, repo_write)
// applies the same limits, so that none of them can be held longer
// than the others. Zero fields bound nothing.
type Limits struct {
	// Timeout bounds each wait on the client: a read with nothing to
	// read, a write the client does not drain.
	Timeout time.Duration
	// Deadline ends the client's time whatever it is doing. The
	// parent fixes it when the client connects, so it is the same
	// instant in every process of the client.
	Deadline time.Time
	// MinBytes must move in each direction in every Interval the
	// server spends waiting on the client in that direction. The
	// measure of a direction starts over when the other direction
	// moves (the client answers what it was sent, or the server
	// answers the client), and, for reads only, after a whole
	// Interval without a byte: a client may think before its next
	// request, and a silence is what Timeout bounds.
	MinBytes int64
	Interval time.Duration
}

// Errors of a guarded stream, for callers that branch on them. The
// error returned wraps one of them in a *wire.Error whose message may
// be sent to the client.
var (
	ErrTimeout  = errors.New("stream: client idle for too long")
	ErrDeadline = errors.New("stream: request deadline passed")
	ErrTooSlow  = errors.New("stream: transfer too slow")
)

// writeGrace is how long past the deadline a write may still go, so
// that the client can be told why its request ends.
const writeGrace = 2 * time.Second

// Reader reads a client's stream within Limits. It is not safe for
// concurrent reads.
type Reader struct {
	f   *os.File
	tcp bool
	m   meter
}

// Writer writes a client's stream within Limits. It is not safe for
// concurrent writes.
type Writer struct {
	f *os.File
	m meter
}

// Guard returns a reader of in and a writer of out (which may be the
// same file, a socket) that hold the client to l. Each direction
// counts the bytes it moves, and restarts the other's measure when
// it moves some. in and out must be non-blocking (ipc.ClientFile), or
// deadlines do nothing. When in is a TCP socket the reader also
// acknowledges what it receives at once instead of after the kernel's
// delayed-ACK timer: a client whose request spans several small writes
// (git sends a v2 command one packet at a time) otherwise waits up to
// 40 ms on its Nagle algorithm before the second of them leaves, on
// every request: most of the time an ls-remote takes. Either may be nil
// for a process that only reads or only writes the stream.
func Guard(in, out *os.File, l Limits) (*Reader, *Writer) {
	var r *Reader
	var w *Writer
	var read, written atomic.Int64
	if in != nil {
		r = &Reader{f: in, tcp: isTCP(in), m: meter{lim: l, idleOK: true, mine: &read, other: &written}}
		if r.tcp {
			AckNow(in)
		}
	}
	if out != nil {
		w = &Writer{f: out, m: meter{lim: l, mine: &written, other: &read}}
	}
	return r, w
}

// Read reads into p within the limits. A read of nothing for Timeout,
// past the deadline or too slow ends the stream: that read and every
// later one return the error.
func (r *Reader) Read(p []byte) (int, error) {
	if r.m.err != nil {
		return 0, r.m.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	opStart := time.Now()
	for {
		now := time.Now()
		r.m.begin()
		dl, cause := r.m.deadline(now, opStart, 0)
		if cause != nil {
			return 0, r.m.fail(cause, true)
		}
		r.f.SetReadDeadline(dl) // an error means no deadlines: read anyway
		n, err := r.f.Read(p)
		if r.tcp {
			// The kernel leaves quick-ACK mode by itself: ask again.
			AckNow(r.f)
		}
		if jerr := r.m.moved(now, time.Now(), n); jerr != nil {
			return n, r.m.fail(jerr, true)
		}
		if n > 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
			return n, err
		}
		// The deadline was the measure's: judged and passed, wait on.
	}
}

// Write writes p within the limits: Timeout without progress, the
// deadline (and a short grace after it, for the message that tells the
// client why) or too slow a reader ends the stream.
func (w *Writer) Write(p []byte) (int, error) {
	done := 0
	err := w.attempts(func() (int, error, bool) {
		n, err := w.f.Write(p[done:])
		done += n
		return n, err, done == len(p)
	})
	return done, err
}

// attempts runs attempt, which writes some of what is to be written
// and says whether all is, until all is, with a deadline on each try
// that is the nearest of the limits.
func (w *Writer) attempts(attempt func() (int, error, bool)) error {
	if w.m.err != nil {
		return w.m.err
	}
	progress := time.Now()
	for {
		now := time.Now()
		w.m.begin()
		dl, cause := w.m.deadline(now, progress, writeGrace)
		if cause != nil {
			return w.m.fail(cause, false)
		}
		w.f.SetWriteDeadline(dl)
		n, err, all := attempt()
		end := time.Now()
		if jerr := w.m.moved(now, end, n); jerr != nil {
			return w.m.fail(jerr, false)
		}
		if n > 0 {
			progress = end
		}
		switch {
		case all:
			return nil
		case err != nil && !errors.Is(err, os.ErrDeadlineExceeded):
			return err
		}
	}
}

// meter is one direction's account of the time spent waiting on the
// client and of the bytes moved meanwhile.
type meter struct {
	lim Limits
	// idleOK: an interval whose second half passed without a byte is
	// not judged (the client is thinking, which the per-read timeout
	// bounds): a few bytes at its start, then silence, were judged
	// too slow, depending on when the interval began.
	idleOK bool
	// mine and other count the bytes moved in this direction and in
	// the other; seen is other when the measure started.
	mine, other *atomic.Int64
	seen        int64
	// clock is the time spent waiting; start and last are times on
	// it: the measure's start, and when bytes last moved.
	clock, start, last time.Duration
	on                 bool
	bytes              int64
	err                error
}

// begin starts a measure if none runs, or starts it over if the other
// direction has moved since.
func (m *meter) begin() {
	if o := m.other.Load(); !m.on || o != m.seen {
		m.on, m.seen, m.start, m.last, m.bytes = true, o, m.clock, m.clock, 0
	}
}

// deadline returns the deadline of an attempt begun at now, waiting
// since since: the nearest of the request deadline (with grace
// added), since plus the timeout and the end of the measure's
// interval; cause is the error when one of them has already passed.
func (m *meter) deadline(now, since time.Time, grace time.Duration) (dl time.Time, cause error) {
	l := m.lim
	if !l.Deadline.IsZero() {
		dl = l.Deadline.Add(grace)
		if !now.Before(dl) {
			return dl, ErrDeadline
		}
	}
	if l.Timeout > 0 {
		t := since.Add(l.Timeout)
		if !now.Before(t) {
			return t, ErrTimeout
		}
		dl = earliest(dl, t)
	}
	if l.MinBytes > 0 && l.Interval > 0 {
		dl = earliest(dl, now.Add(m.start+l.Interval-m.clock))
	}
	return dl, nil
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

// moved accounts an attempt from t0 to t1 that moved n bytes, and
// judges the measure when its interval is over.
func (m *meter) moved(t0, t1 time.Time, n int) error {
	m.clock += t1.Sub(t0)
	if n > 0 {
		m.mine.Add(int64(n))
		m.bytes += int64(n)
		m.last = m.clock
	}
	l := m.lim
	if l.MinBytes <= 0 || l.Interval <= 0 || m.clock-m.start < l.Interval {
		return nil
	}
	if m.bytes < l.MinBytes && !(m.idleOK && m.clock-m.last >= l.Interval/2) {
		return ErrTooSlow
	}
	m.start, m.last, m.bytes = m.clock, m.clock, 0
	return nil
}

// fail makes cause the stream's error: every later call returns it.
func (m *meter) fail(cause error, reading bool) error {
	l := m.lim
	var msg string
	switch {
	case cause == ErrDeadline:
		msg = "request deadline passed"
	case cause == ErrTimeout && reading:
		msg = "timeout reading the request"
	case cause == ErrTimeout:
		msg = "timeout sending to the client"
	case reading:
		msg = fmt.Sprintf("transfer too slow: fewer than %d bytes received in %v", l.MinBytes, l.Interval)
	default:
		msg = fmt.Sprintf("transfer too slow: fewer than %d bytes read by the client in %v", l.MinBytes, l.Interval)
	}
	m.err = &wire.Error{Msg: msg, Err: cause}
	return m.err
}

// Bytes is how many bytes r has read; 0 for a nil r.
func (r *Reader) Bytes() int64 {
	if r == nil {
		return 0
	}
	return r.m.mine.Load()
}

// Bytes is how many bytes w has written; 0 for a nil w.
func (w *Writer) Bytes() int64 {
	if w == nil {
		return 0
	}
	return w.m.mine.Load()
}

// SyscallConn is the stream's descriptor, for socket options
// (TCP_CORK). What is written through it escapes the limits: write
// with Write or SendFile.
func (w *Writer) SyscallConn() (syscall.RawConn, error) { return w.f.SyscallConn() }

// SendFile writes n bytes of src from off within the limits, from the
// page cache to the stream without passing through this process where
// the system allows (sendfile(2)), else through a buffer.
func (w *Writer) SendFile(src *os.File, off, n int64) error {
	if sent, err := w.sendFile(src, off, n); sent > 0 || !errors.Is(err, errNoSendfile) {
		return err
	}
	_, err := io.CopyBuffer(w, io.NewSectionReader(src, off, n), make([]byte, 64<<10))
	return err
}

// errNoSendfile is sendFile's answer where the system cannot send a
// file to this stream.
var errNoSendfile = errors.New("stream: no sendfile")

var _ io.Reader = (*Reader)(nil)
var _ io.Writer = (*Writer)(nil)

// StartLimits are the limits a client's Start message sets.
func StartLimits(s *ipc.Start) Limits {
	l := Limits{
		Timeout:  time.Duration(s.Timeout) * time.Second,
		MinBytes: int64(s.MinRate),
		Interval: time.Duration(s.RateInterval) * time.Second,
	}
	if s.Deadline != 0 {
		l.Deadline = time.Unix(0, s.Deadline)
	}
	return l
}
