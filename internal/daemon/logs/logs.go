// Package logs sets up the logger of a gotd process: text lines on
// standard error in the foreground (gotd -d), else syslog's daemon
// facility. Every line names the process's role, as gotd's do. A role
// opens its logger before it sandboxes itself: the syslog socket
// cannot be reached afterwards. A child in the foreground has no
// terminal: its standard error is a pipe from the parent, which logs
// what comes through it (Relay).
package logs

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
)

// Options say where and how much to log.
type Options struct {
	Foreground bool // stderr, else syslog
	Verbosity  int  // 0: warnings and errors, 1: info (-v), 2: debug (-vv)
	// Child is set in the parent's children: in the foreground they
	// write JSON records to standard error, for the parent's Relay.
	Child bool
}

// Level is the lowest level logged at verbosity v.
func Level(v int) slog.Level {
	switch {
	case v >= 2:
		return slog.LevelDebug
	case v == 1:
		return slog.LevelInfo
	}
	return slog.LevelWarn
}

// New returns the logger of role. A syslog message is one record: the
// text handler writes each with one Write.
func New(role string, o Options) *slog.Logger {
	opts := &slog.HandlerOptions{Level: Level(o.Verbosity)}
	var w io.Writer = os.Stderr
	if o.Foreground && o.Child {
		opts.ReplaceAttr = childValue
		return slog.New(slog.NewJSONHandler(w, opts)).With("role", role)
	}
	if !o.Foreground {
		if sw, err := openSyslog(role); err == nil {
			w = sw
			opts.ReplaceAttr = func(_ []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey {
					return slog.Attr{} // syslog stamps lines itself
				}
				return a
			}
		}
	}
	return slog.New(slog.NewTextHandler(w, opts)).With("role", role)
}

// childValue writes a child's attribute as the parent's text handler
// would print it: JSON would give an object id as {} and a duration in
// nanoseconds, and the parent relays what it reads.
func childValue(_ []string, a slog.Attr) slog.Attr {
	switch v := a.Value; v.Kind() {
	case slog.KindDuration:
		return slog.String(a.Key, v.Duration().String())
	case slog.KindAny:
		if _, isErr := v.Any().(error); !isErr {
			if s, ok := v.Any().(fmt.Stringer); ok {
				return slog.String(a.Key, s.String())
			}
		}
	}
	return a
}

// Audit returns a logger that writes through l's handler whatever the
// level l's verbosity lets through: the record of each request, the
// audit trail, is kept at the default verbosity too, where l drops
// what is not a warning. Its lines go out as l's do, interleaved whole.
func Audit(l *slog.Logger) *slog.Logger { return slog.New(always{l.Handler()}) }

// always is a handler that handles every record.
type always struct{ slog.Handler }

func (always) Enabled(context.Context, slog.Level) bool { return true }
func (a always) WithAttrs(attrs []slog.Attr) slog.Handler {
	return always{a.Handler.WithAttrs(attrs)}
}
func (a always) WithGroup(name string) slog.Handler { return always{a.Handler.WithGroup(name)} }
