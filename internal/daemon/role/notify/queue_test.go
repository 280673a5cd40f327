package notify

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestQueue(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	q, _, err := OpenQueue(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("spool directory: %v, %v; want mode 0700", fi, err)
	}
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	for i, target := range []string{"email:a@example.com", "url:https://example.com/hook", "email:b@example.com"} {
		d := &Delivery{Repo: "r", Target: target, Body: []byte("body " + target), Queued: now.Add(time.Duration(i) * time.Second)}
		if err := q.Add(d); err != nil {
			t.Fatal(err)
		}
		if d.Seq != uint64(i+1) {
			t.Fatalf("delivery %d has sequence number %d", i, d.Seq)
		}
	}
	if n := q.Len(); n != 3 {
		t.Fatalf("Len = %d; want 3", n)
	}
	ds := q.Pending()
	if len(ds) != 3 {
		t.Fatalf("Pending = %d", len(ds))
	}
	for i, d := range ds {
		full, err := q.Load(d)
		if err != nil || d.Body != nil || d.Seq != uint64(i+1) || !strings.HasSuffix(string(full.Body), d.Target) ||
			!d.Queued.Equal(now.Add(time.Duration(i)*time.Second)) {
			t.Fatalf("delivery %d read back as %+v, %+v, %v", i, d, full, err)
		}
		ds[i] = full
	}

	// A failed attempt is kept with its history; a sent one is gone.
	ds[0].Failed(now, errors.New("connection refused"))
	if err := q.Update(ds[0]); err != nil {
		t.Fatal(err)
	}
	if err := q.Remove(ds[1]); err != nil {
		t.Fatal(err)
	}
	if err := q.Update(ds[1]); err == nil {
		t.Fatal("Update of a removed delivery succeeded")
	}

	// A crash left a temporary file and a file that does not decode;
	// a new gotd finds the rest as they were and numbers on.
	os.WriteFile(filepath.Join(dir, tempPrefix+"123"), []byte("half"), 0o600)
	os.WriteFile(filepath.Join(dir, "00000000000000000009.json"), []byte("{not json"), 0o600)
	q2, bad, err := OpenQueue(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, tempPrefix+"123")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file left: %v", err)
	}
	ds = q2.Pending()
	if len(bad) != 1 || len(ds) != 2 {
		t.Fatalf("after reopening: %d pending, bad %v", len(ds), bad)
	}
	if ds[0].Seq != 1 || ds[0].Attempts != 1 || ds[0].LastError != "connection refused" || ds[1].Seq != 3 {
		t.Fatalf("after reopening: %+v, %+v", ds[0], ds[1])
	}
	if _, err := os.Stat(filepath.Join(dir, "00000000000000000009.json"+badSuffix)); err != nil {
		t.Errorf("the broken file was not moved aside: %v", err)
	}
	d := &Delivery{Repo: "r", Target: "email:c@example.com"}
	if err := q2.Add(d); err != nil || d.Seq != 10 {
		t.Fatalf("next delivery: sequence number %d, %v; want 10 (after the 9 found)", d.Seq, err)
	}

	// A file damaged after it was queued is moved aside when loaded.
	os.WriteFile(q2.path(3), []byte("{"), 0o600)
	if _, err := q2.Load(ds[1]); err == nil || q2.Len() != 2 {
		t.Fatalf("damaged file loaded: %v; %d left", err, q2.Len())
	}
}

// TestQueueFull checks the spool's bounds.
func TestQueueFull(t *testing.T) {
	defer func(n int, b int64) { maxQueued, maxQueuedBytes = n, b }(maxQueued, maxQueuedBytes)
	maxQueued, maxQueuedBytes = 3, 1<<20
	q, _, err := OpenQueue(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	add := func() error { return q.Add(&Delivery{Repo: "r", Target: "url:x", Body: make([]byte, 1000)}) }
	for range 3 {
		if err := add(); err != nil {
			t.Fatal(err)
		}
	}
	if err := add(); !errors.Is(err, ErrFull) {
		t.Fatalf("fourth delivery: %v; want ErrFull", err)
	}
	q.Remove(q.Pending()[0])
	maxQueuedBytes = 2000 // two files of over 1000 bytes are there
	if err := add(); !errors.Is(err, ErrFull) {
		t.Fatalf("past the byte bound: %v; want ErrFull", err)
	}
	maxQueuedBytes = 1 << 20
	if err := add(); err != nil {
		t.Fatalf("after a removal: %v", err)
	}
}

func TestQueueConcurrentAdds(t *testing.T) {
	q, _, err := OpenQueue(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 25 {
				if err := q.Add(&Delivery{Repo: "r", Target: "url:https://example.com/x"}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	ds := q.Pending()
	if len(ds) != 200 {
		t.Fatalf("%d pending; want 200", len(ds))
	}
	for i, d := range ds {
		if d.Seq != uint64(i+1) {
			t.Fatalf("delivery %d has sequence number %d", i, d.Seq)
		}
	}
}

func TestRetryPolicy(t *testing.T) {
	queued := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	d := &Delivery{Queued: queued}
	now := queued
	var waits []time.Duration
	for d.Failed(now, errors.New("503")) {
		waits = append(waits, d.Next.Sub(now))
		now = d.Next
		if len(waits) > 1000 {
			t.Fatal("never gives up")
		}
	}
	if waits[0] != retryFirst || waits[1] != 2*retryFirst || waits[len(waits)-1] != retryMax {
		t.Errorf("waits %v: want %v, then doubling, up to %v", waits, retryFirst, retryMax)
	}
	if now.Sub(queued) > giveUpAfter || d.Next.Sub(queued) <= giveUpAfter {
		t.Errorf("gave up at %v after queueing (next would be %v); bound %v", now.Sub(queued), d.Next.Sub(queued), giveUpAfter)
	}
	if d.Attempts != len(waits)+1 || d.LastError != "503" {
		t.Errorf("attempts %d, last error %q", d.Attempts, d.LastError)
	}
}
