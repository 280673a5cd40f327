package web

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"
)

// stalledWriter is a ResponseWriter whose visitor does not read: its
// writes block until release is closed.
type stalledWriter struct {
	h       http.Header
	code    int
	started chan struct{}
	release chan struct{}
	once    sync.Once
}

func newStalled() *stalledWriter {
	return &stalledWriter{h: http.Header{}, started: make(chan struct{}), release: make(chan struct{})}
}

func (w *stalledWriter) Header() http.Header { return w.h }
func (w *stalledWriter) WriteHeader(code int) {
	w.code = code
	w.once.Do(func() { close(w.started) })
}
func (w *stalledWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.WriteHeader(http.StatusOK)
	}
	<-w.release
	return len(p), nil
}

// getFrom serves url to a visitor of address with a recorder.
func getFrom(s *Site, url, address string) *http.Response {
	rec := httptest.NewRecorder()
	r := httptest.NewRequest("GET", url, nil)
	r.Header.Set(RemoteHeader, address)
	s.ServeHTTP(rec, r)
	return rec.Result()
}

// TestLimits holds downloads with visitors who do not read: another
// download of the same address, and one past the total, are refused
// at once with a Retry-After, and pages are still served; pages are
// bounded per address; every refusal is reported.
func TestLimits(t *testing.T) {
	bare := testRepo(t)
	r, err := Open("repo", bare, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	refused := map[string]int{}
	s := &Site{Repos: []*Repo{r}, Limits: Limits{Making: 4, MakeWait: time.Second, Downloads: 2, DownloadsPerAddress: 1, PagesPerAddress: 2,
		Refused: func(why, address string) {
			mu.Lock()
			defer mu.Unlock()
			refused[why+" "+address]++
		}}}
	s.Init()
	var wg sync.WaitGroup
	var held []*stalledWriter
	defer func() {
		for _, w := range held {
			close(w.release)
		}
		wg.Wait()
	}()
	hold := func(url, address string) {
		t.Helper()
		w := newStalled()
		req := httptest.NewRequest("GET", url, nil)
		req.Header.Set(RemoteHeader, address)
		wg.Add(1)
		held = append(held, w)
		go func() {
			defer wg.Done()
			s.ServeHTTP(w, req)
		}()
		select {
		case <-w.started:
		case <-time.After(10 * time.Second):
			t.Fatalf("GET %s from %s: no answer", url, address)
		}
		if w.code != http.StatusOK {
			t.Fatalf("GET %s from %s: status %d; want 200", url, address, w.code)
		}
	}
	busy := func(url, address, why string) {
		t.Helper()
		t0 := time.Now()
		res := getFrom(s, url, address)
		if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
			t.Errorf("GET %s from %s: status %d, Retry-After %q; want 503 with a Retry-After", url, address, res.StatusCode, res.Header.Get("Retry-After"))
		}
		if d := time.Since(t0); d > 500*time.Millisecond {
			t.Errorf("GET %s from %s: refused after %v; want at once", url, address, d)
		}
		mu.Lock()
		defer mu.Unlock()
		if refused[why+" "+address] == 0 {
			t.Errorf("GET %s from %s: refusal %q not reported (%v)", url, address, why, refused)
		}
	}
	ok := func(url, address string) {
		t.Helper()
		if res := getFrom(s, url, address); res.StatusCode != http.StatusOK {
			t.Errorf("GET %s from %s: status %d; want 200", url, address, res.StatusCode)
		}
	}
	hold("/repo/raw/main/README", "192.0.2.1")
	busy("/repo/snapshot/main.tar.gz", "192.0.2.1", BusyAddressDownloads)
	hold("/repo/snapshot/main.zip", "192.0.2.2")
	busy("/repo/raw/main/README", "192.0.2.3", BusyDownloads)
	// Pages have places of their own.
	ok("/repo/", "192.0.2.1")
	ok("/repo/log", "192.0.2.3")
	hold("/repo/tree/main", "192.0.2.4")
	hold("/repo/log", "192.0.2.4")
	busy("/repo/", "192.0.2.4", BusyAddressPages)
	// Held pages were made: they take no place among those being made.
	for range 8 {
		ok("/repo/commit/main", "192.0.2.5")
	}
}

// TestPacedWriter writes to visitors who read fast, slowly and not at
// all: the slow and the stalled one are cut within about an interval.
func TestPacedWriter(t *testing.T) {
	const rate, interval = 4096, 300 * time.Millisecond
	data := make([]byte, 64<<10)
	for _, tc := range []struct {
		name    string
		gap     time.Duration // between the reader's reads of 1 KiB; < 0: none
		wantErr bool
	}{
		{"fast", 0, false},
		{"slow", 200 * time.Millisecond, true},
		{"stalled", -1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := net.Pipe()
			defer a.Close()
			defer b.Close()
			go func() {
				if tc.gap < 0 {
					return
				}
				buf := make([]byte, 1024)
				for {
					if _, err := b.Read(buf); err != nil {
						return
					}
					time.Sleep(tc.gap)
				}
			}()
			p := &PacedWriter{W: a, SetDeadline: a.SetWriteDeadline, Rate: rate, Interval: interval}
			t0 := time.Now()
			n, err := p.Write(data)
			d := time.Since(t0)
			if got := err != nil; got != tc.wantErr {
				t.Fatalf("wrote %d bytes in %v, err %v; want an error: %v", n, d, err, tc.wantErr)
			}
			if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("err %v; want a deadline", err)
			}
			if err != nil && d > 3*interval {
				t.Errorf("cut after %v; want within about %v", d, interval)
			}
		})
	}
}
