// Package memlimit bounds the memory of a process that serves one
// client: the Go runtime's soft memory limit makes the collector work
// harder as the process nears its budget, and a watcher ends the
// process, after the client is told, once the memory the runtime holds
// reaches the budget. Since every client has processes of its own, the
// client whose request took the memory is the only one that loses.
package memlimit

import (
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
	"time"
)

// ExitCode is the status of a process ended for its memory.
const ExitCode = 3

// Message is what the client is told.
const Message = "server out of memory for this request"

// interval is how often the watcher looks once the process holds half
// its budget or more. An allocation faster than it can overshoot the
// budget by what it allocates in that time.
const interval = 10 * time.Millisecond

// softShare is the share of the budget from which the collector works
// harder (debug.SetMemoryLimit).
const softShare = 0.75

// Ceiling is a process's memory budget.
type Ceiling struct {
	// Limit is the budget in bytes: what the runtime holds from the
	// system (heap, stacks, its own structures; not file mappings).
	Limit int64
	// Tell, if set, tells the client Message in its stream's framing
	// (see SetTell).
	Tell func()
	Log  *slog.Logger
	// exit ends the process (os.Exit; replaced in tests).
	exit func(int)
	// looks counts the watcher's looks (for tests).
	looks atomic.Int64
}

// Start sets the runtime's soft limit and starts the watcher. A zero
// or negative Limit does nothing. The watcher runs until the process
// ends.
func (c *Ceiling) Start() {
	if c.Limit <= 0 {
		return
	}
	if c.exit == nil {
		c.exit = os.Exit
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	debug.SetMemoryLimit(int64(float64(c.Limit) * softShare))
	SetTell(c.Tell)
	go c.watch()
}

// tell is how the client is told, as the process's stage requires.
var tell atomic.Pointer[func()]

// SetTell sets how the process's client is told Message from now on
// (nil: it is not), as the framing of its stream changes: an ERR
// packet, a side-band 3 packet while a pack is sent on a side-band,
// nothing in the middle of a raw pack. f is called once, from the
// watcher's goroutine, while the process may be writing to the same
// stream: the client stops at its packet or at the broken framing
// before it.
func SetTell(f func()) {
	if f == nil {
		tell.Store(nil)
		return
	}
	tell.Store(&f)
}

// held returns the memory the runtime holds from the system and has
// not returned to it.
func held(s []metrics.Sample) int64 {
	metrics.Read(s)
	total, released := s[0].Value.Uint64(), s[1].Value.Uint64()
	if released > total {
		return 0
	}
	return int64(total - released)
}

// watch ends the process once it holds its budget. Below half the
// budget it looks after each garbage collection rather than on a
// clock: the soft limit (softShare of the budget) has the runtime
// collect before the memory it holds passes it, so a process cannot go
// from below half its budget to over it without a collection, after
// which the watcher looks, and from half on it looks every interval.
// An idle process is then never woken by its watcher (a long-lived web
// process woke every 10 ms, about 15 ms of CPU a second with no
// visitor), and a short one rarely.
func (c *Ceiling) watch() {
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	collected := collections()
	t := time.NewTimer(interval)
	defer t.Stop()
	var n int64
	for {
		c.looks.Add(1)
		n = held(s)
		if n >= c.Limit {
			break
		}
		if n >= c.Limit/2 {
			t.Reset(interval)
			<-t.C
		} else {
			<-collected
		}
	}
	c.Log.Error("out of memory for this request: ending the process", "held", n, "limit", c.Limit)
	if f := tell.Load(); f != nil {
		(*f)()
	}
	c.exit(ExitCode)
}

// sentinel is an object whose finalizer runs after each collection:
// its pointer keeps it out of the tiny allocator, whose blocks may
// outlive it.
type sentinel struct{ _ *int }

// collections returns a channel that receives after each garbage
// collection (at most one pending): a finalizer that arms another.
func collections() <-chan struct{} {
	ch := make(chan struct{}, 1)
	var arm func()
	arm = func() {
		runtime.SetFinalizer(&sentinel{}, func(*sentinel) {
			select {
			case ch <- struct{}{}:
			default:
			}
			arm()
		})
	}
	arm()
	return ch
}
