// Package admit is what listen and the network front-ends share to
// admit connections they cannot yet tell from an attack: a Gate that
// counts the connections waiting for their first message (pending:
// accepted, not yet handshaken) in all and per key (a uid, a remote
// address), making room for newcomers by evicting a source that holds
// more than its share, and a Summary that logs refusals and floods as
// counts per interval instead of a line per connection.
package admit

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"sync"
	"time"
)

// Why a Gate refused or closed a connection.
const (
	OverTotal = "too many pending connections"
	OverKey   = "too many pending connections from one source"
)

// Gate counts pending connections, in all and per key (a uid, a
// remote address). The total is a hard cap. While there is room, a
// burst from one key (many clients behind one address, every OpenSSH
// user through gotsh) is admitted whole; once the Gate is full, a
// newcomer takes the place of the oldest pending connection of the key
// that holds the most, if that key holds at least two more than the
// newcomer's: the keys are evened out, so that neither one source nor
// many sources each holding a share can keep a newcomer out. The share
// per key only names the refusal of a key that holds it.
//
// The zero Gate refuses everything until SetLimits; its methods may be
// called from any goroutine.
type Gate struct {
	mu     sync.Mutex
	total  int // limits
	perKey int
	n      int
	keys   map[string]*holder
}

// holder is the pending connections of one key, oldest first.
type holder struct {
	key     string
	entries []*entry
}

// entry is one pending connection.
type entry struct {
	evict func() // closes the connection; nil if it cannot be evicted
	gone  bool   // released or evicted: no longer counted
}

// SetLimits sets the number of pending connections allowed in all and
// the share of each key when the Gate is full; connections already
// admitted keep their place.
func (g *Gate) SetLimits(total, perKey int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.total, g.perKey = total, perKey
}

// Enter counts a new pending connection of key, which evict closes
// (called at most once, from whichever goroutine made room, without
// the Gate's lock held; nil if the connection may not be evicted). It
// returns "" and a release function, which the caller calls once when
// the connection is no longer pending (handshaken or closed; a second
// call, or a call after an eviction, does nothing), or why the
// connection is refused (OverTotal, OverKey): the caller closes it at
// once. When Enter evicts another key's connection to make room, it
// reports that key as evicted ("" if none), for the caller's log.
func (g *Gate) Enter(key string, evict func()) (release func(), why, evicted string) {
	g.mu.Lock()
	if g.total <= 0 {
		g.mu.Unlock()
		return nil, OverTotal, ""
	}
	var victim *entry
	if g.n >= g.total {
		mine := 0
		if h := g.keys[key]; h != nil {
			mine = len(h.entries)
		}
		top := g.largest()
		if top == nil || top.key == key || len(top.entries) <= mine+1 {
			g.mu.Unlock()
			if mine >= g.perKey {
				return nil, OverKey, ""
			}
			return nil, OverTotal, ""
		}
		victim = top.remove(nil)
		if victim == nil {
			g.mu.Unlock()
			return nil, OverTotal, ""
		}
		g.n--
		evicted = top.key
		g.drop(top)
	}
	if g.keys == nil {
		g.keys = map[string]*holder{}
	}
	h := g.keys[key]
	if h == nil {
		h = &holder{key: key}
		g.keys[key] = h
	}
	e := &entry{evict: evict}
	h.entries = append(h.entries, e)
	g.n++
	g.mu.Unlock()
	if victim != nil {
		victim.evict()
	}
	return func() { g.leave(h, e) }, "", evicted
}

// largest returns the holder with the most pending connections that
// can be evicted (nil if none); called with g.mu held.
func (g *Gate) largest() *holder {
	var top *holder
	for _, h := range g.keys {
		if top == nil || len(h.entries) > len(top.entries) || len(h.entries) == len(top.entries) && h.key < top.key {
			if h.evictable() {
				top = h
			}
		}
	}
	return top
}

func (h *holder) evictable() bool {
	for _, e := range h.entries {
		if e.evict != nil {
			return true
		}
	}
	return false
}

// remove takes e out of h's entries, or if e is nil the oldest that
// can be evicted, and returns it (nil if there is none), marked gone.
func (h *holder) remove(e *entry) *entry {
	for i, x := range h.entries {
		if x == e || e == nil && x.evict != nil {
			h.entries = append(h.entries[:i], h.entries[i+1:]...)
			x.gone = true
			return x
		}
	}
	return nil
}

// drop forgets h once it holds nothing; called with g.mu held.
func (g *Gate) drop(h *holder) {
	if len(h.entries) == 0 && g.keys[h.key] == h {
		delete(g.keys, h.key)
	}
}

func (g *Gate) leave(h *holder, e *entry) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if e.gone {
		return
	}
	h.remove(e)
	g.n--
	g.drop(h)
}

// Pending returns the number of pending connections in all and of key.
func (g *Gate) Pending(key string) (total, ofKey int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if h := g.keys[key]; h != nil {
		ofKey = len(h.entries)
	}
	return g.n, ofKey
}

// AddressKey is the key a remote network address is counted under: an
// IPv4 address, or the /64 prefix of an IPv6 one (a single host or
// site is commonly given a whole /64). An address that does not parse
// is its own key.
func AddressKey(a net.Addr) string {
	s := a.String()
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return s
	}
	ip := ap.Addr().Unmap()
	if ip.Is4() {
		return ip.String()
	}
	p, _ := ip.WithZone("").Prefix(64)
	return p.String()
}

// Summary logs events of a few kinds (refusals, timeouts) without a
// line per event: the first event of a kind in a quiet period is
// logged at once, those that follow within Interval are counted and
// logged as one line per kind and interval: how many, from how many
// sources, and the source with the most.
type Summary struct {
	Log      *slog.Logger
	Interval time.Duration // 10 s if zero
	Level    slog.Level    // of the lines

	mu    sync.Mutex
	kinds map[string]*tally
}

// maxSources bounds the sources a tally tells apart in one interval;
// later ones are counted, not named.
const maxSources = 4096

type tally struct {
	n       int
	sources map[string]int
	others  int // events of sources past maxSources
}

// Add records one event of kind from source (an address, a uid);
// attrs (key-value pairs, as for slog) are logged with an event said at
// once, and dropped from those only counted.
func (s *Summary) Add(kind, source string, attrs ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.kinds == nil {
		s.kinds = map[string]*tally{}
	}
	t := s.kinds[kind]
	if t == nil {
		// Quiet until now: said at once, and a window opens in which
		// the kind is only counted.
		s.kinds[kind] = &tally{sources: map[string]int{}}
		s.Log.Log(context.Background(), s.Level, kind, append([]any{"source", source}, attrs...)...)
		time.AfterFunc(s.interval(), func() { s.flush(kind) })
		return
	}
	t.n++
	if _, ok := t.sources[source]; ok || len(t.sources) < maxSources {
		t.sources[source]++
	} else {
		t.others++
	}
}

func (s *Summary) interval() time.Duration {
	if s.Interval > 0 {
		return s.Interval
	}
	return 10 * time.Second
}

// flush logs the events of kind counted in the window that ends, and
// opens another if there were any; a window without events ends the
// summary, and the next event is said at once again.
func (s *Summary) flush(kind string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.kinds[kind]
	if t.n == 0 {
		delete(s.kinds, kind)
		return
	}
	top, most := topSource(t.sources)
	s.Log.Log(context.Background(), s.Level, kind, "count", t.n, "sources", len(t.sources)+min(t.others, 1), "top", top, "top_count", most,
		"interval", s.interval())
	s.kinds[kind] = &tally{sources: map[string]int{}}
	time.AfterFunc(s.interval(), func() { s.flush(kind) })
}

// topSource returns the source with the most events (the least such
// name, so that the choice does not depend on map order).
func topSource(sources map[string]int) (string, int) {
	names := make([]string, 0, len(sources))
	for k := range sources {
		names = append(names, k)
	}
	sort.Strings(names)
	top, most := "", 0
	for _, k := range names {
		if sources[k] > most {
			top, most = k, sources[k]
		}
	}
	return top, most
}

// acceptPause is how long Accept waits after a failed accept (most
// often out of descriptors) before it tries again: some connections
// close meanwhile.
const acceptPause = 100 * time.Millisecond

// Accept calls accept until it returns a connection, logging each
// failure in s and pausing after it; ok is false once the listener is
// closed.
func Accept[C any](accept func() (C, error), s *Summary) (c C, ok bool) {
	for {
		c, err := accept()
		if err == nil {
			return c, true
		}
		if errors.Is(err, net.ErrClosed) {
			return c, false
		}
		s.Add("accept failed", err.Error())
		time.Sleep(acceptPause)
	}
}
