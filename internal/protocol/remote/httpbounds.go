package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// maxRedirects bounds the redirects followed for the advertisement.
const maxRedirects = 5

// newHTTPClient returns the client of an HTTP transport: the default
// transport's settings (proxies from the environment), and redirects
// followed only for the first
// GET, to the same host and port, at most maxRedirects times, as C
// Git's http.followRedirects=initial, and never from https to http. An
// upstream cannot send the fetch to a host, port or scheme its URL
// does not name (a service of the network gotd runs in).
func newHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	return &http.Client{Transport: t, CheckRedirect: checkRedirect}
}

// errRedirect is what checkRedirect refuses: the response Do returns
// with it wraps the redirect's location, which is the upstream's text.
type errRedirect struct{ why string }

func (e *errRedirect) Error() string { return "redirect refused: " + e.why }

func checkRedirect(req *http.Request, via []*http.Request) error {
	first := via[0]
	switch {
	case len(via) > maxRedirects:
		return &errRedirect{fmt.Sprintf("more than %d redirects", maxRedirects)}
	case first.Method != http.MethodGet:
		return &errRedirect{"a command's response is not followed"}
	case req.URL.Host != first.URL.Host:
		return &errRedirect{"to another host or port"}
	case req.URL.Scheme != first.URL.Scheme && first.URL.Scheme != "http":
		return &errRedirect{"from https to http"}
	}
	return nil
}

// httpError is the error of a request that got no response: a refused
// redirect, or the request cancelled because no response came within
// ioTimeout (timedOut), said as such without the upstream's text.
func httpError(err error, timedOut bool, ioTimeout time.Duration) error {
	var re *errRedirect
	switch {
	case errors.As(err, &re):
		return fmt.Errorf("%w: %v", ErrUpstream, re)
	case timedOut:
		return fmt.Errorf("%w: no response for %v", ErrUpstream, ioTimeout)
	}
	return fmt.Errorf("remote: %w", err)
}

// idleBody is a response body each Read of which must return within
// timeout: a timer armed for the Read cancels the request, and the
// Read's error says why. An upstream that sends nothing, or a byte now
// and then, cannot hold a fetch beyond its I/O timeout per read.
type idleBody struct {
	rc      io.ReadCloser
	timeout time.Duration
	timer   *time.Timer
	cancel  context.CancelFunc
	fired   atomic.Bool
}

func newIdleBody(rc io.ReadCloser, timeout time.Duration, cancel context.CancelFunc) *idleBody {
	b := &idleBody{rc: rc, timeout: timeout, cancel: cancel}
	b.timer = time.AfterFunc(timeout, func() {
		b.fired.Store(true)
		cancel()
	})
	b.timer.Stop()
	return b
}

func (b *idleBody) Read(p []byte) (int, error) {
	b.timer.Reset(b.timeout)
	n, err := b.rc.Read(p)
	b.timer.Stop()
	if err != nil && b.fired.Load() {
		return n, fmt.Errorf("%w: nothing received for %v", ErrUpstream, b.timeout)
	}
	return n, err
}

func (b *idleBody) Close() error {
	b.timer.Stop()
	err := b.rc.Close()
	b.cancel()
	return err
}

// sendingBody is a request's body that resets timer as it is read: the
// transport reads it as it sends it, so the timer runs out only when
// nothing was sent for timeout. Once stop is called (the response has
// come) it leaves the timer alone: the transport may still be reading it.
type sendingBody struct {
	io.ReadCloser
	timeout time.Duration
	mu      sync.Mutex
	timer   *time.Timer // nil once stopped
}

func (b *sendingBody) Read(p []byte) (int, error) {
	b.reset()
	n, err := b.ReadCloser.Read(p)
	b.reset()
	return n, err
}

func (b *sendingBody) reset() {
	b.mu.Lock()
	if b.timer != nil {
		b.timer.Reset(b.timeout)
	}
	b.mu.Unlock()
}

// stop stops the timer for good.
func (b *sendingBody) stop() {
	b.mu.Lock()
	b.timer.Stop()
	b.timer = nil
	b.mu.Unlock()
}
