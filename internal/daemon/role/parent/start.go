package parent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// started notes that a long-lived process serves; once all have, the
// daemon has started and Options.Ready is called. A process started
// again later says so too, and is not waited for.
func (d *daemon) started(c *child) {
	if d.starting == nil {
		return
	}
	delete(d.starting, c)
	if len(d.starting) > 0 {
		return
	}
	d.starting = nil
	// Told at the default verbosity too, as the record of each request is.
	d.audit.Info("gotd started", "pid", os.Getpid(), "repositories", len(d.cfg.Repositories), "socket", d.cfg.ListenOn)
	if d.opts.Ready != nil {
		d.opts.Ready()
	}
}

// startingRoles names the processes not yet started, for a message.
func (d *daemon) startingRoles() string {
	var roles []string
	for c := range d.starting {
		roles = append(roles, c.role)
	}
	sort.Strings(roles)
	return strings.Join(roles, ", ")
}

// maxLastLine bounds the line lastLine keeps.
const maxLastLine = 1024

// lastLine keeps the last line a child wrote to its standard error: its
// last words, which say why it failed to start.
type lastLine struct {
	mu   sync.Mutex
	cur  []byte // the line being written
	last []byte // the last complete one
	done chan struct{}
}

func newLastLine() *lastLine { return &lastLine{done: make(chan struct{})} }

func (l *lastLine) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, b := range p {
		if b == '\n' {
			if len(bytes.TrimSpace(l.cur)) > 0 {
				l.last = append(l.last[:0], l.cur...)
			}
			l.cur = l.cur[:0]
			continue
		}
		if len(l.cur) < maxLastLine {
			l.cur = append(l.cur, b)
		}
	}
	return len(p), nil
}

// reason says why a child that exited with status failed: the error
// of its last log record (a JSON record of slog, as children log), or
// its last line, or its status. It waits a moment for the child's
// standard error to be read to its end.
func (l *lastLine) reason(status error) string {
	select {
	case <-l.done:
	case <-time.After(time.Second):
	}
	l.mu.Lock()
	line := l.last
	if len(bytes.TrimSpace(l.cur)) > 0 {
		line = l.cur
	}
	line = bytes.Clone(line)
	l.mu.Unlock()
	var rec struct {
		Msg string `json:"msg"`
		Err string `json:"err"`
	}
	switch {
	case json.Unmarshal(line, &rec) == nil && rec.Err != "":
		return printable(rec.Err)
	case json.Unmarshal(line, &rec) == nil && rec.Msg != "":
		return printable(rec.Msg)
	case len(line) > 0:
		return printable(string(line))
	}
	return fmt.Sprint(status)
}

// printable replaces control characters and invalid UTF-8, which are
// not for an operator's terminal.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f || r == utf8.RuneError {
			return '?'
		}
		return r
	}, s)
}
