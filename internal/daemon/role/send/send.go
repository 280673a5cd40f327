// Package send is gotd's send process, one per attempt to bring one
// push mirror up to date: the parent starts it for a repository and one
// of its "mirror to" targets once pushes have moved references there
// (or a failed attempt's time to retry has come). It makes the target's
// references equal to the repository's current values with
// remote.Send: created, moved, forced and deleted, in one atomic push
// when the target offers it, under a lease on the values gotd last set
// there, and tells the parent each reference's outcome. It reads the
// repository and reaches the network; it writes nothing.
package send

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"gotd/internal/daemon/ipc"
	"gotd/internal/daemon/msg"
	"gotd/internal/git/oid"
	"gotd/internal/git/refs"
	"gotd/internal/git/repo"
	"gotd/internal/protocol/remote"
)

// Job is what the parent asks of one send process.
type Job struct {
	Start ipc.SendStart
	// Queued are the references to send; Seen the values gotd last set
	// at the target, raw object ids by reference.
	Queued []string
	Seen   map[string][]byte
}

// maxJobRefs bounds the references a job may carry in all.
const maxJobRefs = 1_000_000

// ReadJob reads the parent's SendStart, SendRefs and SendGo.
func ReadJob(parent *msg.Conn) (*Job, error) {
	j := &Job{Seen: map[string][]byte{}}
	if _, err := ipc.Recv(parent, &j.Start, false); err != nil {
		return nil, fmt.Errorf("send start: %w", err)
	}
	n := 0
	for {
		raw, err := parent.Recv()
		if err != nil {
			return nil, fmt.Errorf("send start: %w", err)
		}
		if raw.Type == ipc.TypeSendGo {
			if _, err := ipc.Check(raw, &ipc.SendGo{}, false); err != nil {
				return nil, fmt.Errorf("send start: %w", err)
			}
			return j, nil
		}
		var m ipc.SendRefs
		if _, err := ipc.Check(raw, &m, false); err != nil {
			return nil, fmt.Errorf("send start: %w", err)
		}
		if n += len(m.Refs); n > maxJobRefs {
			return nil, errors.New("send start: too many references")
		}
		for _, r := range m.Refs {
			if r.Queued {
				j.Queued = append(j.Queued, r.Name)
			}
			if len(r.ID) > 0 {
				j.Seen[r.Name] = r.ID
			}
		}
	}
}

// Port returns the TCP port the target's URL reaches: the one its
// sandbox allows.
func Port(rawURL string) (uint16, error) {
	def := map[string]string{"git": "9418", "http": "80", "https": "443", "ssh": "22"}
	port := "22" // scp-like user@host:path
	if scheme, _, ok := strings.Cut(rawURL, "://"); ok {
		u, err := url.Parse(rawURL)
		if err != nil || def[scheme] == "" {
			return 0, fmt.Errorf("send: unsupported URL")
		}
		port = def[scheme]
		if p := u.Port(); p != "" {
			port = p
		}
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("send: bad port in URL")
	}
	return uint16(n), nil
}

// Main sends what j asks from r to its target and tells the parent the
// outcome: a SendRefs with every reference sent (what the target now
// holds, or why not) and a SendDone. The error is the parent's
// channel's only: a failed send is a SendDone that says why.
func Main(ctx context.Context, log *slog.Logger, parent *msg.Conn, j *Job, r *repo.Repo) error {
	st := &j.Start
	log = log.With("repo", st.Name, "target", Redact(st.URL))
	began := time.Now()
	outcome, err := run(ctx, j, r)
	done := &ipc.SendDone{Status: ipc.SendOK}
	if err != nil {
		done = &ipc.SendDone{Status: ipc.SendFailed, Message: clip(err.Error())}
		// The parent logs it, once while it stays the same.
		log.Debug("push mirror: send failed", "err", err)
	} else {
		moved, refused := 0, 0
		for _, o := range outcome {
			switch {
			case o.Status != "":
				refused++
				log.Warn("push mirror: reference not sent", "ref", o.Name, "why", o.Status)
			case o.Queued:
				moved++
			}
		}
		log.Info("push mirror: sent", "updated", moved, "refused", refused, "elapsed", time.Since(began).Round(time.Millisecond))
	}
	for len(outcome) > 0 {
		n := min(len(outcome), chunk(outcome))
		if err := ipc.Send(parent, &ipc.SendRefs{Refs: outcome[:n]}, nil); err != nil {
			return fmt.Errorf("send: tell the parent: %w", err)
		}
		outcome = outcome[n:]
	}
	if err := ipc.Send(parent, done, nil); err != nil {
		return fmt.Errorf("send: tell the parent: %w", err)
	}
	return nil
}

// chunk returns how many of refs fit one SendRefs message.
func chunk(refs []ipc.SendRef) int {
	size := 4
	for i, r := range refs {
		size += 16 + len(r.Name) + len(r.ID) + len(r.Status)
		if size > msg.MaxSize-1024 || i == ipc.MaxSendRefs {
			return i
		}
	}
	return len(refs)
}

// run sends and returns each reference's outcome: Queued set for the
// ones the target moved, ID what the target holds, Status why not.
func run(ctx context.Context, j *Job, r *repo.Repo) ([]ipc.SendRef, error) {
	st := &j.Start
	ctx, cancel := context.WithTimeout(ctx, time.Duration(st.Timeout)*time.Second)
	defer cancel()
	local := map[string]oid.ID{}
	err := r.Refs.List("refs/", func(ref refs.Ref) error {
		if ref.Target == "" && mirrored(ref.Name) {
			local[ref.Name] = ref.ID
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("send: references: %w", err)
	}
	take := map[string]bool{}
	for _, n := range j.Queued {
		if mirrored(n) {
			take[n] = true
		}
	}
	if st.All {
		for n := range local {
			take[n] = true
		}
		for n := range j.Seen {
			if mirrored(n) {
				take[n] = true
			}
		}
	}
	opts := remote.SendOptions{URL: st.URL, Repo: r, Timeout: time.Duration(st.Timeout) * time.Second,
		Take: func(name string) bool {
			// On a first send, every branch and tag, the target's
			// included; else the queued references and, for All,
			// the ones gotd has or set there.
			if st.NoLease && st.All {
				return mirrored(name)
			}
			return take[name]
		}}
	if st.AuthUser != "" {
		opts.Auth = &remote.BasicAuth{User: st.AuthUser, Password: st.AuthPassword}
	}
	opts.CA = st.CA
	if !st.NoLease {
		opts.Expect = func(name string) (oid.ID, bool) {
			raw, ok := j.Seen[name]
			if !ok {
				return oid.ID{}, false
			}
			id, err := oid.FromBytes(r.Format, raw)
			return id, err == nil
		}
	}
	if strings.HasPrefix(st.URL, "ssh://") || !strings.Contains(st.URL, "://") {
		s, err := sshOptions(st)
		if err != nil {
			return nil, err
		}
		opts.SSH = s
	}
	res, err := remote.Send(ctx, opts)
	if err != nil {
		return nil, err
	}
	done := map[string]bool{}
	var out []ipc.SendRef
	for _, u := range res.Updates {
		done[u.Name] = true
		o := ipc.SendRef{Name: u.Name, Queued: true, Status: u.Status}
		if u.Status == "" && !u.New.IsNull() {
			o.ID = u.New.Bytes()
		}
		out = append(out, o)
	}
	// What needed no update: the target holds the repository's value
	// (or, for a reference the repository lacks, none).
	for n := range take {
		if done[n] {
			continue
		}
		o := ipc.SendRef{Name: n}
		if id, ok := local[n]; ok {
			o.ID = id.Bytes()
		}
		out = append(out, o)
	}
	return out, nil
}

// mirrored reports whether a reference is one push mirrors follow:
// branches and tags.
func mirrored(name string) bool {
	return strings.HasPrefix(name, "refs/heads/") || strings.HasPrefix(name, "refs/tags/")
}

// sshOptions are the SSH settings of st: its key, and the host keys it
// accepts.
func sshOptions(st *ipc.SendStart) (*remote.SSH, error) {
	s := &remote.SSH{KnownHosts: st.KnownHosts}
	if len(st.Key) > 0 {
		signer, err := ssh.ParsePrivateKey(st.Key)
		if err != nil {
			return nil, fmt.Errorf("send: ssh key: %w", err)
		}
		s.Signer = signer
	}
	for _, line := range st.HostKeys {
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
		if err != nil {
			return nil, fmt.Errorf("send: host key: %w", err)
		}
		s.HostKeys = append(s.HostKeys, k)
	}
	return s, nil
}

// Redact returns a URL for logs: no user information.
func Redact(rawURL string) string {
	if u, err := url.Parse(rawURL); err == nil && u.User != nil {
		u.User = nil
		return u.String()
	}
	return rawURL
}

// clip bounds a message to what SendDone carries.
func clip(s string) string {
	if len(s) > ipc.MaxMessage {
		return s[:ipc.MaxMessage-3] + "..."
	}
	return s
}
