package notify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeReceiver records deliveries and fails those it is told to.
type fakeReceiver struct {
	mu   sync.Mutex
	got  []string // targets, in the order sent
	fail map[string]error
}

func (f *fakeReceiver) send(_ context.Context, d *Delivery) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail[d.Target]; err != nil {
		return err
	}
	f.got = append(f.got, d.Target)
	return nil
}

func (f *fakeReceiver) sent() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.got...)
}

func TestWorkerRetries(t *testing.T) {
	dir := t.TempDir()
	q, _, err := OpenQueue(dir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	rx := &fakeReceiver{fail: map[string]error{
		"url:down":    errors.New("connection refused"),
		"url:refuses": &PermanentError{errors.New("404 Not Found")},
	}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	w := NewWorker(q, rx.send, log)
	w.Now = func() time.Time { return now }
	for _, target := range []string{"url:a", "url:down", "url:refuses", "url:b"} {
		if err := q.Add(&Delivery{Repo: "r", Target: target, Queued: now}); err != nil {
			t.Fatal(err)
		}
	}
	next, err := w.RunDue(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Targets are served concurrently: order among them is free.
	if got := rx.sent(); len(got) != 2 || !slices.Contains(got, "url:a") || !slices.Contains(got, "url:b") {
		t.Fatalf("sent %s; want [url:a url:b]", got)
	}
	if n := q.Len(); n != 1 || !next.Equal(now.Add(retryFirst)) {
		t.Fatalf("left %d queued, next at %v; want the one to retry at %v", n, next, now.Add(retryFirst))
	}

	// Before its time nothing is tried; the receiver is back when it is.
	now = now.Add(retryFirst / 2)
	w.RunDue(context.Background())
	if len(rx.sent()) != 2 {
		t.Fatal("retried before its time")
	}
	// A restart: a new queue and worker on the same spool find it.
	q2, _, err := OpenQueue(dir)
	if err != nil {
		t.Fatal(err)
	}
	w2 := NewWorker(q2, rx.send, log)
	w2.Now = func() time.Time { return now }
	delete(rx.fail, "url:down")
	now = now.Add(retryFirst)
	if _, err := w2.RunDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := rx.sent(); len(got) != 3 || got[2] != "url:down" {
		t.Fatalf("sent %s after the receiver came back", got)
	}
	if n := q2.Len(); n != 0 {
		t.Fatalf("%d left queued", n)
	}

	// A receiver down for good is given up after the bound.
	rx.fail["url:gone"] = errors.New("no route to host")
	q2.Add(&Delivery{Repo: "r", Target: "url:gone", Queued: now})
	for range 1000 {
		next, err := w2.RunDue(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if next.IsZero() {
			break
		}
		now = next
	}
	if n := q2.Len(); n != 0 {
		t.Fatalf("a failing delivery never given up")
	}
}

// TestWorkerRun checks the loop: deliveries queued while it runs are
// sent once woken, each once.
func TestWorkerRun(t *testing.T) {
	q, _, err := OpenQueue(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rx := &fakeReceiver{}
	w := NewWorker(q, rx.send, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	const n = 100
	for i := range n {
		if err := q.Add(&Delivery{Repo: "r", Target: fmt.Sprintf("url:%d", i), Queued: time.Now()}); err != nil {
			t.Fatal(err)
		}
		w.Wake()
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(rx.sent()) < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := rx.sent()
	seen := map[string]bool{}
	for _, g := range got {
		if seen[g] {
			t.Fatalf("%s sent twice", g)
		}
		seen[g] = true
	}
	if len(got) != n {
		t.Fatalf("%d of %d sent", len(got), n)
	}
}

// TestWorkerHangingTarget checks that a receiver that does not answer
// holds up only its own deliveries.
func TestWorkerHangingTarget(t *testing.T) {
	q, _, err := OpenQueue(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rx := &fakeReceiver{}
	release := make(chan struct{})
	send := func(ctx context.Context, d *Delivery) error {
		if d.Target == "url:hang" {
			select {
			case <-release:
				return errors.New("timeout")
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return rx.send(ctx, d)
	}
	w := NewWorker(q, send, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	q.Add(&Delivery{Repo: "r", Target: "url:hang", Queued: time.Now()})
	w.Wake()
	for i := range 5 {
		q.Add(&Delivery{Repo: "r", Target: fmt.Sprintf("url:%d", i), Queued: time.Now()})
		w.Wake()
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(rx.sent()) < 5 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(rx.sent()); n != 5 {
		t.Errorf("%d of 5 sent while another target hung", n)
	}
	close(release)
	// The hung delivery failed and waits for its retry.
	deadline = time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if ds := q.Pending(); len(ds) == 1 && ds[0].Attempts == 1 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if ds := q.Pending(); len(ds) != 1 || ds[0].Attempts != 1 || ds[0].LastError != "timeout" {
		t.Errorf("after the hang: %+v", ds)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestWorkerOrderAfterRestart checks that a target's deliveries keep
// their order when the one in front waits for its retry, also after a
// restart, and that a repository's failing target does not hold back
// another repository's deliveries to the same address.
func TestWorkerOrderAfterRestart(t *testing.T) {
	dir := t.TempDir()
	q, _, err := OpenQueue(dir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	var got []string
	down := true
	send := func(_ context.Context, d *Delivery) error {
		mu.Lock()
		defer mu.Unlock()
		if d.Repo == "r1" && down {
			return errors.New("connection refused")
		}
		got = append(got, d.Repo+":"+string(d.Body))
		return nil
	}
	sent := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	w := NewWorker(q, send, log)
	w.Now = func() time.Time { return now }
	q.Add(&Delivery{Repo: "r1", Target: "url:x", Body: []byte("1"), Queued: now})
	q.Add(&Delivery{Repo: "r2", Target: "url:x", Body: []byte("a"), Queued: now})
	if _, err := w.RunDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	if g := sent(); !slices.Equal(g, []string{"r2:a"}) {
		t.Fatalf("sent %v; want r2's delivery only", g)
	}
	// Queued after the failure, before its retry.
	q.Add(&Delivery{Repo: "r1", Target: "url:x", Body: []byte("2"), Queued: now, Next: now})

	q2, _, err := OpenQueue(dir)
	if err != nil {
		t.Fatal(err)
	}
	w2 := NewWorker(q2, send, log)
	w2.Now = func() time.Time { return now }
	mu.Lock()
	down = false
	mu.Unlock()
	now = now.Add(retryFirst / 2)
	next, err := w2.RunDue(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if g := sent(); len(g) != 1 || !next.Equal(now.Add(retryFirst/2)) {
		t.Fatalf("after a restart, before the retry: sent %v, next %v", g, next)
	}
	now = next
	if _, err := w2.RunDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	if g := sent(); !slices.Equal(g, []string{"r2:a", "r1:1", "r1:2"}) {
		t.Fatalf("sent %v; want r1's in queue order", g)
	}
}

// TestWorkerQueueFails checks that Run stops when the spool cannot be
// written any more.
func TestWorkerQueueFails(t *testing.T) {
	dir := t.TempDir()
	q, _, err := OpenQueue(dir)
	if err != nil {
		t.Fatal(err)
	}
	w := NewWorker(q, func(context.Context, *Delivery) error { return errors.New("refused") },
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	q.Add(&Delivery{Repo: "r", Target: "url:x", Queued: time.Now()})
	os.RemoveAll(dir)
	done := make(chan error, 1)
	go func() { done <- w.Run(context.Background()) }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Run returned no error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run went on without its spool")
	}
}
