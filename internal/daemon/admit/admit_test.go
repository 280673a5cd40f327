package admit

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestGate checks the caps on pending connections: the total is hard,
// a key may hold more than its share while there is room, once full a
// newcomer evicts the oldest connection of the key that holds the most
// if it is over its share, a release frees the place once, and a
// refused connection takes none.
func TestGate(t *testing.T) {
	var g Gate
	if _, why, _ := g.Enter("a", nil); why != OverTotal {
		t.Fatalf("zero Gate: got %q; want %q", why, OverTotal)
	}
	g.SetLimits(4, 1)
	closed, entered := map[string]int{}, map[string]int{}
	enter := func(key, wantWhy, wantEvicted string) func() {
		t.Helper()
		name := fmt.Sprintf("%s%d", key, entered[key])
		entered[key]++
		release, why, evicted := g.Enter(key, func() { closed[name]++ })
		if why != wantWhy || evicted != wantEvicted {
			t.Fatalf("Enter(%q) = %q, evicted %q; want %q, evicted %q", key, why, evicted, wantWhy, wantEvicted)
		}
		return release
	}
	pending := func(key string, wantTotal, wantKey int) {
		t.Helper()
		if total, n := g.Pending(key); total != wantTotal || n != wantKey {
			t.Fatalf("Pending(%q) = %d, %d; want %d, %d", key, total, n, wantTotal, wantKey)
		}
	}
	a0 := enter("a", "", "")
	a0()
	a0() // once only
	pending("a", 0, 0)
	a1 := enter("a", "", "") // a burst from a: admitted while there is room
	enter("a", "", "")
	enter("a", "", "")
	enter("a", "", "")
	pending("a", 4, 4)
	enter("a", OverKey, "") // full, and a is the largest holder
	enter("b", "", "a")     // b takes the place of a's oldest
	if closed["a1"] != 1 {
		t.Fatalf("evictions: %v; want a1 closed once", closed)
	}
	a1() // after its eviction: does nothing
	pending("a", 4, 3)
	enter("c", "", "a") // a still holds most, over its share
	pending("b", 4, 1)
	enter("d", "", "a")       // a holds 2, d none
	enter("e", OverTotal, "") // every key holds its share
	enter("b", OverKey, "")   // b holds its share
	if closed["a2"] != 1 || closed["a3"] != 1 || closed["a4"] != 0 || closed["b0"] != 0 || len(closed) != 3 {
		t.Errorf("evictions: %v; want a1, a2 and a3 only", closed)
	}
	pending("a", 4, 1)

	// Sources that each hold their share still make room for a
	// newcomer (a stranger's finding: 4 addresses holding 2 each of 8
	// places kept everyone else out).
	var k Gate
	k.SetLimits(4, 2)
	for _, key := range []string{"x", "x", "y", "y"} {
		k.Enter(key, func() {})
	}
	if _, why, evicted := k.Enter("z", func() {}); why != "" || evicted != "x" {
		t.Errorf("newcomer among sources at their share: got %q, evicted %q; want admitted in x's oldest place", why, evicted)
	}
	if _, why, _ := k.Enter("x", func() {}); why != OverTotal {
		t.Errorf("x back for its place: got %q; want %q (y holds no more than x would)", why, OverTotal)
	}

	// Connections that cannot be evicted keep their place.
	var h Gate
	h.SetLimits(2, 1)
	h.Enter("x", nil)
	h.Enter("x", nil)
	if _, why, evicted := h.Enter("y", func() {}); why != OverTotal || evicted != "" {
		t.Errorf("over connections that cannot be evicted: got %q, evicted %q; want %q", why, evicted, OverTotal)
	}
}

// TestGateConcurrent enters, leaves and evicts from many goroutines:
// the count never passes the total and ends at zero.
func TestGateConcurrent(t *testing.T) {
	var g Gate
	g.SetLimits(10, 3)
	var wg sync.WaitGroup
	var mu sync.Mutex
	over := 0
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := string(rune('a' + i%5))
			for range 200 {
				release, why, _ := g.Enter(key, func() {})
				if why != "" {
					continue
				}
				if total, _ := g.Pending(key); total > 10 {
					mu.Lock()
					over++
					mu.Unlock()
				}
				release()
			}
		}()
	}
	wg.Wait()
	if total, _ := g.Pending("a"); total != 0 || over != 0 {
		t.Fatalf("got %d pending at the end and %d times over the total; want 0, 0", total, over)
	}
}

func TestAddressKey(t *testing.T) {
	for _, c := range []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 9418}, "192.0.2.7"},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.7"), Port: 1}, "192.0.2.7"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:3:4:5:6"), Port: 22}, "2001:db8:1:2::/64"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:ffff::1"), Port: 23}, "2001:db8:1:2::/64"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:3::1"), Port: 23}, "2001:db8:1:3::/64"},
		{&net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 80, Zone: "eth0"}, "fe80::/64"},
		{&net.UnixAddr{Name: "@", Net: "unix"}, "@"},
	} {
		if got := AddressKey(c.addr); got != c.want {
			t.Errorf("AddressKey(%v) = %q; want %q", c.addr, got, c.want)
		}
	}
}

// syncBuffer is a log destination safe for the summary's timers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Split(strings.TrimSpace(b.b.String()), "\n")
}

// TestSummary floods a Summary with 10,000 events of two kinds: the log
// has the first of each at once and then one line per kind and
// interval, naming the source with the most.
func TestSummary(t *testing.T) {
	var buf syncBuffer
	s := &Summary{Log: slog.New(slog.NewTextHandler(&buf, nil)), Interval: 100 * time.Millisecond, Level: slog.LevelWarn}
	for i := range 10000 {
		src := "192.0.2.1"
		if i%10 == 0 {
			src = "198.51.100." + string(rune('0'+i%7))
		}
		s.Add("refused", src)
		if i%4 == 0 {
			s.Add("timed out", "2001:db8::/64")
		}
	}
	lines := buf.lines()
	if len(lines) != 2 {
		t.Fatalf("at once: got %d lines; want 2 (the first of each kind):\n%s", len(lines), strings.Join(lines, "\n"))
	}
	time.Sleep(350 * time.Millisecond) // the window ends, the next is empty
	lines = buf.lines()
	if len(lines) != 4 {
		t.Fatalf("got %d lines; want 4:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	var refused, timedOut string
	for _, l := range lines[2:] {
		switch {
		case strings.Contains(l, "msg=refused"):
			refused = l
		case strings.Contains(l, `msg="timed out"`):
			timedOut = l
		}
	}
	for _, c := range []struct{ line, want string }{
		{refused, "count=9999 sources=8 top=192.0.2.1 top_count=9000"},
		{timedOut, "count=2499 sources=1 top=2001:db8::/64 top_count=2499"},
	} {
		if !strings.Contains(c.line, c.want) || !strings.Contains(c.line, "level=WARN") {
			t.Errorf("summary line %q; want it to hold %q at WARN", c.line, c.want)
		}
	}
	// Quiet again: the next event is said at once.
	s.Add("refused", "192.0.2.9")
	if n := len(buf.lines()); n != 5 {
		t.Errorf("after a quiet window: got %d lines; want 5", n)
	}
}

// TestSummarySources floods a Summary from more sources than it names:
// the first event keeps its attributes, the rest are counted, and the
// sources it tells apart stay bounded.
func TestSummarySources(t *testing.T) {
	var buf syncBuffer
	s := &Summary{Log: slog.New(slog.NewTextHandler(&buf, nil)), Interval: 2 * time.Second}
	const n = maxSources + 1000
	for i := range n {
		s.Add("bad request", fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), "err", "EOF")
	}
	s.mu.Lock()
	named, others := len(s.kinds["bad request"].sources), s.kinds["bad request"].others
	s.mu.Unlock()
	if named != maxSources || others != n-1-maxSources {
		t.Errorf("got %d sources named and %d events of others; want %d and %d", named, others, maxSources, n-1-maxSources)
	}
	time.Sleep(2500 * time.Millisecond)
	lines := buf.lines()
	if len(lines) != 2 {
		t.Fatalf("got %d lines; want 2:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	if !strings.Contains(lines[0], "source=10.0.0.0 err=EOF") || strings.Contains(lines[1], "err=") {
		t.Errorf("attributes: got %q and %q; want them on the first line only", lines[0], lines[1])
	}
	if want := fmt.Sprintf("count=%d sources=%d", n-1, maxSources+1); !strings.Contains(lines[1], want) {
		t.Errorf("summary %q; want it to hold %q", lines[1], want)
	}
}
