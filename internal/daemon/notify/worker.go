package notify

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// Sender delivers one delivery. It returns a *PermanentError for a
// failure that trying again cannot mend.
type Sender func(ctx context.Context, d *Delivery) error

// Worker sends what a Queue holds, oldest first, each delivery when its
// time comes: at once when queued, then by its retry policy
// (Delivery.Failed). A delivery is taken out of the queue when sent,
// refused for good, or given up; each of the last two is logged.
type Worker struct {
	Queue *Queue
	Send  Sender
	Log   *slog.Logger
	// Now is the clock (nil: time.Now).
	Now func() time.Time

	wake chan struct{}
}

// NewWorker returns a Worker for q.
func NewWorker(q *Queue, send Sender, log *slog.Logger) *Worker {
	return &Worker{Queue: q, Send: send, Log: log, wake: make(chan struct{}, 1)}
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

// Run sends until ctx is done.
func (w *Worker) Run(ctx context.Context) error {
	for {
		next, err := w.RunDue(ctx)
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

// RunDue attempts every queued delivery whose time has come and returns
// when the earliest of those left is due (the zero time if none is
// left). An error is the queue's own (the spool directory cannot be
// read or written).
func (w *Worker) RunDue(ctx context.Context) (time.Time, error) {
	ds, bad, err := w.Queue.Pending()
	if err != nil {
		return time.Time{}, err
	}
	for _, err := range bad {
		w.Log.Error("notification dropped", "err", err)
	}
	var next time.Time
	for _, d := range ds {
		if ctx.Err() != nil {
			return time.Time{}, nil
		}
		if d.Next.After(w.now()) {
			if next.IsZero() || d.Next.Before(next) {
				next = d.Next
			}
			continue
		}
		err := w.Send(ctx, d)
		var perm *PermanentError
		switch {
		case err == nil:
			w.Log.Debug("notification sent", "repo", d.Repo, "target", d.Target, "seq", d.Seq)
			err = w.Queue.Remove(d)
		case errors.As(err, &perm):
			w.Log.Error("notification refused; not retried", "repo", d.Repo, "target", d.Target, "err", err)
			err = w.Queue.Remove(d)
		case d.Failed(w.now(), err):
			w.Log.Warn("notification failed; will retry", "repo", d.Repo, "target", d.Target,
				"attempts", d.Attempts, "next", d.Next, "err", err)
			if next.IsZero() || d.Next.Before(next) {
				next = d.Next
			}
			err = w.Queue.Update(d)
		default:
			w.Log.Error("notification given up", "repo", d.Repo, "target", d.Target,
				"attempts", d.Attempts, "queued", d.Queued, "err", err)
			err = w.Queue.Remove(d)
		}
		if err != nil {
			return time.Time{}, err
		}
	}
	return next, nil
}
