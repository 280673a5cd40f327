// Package notify is gotd's notify process: the parent hands it the
// push notes of session_write (pushnote documents), and it sends each
// to the targets of the repository's notify blocks, by mail and as HTTP
// requests (POSTs of the document, or requests made from a target's
// templates, package webhook). Every delivery goes through a persistent queue (a spool
// directory) first, so a push never waits for a mail server or a web
// hook, and a target that is down gets its notifications once it is
// back, across restarts of gotd. It has network access and its spool,
// no repository access.
package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"gotd/internal/daemon/ipc"
	"gotd/internal/daemon/msg"
	"gotd/internal/daemon/pushnote"
)

// Target names in the queue.
const (
	emailPrefix = "email:"
	urlPrefix   = "url:"
)

// notifier is the process's state.
type notifier struct {
	log      *slog.Logger
	parent   *msg.Conn
	queue    *Queue // nil without a spool
	worker   *Worker
	mu       sync.Mutex
	settings *Settings
	// changed wakes the status reporter; a wake never blocks, so that
	// neither serve nor a sender under the worker's lock waits on the
	// parent.
	changed chan struct{}
}

// Main queues and sends notifications until the parent's channel
// closes, which it reads to its end first: what the parent handed over
// is queued before the process exits.
func Main(ctx context.Context, log *slog.Logger, parent *msg.Conn, s *Settings) error {
	n := &notifier{log: log, parent: parent, settings: s, changed: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	failed := make(chan error, 1)
	if s.Spool != "" {
		q, bad, err := OpenQueue(s.Spool)
		if err != nil {
			return err
		}
		for _, err := range bad {
			log.Error("notification dropped", "err", err)
		}
		n.queue = q
		n.worker = NewWorker(q, n.send, log)
		n.worker.Changed = n.status
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := n.worker.Run(ctx); err != nil {
				// Nothing more can be queued or sent: the process
				// ends, and the parent starts another.
				failed <- err
				parent.Close()
			}
		}()
		go func() {
			defer wg.Done()
			n.report(ctx)
		}()
		n.status()
	}
	err := n.serve()
	cancel()
	wg.Wait()
	select {
	case qerr := <-failed:
		return fmt.Errorf("notify: queue: %w", qerr)
	default:
	}
	return err
}

// serve handles the parent's messages.
func (n *notifier) serve() error {
	for {
		raw, err := n.parent.Recv()
		if err != nil {
			if errors.Is(err, os.ErrClosed) {
				return nil // the daemon is stopping
			}
			return fmt.Errorf("notify: %w", err)
		}
		switch raw.Type {
		case ipc.TypeNotification:
			var m ipc.Notification
			if _, err := ipc.Check(raw, &m, false); err != nil {
				return fmt.Errorf("notify: %w", err)
			}
			n.notification(&m)
		case ipc.TypeNotifySettings:
			var m ipc.NotifySettings
			if _, err := ipc.Check(raw, &m, false); err != nil {
				return fmt.Errorf("notify: %w", err)
			}
			s, err := readRest(n.parent, &m)
			if err != nil {
				return err
			}
			n.mu.Lock()
			n.settings = s
			n.mu.Unlock()
		default:
			if raw.File != nil {
				raw.File.Close()
			}
			return fmt.Errorf("notify: unexpected message %d", raw.Type)
		}
	}
}

// notification queues one push note for each of its repository's
// targets.
func (n *notifier) notification(m *ipc.Notification) {
	doc, err := pushnote.Decode(m.Note)
	if err != nil {
		n.log.Error("bad push note", "repo", m.Repo, "err", err)
		return
	}
	doc.SetOrigin(m.Repo, m.User)
	n.mu.Lock()
	s := n.settings
	n.mu.Unlock()
	r := s.Repos[m.Repo]
	if r == nil || !r.Wants(doc.Ref.Name) {
		return
	}
	if n.queue == nil {
		n.log.Error("notification dropped: no spool", "repo", m.Repo, "ref", doc.Ref.Name)
		return
	}
	body, err := doc.Encode()
	if err != nil {
		n.log.Error("bad push note", "repo", m.Repo, "err", err)
		return
	}
	now := time.Now()
	var ds []*Delivery
	for _, e := range r.Emails {
		mail := Message(e, s.Host, doc.Subject(), doc.Text(), now)
		ds = append(ds, &Delivery{Repo: m.Repo, Target: emailPrefix + e.To, Body: mail, Queued: now, Next: now})
	}
	for _, u := range r.URLs {
		// A request the target's templates cannot make now (an
		// expansion too long) cannot be made later: it is not queued.
		if _, err := u.expand(body); err != nil {
			n.log.Error("notification dropped", "repo", m.Repo, "ref", doc.Ref.Name, "target", urlPrefix+u.URL, "err", err)
			continue
		}
		ds = append(ds, &Delivery{Repo: m.Repo, Target: urlPrefix + u.URL, Body: body, Queued: now, Next: now})
	}
	for _, d := range ds {
		if err := n.queue.Add(d); err != nil {
			n.log.Error("notification not queued", "repo", m.Repo, "ref", doc.Ref.Name, "target", d.Target, "err", err)
			continue
		}
		n.log.Info("notification queued", "repo", m.Repo, "user", m.User, "ref", doc.Ref.Name, "action", doc.Ref.Action,
			"target", d.Target, "seq", d.Seq)
	}
	n.worker.Wake()
	n.status()
}

// send delivers d to its target as the current settings name it.
func (n *notifier) send(ctx context.Context, d *Delivery) error {
	n.mu.Lock()
	s := n.settings
	n.mu.Unlock()
	r := s.Repos[d.Repo]
	if r == nil {
		return &PermanentError{fmt.Errorf("repository %q has no notifications any more", d.Repo)}
	}
	if to, ok := strings.CutPrefix(d.Target, emailPrefix); ok {
		for _, e := range r.Emails {
			if e.To == to {
				return sendMail(ctx, e, s.Host, d.Body, s.timeout())
			}
		}
	}
	if u, ok := strings.CutPrefix(d.Target, urlPrefix); ok {
		for _, t := range r.URLs {
			if t.URL == u {
				return sendHTTP(ctx, newHTTPClient(s.timeout()), t, d.Body)
			}
		}
	}
	return &PermanentError{fmt.Errorf("target %s is no longer configured", d.Target)}
}

// status has the queue's length reported to the parent.
func (n *notifier) status() {
	select {
	case n.changed <- struct{}{}:
	default:
	}
}

// report tells the parent the queue's length after each change, changes
// that come meanwhile told together, until ctx is done.
func (n *notifier) report(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.changed:
		}
		ipc.Send(n.parent, &ipc.NotifyStatus{Queued: uint32(n.queue.Len())}, nil)
	}
}
