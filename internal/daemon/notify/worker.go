package notify

import (
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
// so that a receiver that hangs delays only its own. After a temporary
// failure a target is left alone until that delivery's next attempt; its
// other deliveries wait with it, and those past the give-up bound by
// then are given up without an attempt. A delivery is taken out of the
// queue when sent, refused for good, or given up; the last two are
// logged.
type Worker struct {
	Queue *Queue
	Send  Sender
	Log   *slog.Logger
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// Changed, if set, is called after deliveries left the queue or
	// were queued (Wake).
	Changed func()

	wake    chan struct{}
	mu      sync.Mutex
	busy    map[string]bool      // targets being sent to
	blocked map[string]time.Time // failing targets: not tried before
}

// NewWorker returns a Worker for q.
func NewWorker(q *Queue, send Sender, log *slog.Logger) *Worker {
	return &Worker{Queue: q, Send: send, Log: log, wake: make(chan struct{}, 1),
		busy: map[string]bool{}, blocked: map[string]time.Time{}}
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

// Run sends until ctx is done, then waits for the sends under way.
func (w *Worker) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
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
// directory cannot be read or written).
func (w *Worker) RunDue(ctx context.Context) (time.Time, error) {
	var wg sync.WaitGroup
	_, err := w.dispatch(ctx, &wg)
	wg.Wait()
	if err != nil {
		return time.Time{}, err
	}
	return w.nextDue()
}

// nextDue returns when the earliest queued delivery may be attempted.
func (w *Worker) nextDue() (time.Time, error) {
	ds, _, err := w.Queue.Pending()
	if err != nil {
		return time.Time{}, err
	}
	var next time.Time
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, d := range ds {
		at := d.Next
		if b := w.blocked[d.Target]; b.After(at) {
			at = b
		}
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	return next, nil
}

// dispatch starts a sender for every target that has deliveries due and
// is neither being sent to nor left alone, and returns when the earliest
// delivery it did not start is due.
func (w *Worker) dispatch(ctx context.Context, wg *sync.WaitGroup) (time.Time, error) {
	// The queue is read under w.mu: a sender removes a delivery before
	// it clears its target's busy mark, so a delivery already sent is
	// either gone from the listing or still marked busy.
	w.mu.Lock()
	defer w.mu.Unlock()
	ds, bad, err := w.Queue.Pending()
	if err != nil {
		return time.Time{}, err
	}
	for _, err := range bad {
		w.Log.Error("notification dropped", "err", err)
	}
	now := w.now()
	var next time.Time
	later := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	due := map[string][]*Delivery{}
	var order []string
	for _, d := range ds {
		switch b, blocked := w.blocked[d.Target]; {
		case w.busy[d.Target]:
			// Its sender wakes the worker when done.
		case blocked && now.Sub(d.Queued) > giveUpAfter:
			w.Log.Error("notification given up", "repo", d.Repo, "target", d.Target,
				"attempts", d.Attempts, "queued", d.Queued, "err", "the target kept failing")
			if err := w.Queue.Remove(d); err != nil {
				return time.Time{}, err
			}
			w.changed()
		case blocked && b.After(now):
			later(b)
		case d.Next.After(now):
			later(d.Next)
		default:
			if due[d.Target] == nil {
				order = append(order, d.Target)
			}
			due[d.Target] = append(due[d.Target], d)
		}
	}
	for _, target := range order {
		w.busy[target] = true
		wg.Add(1)
		go func(target string, list []*Delivery) {
			defer wg.Done()
			w.sendAll(ctx, target, list)
			w.mu.Lock()
			delete(w.busy, target)
			w.mu.Unlock()
			w.Wake()
		}(target, due[target])
	}
	return next, nil
}

// sendAll attempts target's due deliveries in order, stopping at the
// first temporary failure.
func (w *Worker) sendAll(ctx context.Context, target string, list []*Delivery) {
	for _, d := range list {
		if ctx.Err() != nil {
			return
		}
		err := w.Send(ctx, d)
		var perm *PermanentError
		failed := false
		switch {
		case err == nil:
			w.Log.Debug("notification sent", "repo", d.Repo, "target", d.Target, "seq", d.Seq)
			err = w.Queue.Remove(d)
		case ctx.Err() != nil:
			return // stopping: the delivery stays queued as it was
		case errors.As(err, &perm):
			w.Log.Error("notification refused; not retried", "repo", d.Repo, "target", d.Target, "err", err)
			err = w.Queue.Remove(d)
		case d.Failed(w.now(), err):
			w.Log.Warn("notification failed; will retry", "repo", d.Repo, "target", d.Target,
				"attempts", d.Attempts, "next", d.Next, "err", err)
			failed = true
			err = w.Queue.Update(d)
		default:
			w.Log.Error("notification given up", "repo", d.Repo, "target", d.Target,
				"attempts", d.Attempts, "queued", d.Queued, "err", err)
			err = w.Queue.Remove(d)
		}
		if err != nil {
			w.Log.Error("notification queue", "err", err)
			return
		}
		w.mu.Lock()
		if failed {
			w.blocked[target] = d.Next
		} else {
			delete(w.blocked, target)
		}
		w.mu.Unlock()
		if failed {
			return
		}
		w.changed()
	}
}

func (w *Worker) changed() {
	if w.Changed != nil {
		w.Changed()
	}
}
