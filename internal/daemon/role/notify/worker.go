package notify

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// Sender delivers one delivery. It returns a *PermanentError for a
// failure that trying again cannot mend.
type Sender func(ctx context.Context, d *Delivery) error

// Worker sends what a Queue holds, each delivery when its time comes:
// at once when queued, then by its retry policy (Delivery.Failed).
// Targets are served concurrently, each one's deliveries in queue order,
// so that a receiver that hangs delays only its own. A target is a
// repository's email recipient or URL: two repositories notifying the
// same address are two targets. After a temporary failure a target is
// left alone until that delivery's next attempt; its later deliveries
// wait behind it, also across a restart (the queue keeps the time of the
// next attempt), and those past the give-up bound by then are given up
// without an attempt. A delivery is taken out of the queue when sent,
// refused for good, or given up; the last two are logged.
type Worker struct {
	Queue *Queue
	Send  Sender
	Log   *slog.Logger
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// Changed, if set, is called after deliveries left the queue or
	// were queued (Wake).
	Changed func()

	wake chan struct{}
	mu   sync.Mutex
	busy map[string]bool // targets being sent to
	err  error           // the queue's first failure
}

// key names d's target: its repository and its address.
func (d *Delivery) key() string { return d.Repo + "\x00" + d.Target }

// NewWorker returns a Worker for q.
func NewWorker(q *Queue, send Sender, log *slog.Logger) *Worker {
	return &Worker{Queue: q, Send: send, Log: log, wake: make(chan struct{}, 1), busy: map[string]bool{}}
}

// Wake tells the worker that deliveries were queued. It never blocks.
func (w *Worker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *Worker) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}

// Run sends until ctx is done or the queue fails, then waits for the
// sends under way (stopped in the second case).
func (w *Worker) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for {
		next, err := w.dispatch(ctx, &wg)
		if err != nil {
			return err
		}
		var timer *time.Timer
		var due <-chan time.Time
		if !next.IsZero() {
			timer = time.NewTimer(max(next.Sub(w.now()), 0))
			due = timer.C
		}
		select {
		case <-ctx.Done():
		case <-w.wake:
		case <-due:
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// RunDue attempts every delivery whose time has come, waits for those
// attempts, and returns when the earliest delivery left is due (the
// zero time if none is left). An error is the queue's own (the spool
// directory cannot be written).
func (w *Worker) RunDue(ctx context.Context) (time.Time, error) {
	var wg sync.WaitGroup
	_, err := w.dispatch(ctx, &wg)
	wg.Wait()
	w.mu.Lock()
	err = cmp.Or(err, w.err)
	w.mu.Unlock()
	if err != nil {
		return time.Time{}, err
	}
	return w.nextDue(), nil
}

// nextDue returns when the earliest queued delivery may be attempted:
// the first of each target's deliveries holds back the others.
func (w *Worker) nextDue() time.Time {
	var next time.Time
	first := map[string]bool{}
	for _, d := range w.Queue.Pending() {
		if k := d.key(); !first[k] {
			first[k] = true
			if next.IsZero() || d.Next.Before(next) {
				next = d.Next
			}
		}
	}
	return next
}

// dispatch starts a sender for every target that has deliveries due and
// is neither being sent to nor waiting for a retry, and returns when the
// earliest delivery it did not start is due.
func (w *Worker) dispatch(ctx context.Context, wg *sync.WaitGroup) (time.Time, error) {
	// The queue is read under w.mu: a sender removes a delivery before
	// it clears its target's busy mark, so a delivery already sent is
	// either gone from the listing or still marked busy.
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return time.Time{}, w.err
	}
	now := w.now()
	var next time.Time
	later := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	due := map[string][]*Delivery{}
	held := map[string]bool{} // waiting behind a delivery not due
	var order []string
	for _, d := range w.Queue.Pending() {
		k := d.key()
		switch {
		case w.busy[k]:
			// Its sender wakes the worker when done.
		case held[k] && now.Sub(d.Queued) > giveUpAfter:
			w.Log.Error("notification given up", "repo", d.Repo, "target", d.Target,
				"attempts", d.Attempts, "queued", d.Queued, "err", "the target kept failing")
			if err := w.Queue.Remove(d); err != nil {
				return time.Time{}, err
			}
			w.changed()
		case held[k]:
		case d.Next.After(now):
			held[k] = true
			later(d.Next)
		default:
			if due[k] == nil {
				order = append(order, k)
			}
			due[k] = append(due[k], d)
		}
	}
	for _, k := range order {
		w.busy[k] = true
		wg.Add(1)
		go func(k string, list []*Delivery) {
			defer wg.Done()
			w.sendAll(ctx, list)
			w.mu.Lock()
			delete(w.busy, k)
			w.mu.Unlock()
			w.Wake()
		}(k, due[k])
	}
	return next, nil
}

// sendAll attempts one target's due deliveries in order, stopping at
// the first temporary failure.
func (w *Worker) sendAll(ctx context.Context, list []*Delivery) {
	for _, d := range list {
		if ctx.Err() != nil {
			return
		}
		again, err := w.attempt(ctx, d)
		if err != nil {
			// The spool cannot be read or written: Run stops, the
			// process with it, and the parent starts another.
			w.mu.Lock()
			w.err = cmp.Or(w.err, err)
			w.mu.Unlock()
			w.Wake()
			return
		}
		if again {
			return
		}
		w.changed()
	}
}

// attempt sends d and records the outcome in the queue. It reports
// whether d stays queued for another attempt (or because the worker
// is stopping); an error is the queue's.
func (w *Worker) attempt(ctx context.Context, d *Delivery) (again bool, err error) {
	d, err = w.Queue.Load(d)
	if errors.Is(err, ErrBadFile) {
		w.Log.Error("notification dropped", "err", err)
		return false, nil
	}
	if err != nil {
		return false, err
	}
	err = w.Send(ctx, d)
	var perm *PermanentError
	switch {
	case err == nil:
		w.Log.Debug("notification sent", "repo", d.Repo, "target", d.Target, "seq", d.Seq)
	case ctx.Err() != nil:
		return true, nil // stopping: the delivery stays queued as it was
	case errors.As(err, &perm):
		w.Log.Error("notification refused; not retried", "repo", d.Repo, "target", d.Target, "err", err)
	case d.Failed(w.now(), err):
		w.Log.Warn("notification failed; will retry", "repo", d.Repo, "target", d.Target,
			"attempts", d.Attempts, "next", d.Next, "err", err)
		return true, w.Queue.Update(d)
	default:
		w.Log.Error("notification given up", "repo", d.Repo, "target", d.Target,
			"attempts", d.Attempts, "queued", d.Queued, "err", err)
	}
	return false, w.Queue.Remove(d)
}

func (w *Worker) changed() {
	if w.Changed != nil {
		w.Changed()
	}
}
