// Package admit is what listen and the network front-ends share to
// admit connections they cannot yet tell from an attack: a Gate that
// counts the connections waiting for their first message (pending:
// accepted, not yet handshaken) per key (a uid, a remote address) and
// in all, and a Summary that logs refusals and floods as counts per
// interval instead of a line per connection.
package admit

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"sync"
	"time"
)

// Why a Gate refused a connection.
const (
	OverTotal = "too many pending connections"
	OverKey   = "too many pending connections from one source"
)

// Gate counts pending connections. The zero Gate refuses everything
// until SetLimits; its methods may be called from any goroutine.
type Gate struct {
	mu     sync.Mutex
	total  int // limits
	perKey int
	n      int
	count  map[string]int
}

// SetLimits sets the number of pending connections allowed in all and
// per key; connections already admitted keep their place.
func (g *Gate) SetLimits(total, perKey int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.total, g.perKey = total, perKey
}

// Enter counts a new pending connection of key. It returns "" and a
// release function, which the caller calls once when the connection is
// no longer pending (handshaken or closed; a second call does nothing),
// or why the connection is refused (OverTotal, OverKey): the caller
// closes it at once.
func (g *Gate) Enter(key string) (release func(), why string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.n >= g.total:
		return nil, OverTotal
	case g.count[key] >= g.perKey:
		return nil, OverKey
	}
	if g.count == nil {
		g.count = map[string]int{}
	}
	g.n++
	g.count[key]++
	var once sync.Once
	return func() { once.Do(func() { g.leave(key) }) }, ""
}

func (g *Gate) leave(key string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n--
	if g.count[key]--; g.count[key] <= 0 {
		delete(g.count, key)
	}
}

// Pending returns the number of pending connections in all and of key.
func (g *Gate) Pending(key string) (total, ofKey int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.n, g.count[key]
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
