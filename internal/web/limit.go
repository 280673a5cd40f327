package web

import (
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// RemoteHeader is the header of a request httpd relays that names
// the visitor's address as its limits count it (an IPv4 address, or an
// IPv6 /64); httpd sets it and passes no browser's.
const RemoteHeader = "X-Gotd-Remote"

// Limits bound the requests a Site serves at once, so that slow or
// stalled readers cannot hold every place: pages (whose making is
// bounded by the page deadline, and whose sending is paced by the
// caller) and downloads (raw files and snapshots, made while they are
// sent, for as long as the stream timeout) are counted apart, in all
// and per remote address. A request over a limit is answered 503 at
// once, with a Retry-After. Zero fields bound nothing.
type Limits struct {
	// Making is the pages made at once; a page waits up to MakeWait
	// for its turn (a queue of pages being made moves by itself, at
	// the speed of the CPU), then is refused. Its place is given back
	// once the page is made, before it is sent.
	Making   int
	MakeWait time.Duration
	// Downloads is the raw files and snapshots sent at once.
	Downloads int
	// PagesPerAddress and DownloadsPerAddress are the pages (being
	// made or sent) and downloads of one remote address at once.
	PagesPerAddress, DownloadsPerAddress int
	// Refused, if set, is told of each refusal: why, and the address.
	Refused func(why, address string)
}

// Why a request is refused, as Limits.Refused is told.
const (
	BusyPages            = "web page refused: too many pages at once"
	BusyDownloads        = "web download refused: too many downloads at once"
	BusyAddressPages     = "web page refused: too many pages from one address"
	BusyAddressDownloads = "web download refused: too many downloads from one address"
)

const (
	// retryAfter is a refusal's Retry-After, in seconds.
	retryAfter = 10
	// maxTrackedAddresses bounds the addresses counted at once; past
	// it newcomers are refused (the totals bound those counted).
	maxTrackedAddresses = 1 << 16
)

// limiter counts what Limits bound.
type limiter struct {
	l       Limits
	making  chan struct{} // nil: no bound
	mu      sync.Mutex
	dls     int
	perAddr map[string]*[2]int // pages, downloads
}

func newLimiter(l Limits) *limiter {
	lm := &limiter{l: l, perAddr: map[string]*[2]int{}}
	if l.Making > 0 {
		lm.making = make(chan struct{}, l.Making)
	}
	return lm
}

// enter counts a request of address, a download or a page. It returns
// the function that gives its places back (called once, when the
// request is done), or why it is refused.
func (lm *limiter) enter(address string, download bool) (leave func(), why string) {
	lm.mu.Lock()
	defer lm.mu.Unlock()
	kind, perAddr := 0, lm.l.PagesPerAddress
	if download {
		kind, perAddr = 1, lm.l.DownloadsPerAddress
	}
	c := lm.perAddr[address]
	switch {
	case perAddr > 0 && c != nil && c[kind] >= perAddr:
		if download {
			return nil, BusyAddressDownloads
		}
		return nil, BusyAddressPages
	case download && lm.l.Downloads > 0 && lm.dls >= lm.l.Downloads:
		return nil, BusyDownloads
	case c == nil && len(lm.perAddr) >= maxTrackedAddresses:
		return nil, BusyPages
	}
	if c == nil {
		c = new([2]int)
		lm.perAddr[address] = c
	}
	c[kind]++
	if download {
		lm.dls++
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			lm.mu.Lock()
			defer lm.mu.Unlock()
			if c[kind]--; c[0] == 0 && c[1] == 0 {
				delete(lm.perAddr, address)
			}
			if download {
				lm.dls--
			}
		})
	}, ""
}

// make waits up to MakeWait for a place to make a page. It returns the
// function that gives it back (called once), or false if none came.
func (lm *limiter) make(done <-chan struct{}) (func(), bool) {
	if lm.making == nil {
		return func() {}, true
	}
	select {
	case lm.making <- struct{}{}:
	default:
		t := time.NewTimer(lm.l.MakeWait)
		defer t.Stop()
		select {
		case lm.making <- struct{}{}:
		case <-t.C:
			return nil, false
		case <-done:
			return nil, false
		}
	}
	var once sync.Once
	return func() { once.Do(func() { <-lm.making }) }, true
}

// busy answers a refused request.
func (s *Site) busy(w http.ResponseWriter, r *http.Request, why string) {
	if s.Limits.Refused != nil {
		s.Limits.Refused(why, r.Header.Get(RemoteHeader))
	}
	w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	msg := "too many requests at once, try again later"
	switch why {
	case BusyDownloads:
		msg = "too many downloads at once, try again later"
	case BusyAddressPages, BusyAddressDownloads:
		msg = "too many requests from your address at once, try again later"
	}
	s.fail(w, http.StatusServiceUnavailable, msg)
}

// PacedWriter writes to W in pieces of at most Rate bytes, each of
// which must leave within Interval: SetDeadline is called before each
// with the earlier of now+Interval and Deadline. A reader that takes
// fewer than Rate bytes in an Interval (one that stalls, or reads a
// byte at a time) fails the write, which ends the answer. Rate 0
// writes as W does.
type PacedWriter struct {
	W           io.Writer
	SetDeadline func(time.Time) error
	Rate        int64
	Interval    time.Duration
	// Deadline, if not zero, is the latest any write may end.
	Deadline time.Time
}

func (p *PacedWriter) Write(b []byte) (int, error) {
	if p.Rate <= 0 || p.Interval <= 0 {
		return p.W.Write(b)
	}
	n := 0
	for len(b) > 0 {
		piece := b[:min(int64(len(b)), p.Rate)]
		dl := time.Now().Add(p.Interval)
		if !p.Deadline.IsZero() && p.Deadline.Before(dl) {
			dl = p.Deadline
		}
		if err := p.SetDeadline(dl); err != nil {
			return n, err
		}
		m, err := p.W.Write(piece)
		n += m
		if err != nil {
			return n, err
		}
		b = b[m:]
	}
	return n, nil
}
