package parent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"gotd/internal/daemon/config"
	"gotd/internal/daemon/files"
	"gotd/internal/daemon/ipc"
	"gotd/internal/daemon/msg"
	"gotd/internal/daemon/role/send"
)

// Push mirrors ("mirror to"): after every push that moves branches or
// tags, the moved references are queued for each of the repository's
// targets, in a spool file of the target's, and a send process makes
// the target's references equal to the repository's current values.
// One send runs at a time per target; pushes that come meanwhile, or
// while the target is down, are sent together by the next one. Failed
// sends are tried again with a growing delay, across restarts.

// Retry policy of push mirrors, as notify's: the first retry after
// mirrorRetryFirst, each next one after twice as long, up to
// mirrorRetryMax. A target is never given up: its queue holds one
// entry, whatever the number of pushes.
const (
	mirrorRetryFirst = 10 * time.Second
	mirrorRetryMax   = 30 * time.Minute
	// mirrorSendTimeout bounds one send.
	mirrorSendTimeout = time.Hour
	// maxMirrorQueued bounds the references queued by name for one
	// target: past it the next send takes every branch and tag.
	maxMirrorQueued = 10000
	// maxMirrorKey bounds an SSH key file read for a send.
	maxMirrorKey = ipc.MaxPEM
)

// mirrorState is what the spool keeps of a target, one JSON file each.
type mirrorState struct {
	Repo string `json:"repo"`
	URL  string `json:"url"`
	// Gen counts the pushes queued; Queued holds each queued
	// reference with the Gen of its last push, All the Gen of a push
	// whose references were not all named (0: none), so that a send
	// that took them removes only what was queued before it started.
	Gen    uint64            `json:"gen"`
	Queued map[string]uint64 `json:"queued,omitempty"`
	All    uint64            `json:"all,omitempty"`
	// Contacted: a send has made the target equal once; before that
	// the next send takes every branch and tag, without a lease.
	Contacted bool `json:"contacted"`
	// Seen are the values gotd last set at the target (hex), the
	// lease of the next send.
	Seen map[string]string `json:"seen,omitempty"`
	// The target's history, for gotctl info and the retries.
	LastSuccess time.Time `json:"last_success,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	Attempts    int       `json:"attempts,omitempty"`
	Next        time.Time `json:"next,omitzero"`
}

// mirrorTarget is one "mirror to" target of one repository: its state,
// and its send process while one runs.
type mirrorTarget struct {
	file string // in the spool
	st   mirrorState
	proc *child
	// gen is the Gen the running send started from, and all whether
	// it took every branch and tag; refs and done its report.
	gen      uint64
	all      bool
	refs     []ipc.SendRef
	done     *ipc.SendDone
	timer    *time.Timer
	removed  bool // no longer configured: dropped once its send ends
	badLines int  // messages refused from its process
}

// pending reports whether t has references to send.
func (t *mirrorTarget) pending() bool {
	return len(t.st.Queued) > 0 || t.st.All != 0
}

// mirrorKey names a target in the daemon's table.
func mirrorKey(repo, url string) string { return repo + "\x00" + url }

// PrepareMirrorSpool creates the push mirrors' spool of cfg, when it
// has push mirrors, and gives it to uid and gid: gotd's start calls it
// as root, before the parent becomes the daemon's user.
func PrepareMirrorSpool(cfg *config.Config, uid, gid int) error {
	if !cfg.MirrorTargets() {
		return nil
	}
	dir := cfg.MirrorSpoolDir()
	if err := files.MakeDirs(dir, 0o700); err != nil { // parents 0755
		return fmt.Errorf("mirror spool: %w", err)
	}
	if err := os.Lchown(dir, uid, gid); err != nil {
		return fmt.Errorf("mirror spool: %w", err)
	}
	return nil
}

// mirrorSpool returns the spool directory, created if need be (mode
// 0700, the daemon's user's only).
func (d *daemon) mirrorSpool() (string, error) {
	dir := d.cfg.MirrorSpoolDir()
	if err := files.MakeDirs(dir, 0o700); err != nil {
		return "", fmt.Errorf("mirror spool: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return "", fmt.Errorf("mirror spool: %w", err)
	}
	st, _ := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.IsDir():
		return "", fmt.Errorf("mirror spool: %s is not a directory", dir)
	case fi.Mode().Perm()&0o077 != 0:
		return "", fmt.Errorf("mirror spool: %s is accessible to others than its owner (mode %v)", dir, fi.Mode().Perm())
	case st != nil && int(st.Uid) != os.Geteuid():
		return "", fmt.Errorf("mirror spool: %s is not owned by the daemon's user", dir)
	}
	return dir, nil
}

// startPushMirrors loads the configured targets' states from the spool and
// schedules the sends they have queued: at start, and after a reload
// (targets no longer configured are dropped, once a send running to
// them ends).
func (d *daemon) startPushMirrors() {
	if d.pushMirrors == nil {
		d.pushMirrors = map[string]*mirrorTarget{}
	}
	want := map[string]bool{}
	var dir string
	for _, r := range d.cfg.Repositories {
		for _, m := range r.MirrorTo {
			key := mirrorKey(r.Name, m.URL)
			want[key] = true
			if d.pushMirrors[key] != nil {
				d.pushMirrors[key].removed = false
				continue
			}
			if dir == "" {
				var err error
				if dir, err = d.mirrorSpool(); err != nil {
					d.log.Error("push mirrors are off", "err", err)
					return
				}
			}
			sum := sha256.Sum256([]byte(key))
			t := &mirrorTarget{file: filepath.Join(dir, hex.EncodeToString(sum[:16])+".json"),
				st: mirrorState{Repo: r.Name, URL: m.URL}}
			if err := t.load(); err != nil {
				d.log.Error("push mirror: its queue file is damaged: starting afresh", "repo", r.Name, "target", send.Redact(m.URL), "err", err)
				t.st = mirrorState{Repo: r.Name, URL: m.URL}
			}
			d.pushMirrors[key] = t
			if t.pending() {
				d.scheduleMirror(t)
			}
		}
	}
	for key, t := range d.pushMirrors {
		if !want[key] {
			t.removed = true
			if t.timer != nil {
				t.timer.Stop()
			}
			if t.proc == nil {
				delete(d.pushMirrors, key)
			}
		}
	}
}

// load reads t's state from its file, if it has one.
func (t *mirrorTarget) load() error {
	data, err := os.ReadFile(t.file)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var st mirrorState
	if err := json.Unmarshal(data, &st); err != nil {
		os.Rename(t.file, t.file+".bad")
		return err
	}
	if st.Repo != t.st.Repo || st.URL != t.st.URL {
		return fmt.Errorf("%s: the file of another target", t.file)
	}
	t.st = st
	return nil
}

// save writes t's state: temporary file, sync, rename, so that the file
// is whole or absent.
func (t *mirrorTarget) save() error {
	data, err := json.Marshal(&t.st)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(t.file), ".tmp-")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), t.file)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// mirrorPushed queues the references a push to the repository named
// name moved, as its SessionEnd tells them, for each of its targets.
// The references it did not list (more than ipc.MaxUpdates) make the
// next send take every branch and tag.
func (d *daemon) mirrorPushed(name string, end *ipc.SessionEnd) {
	r := d.cfg.FindRepository(name)
	if r == nil || len(r.MirrorTo) == 0 {
		return
	}
	var moved []string
	for _, u := range end.Updates {
		if u.Move != "" && u.Refused == "" {
			moved = append(moved, u.Name)
		}
	}
	all := len(moved) < int(end.Updated)
	for _, m := range r.MirrorTo {
		t := d.pushMirrors[mirrorKey(r.Name, m.URL)]
		if t == nil {
			continue // its spool could not be prepared
		}
		t.st.Gen++
		any := all
		for _, n := range moved {
			if !strings.HasPrefix(n, "refs/heads/") && !strings.HasPrefix(n, "refs/tags/") {
				continue
			}
			if t.st.Queued == nil {
				t.st.Queued = map[string]uint64{}
			}
			t.st.Queued[n] = t.st.Gen
			any = true
		}
		if !any {
			continue
		}
		if all || len(t.st.Queued) > maxMirrorQueued {
			t.st.All, t.st.Queued = t.st.Gen, nil
		}
		// A push is a new reason to try: a target that was down may
		// be back.
		t.st.Attempts, t.st.Next = 0, time.Time{}
		if err := t.save(); err != nil {
			d.log.Error("push mirror: cannot queue", "repo", r.Name, "target", send.Redact(m.URL), "err", err)
		}
		d.scheduleMirror(t)
	}
}

// scheduleMirror starts a send to t now if it is due and none runs, or
// has pushMirrorDue called when it is.
func (d *daemon) scheduleMirror(t *mirrorTarget) {
	if t.proc != nil || t.removed || d.halted {
		return // the end of the running send schedules the next
	}
	if t.timer != nil {
		t.timer.Stop()
		t.timer = nil
	}
	if wait := time.Until(t.st.Next); wait > 0 {
		t.timer = time.AfterFunc(wait, func() { d.events <- event{pushMirrorDue: t} })
		return
	}
	if err := d.startSend(t); err != nil {
		d.log.Error("push mirror: cannot start a send", "repo", t.st.Repo, "target", send.Redact(t.st.URL), "err", err)
		d.mirrorFailed(t, "cannot start a send: "+err.Error())
		if err := t.save(); err != nil {
			d.log.Error("push mirror: cannot save its queue", "repo", t.st.Repo, "target", send.Redact(t.st.URL), "err", err)
		}
		d.scheduleMirror(t) // after the retry delay
	}
}

// pushMirrorDue handles the event of t's timer.
func (d *daemon) pushMirrorDue(t *mirrorTarget) {
	t.timer = nil
	if d.pushMirrors[mirrorKey(t.st.Repo, t.st.URL)] == t && t.pending() {
		d.scheduleMirror(t)
	}
}

// startSend starts a send process for t with what it has queued.
func (d *daemon) startSend(t *mirrorTarget) error {
	r := d.cfg.FindRepository(t.st.Repo)
	if r == nil {
		return errors.New("repository not configured")
	}
	i := slices.IndexFunc(r.MirrorTo, func(m config.MirrorTo) bool { return m.URL == t.st.URL })
	if i < 0 {
		return errors.New("target not configured")
	}
	m := r.MirrorTo[i]
	start := &ipc.SendStart{Path: r.Path, Name: r.Name, URL: m.URL, AuthUser: m.AuthUser, AuthPassword: m.AuthPassword,
		KnownHosts: m.KnownHosts, HostKeys: m.HostKeys, All: t.st.All != 0 || !t.st.Contacted, NoLease: !t.st.Contacted,
		Timeout: uint64(mirrorSendTimeout / time.Second), CA: m.CA}
	if m.KeyFile != "" {
		key, err := readKey(m.KeyFile)
		if err != nil {
			return err
		}
		start.Key = key
	}
	byName := map[string]*ipc.SendRef{}
	for n := range t.st.Queued {
		byName[n] = &ipc.SendRef{Name: n, Queued: true}
	}
	for n, hexID := range t.st.Seen {
		id, err := hex.DecodeString(hexID)
		if err != nil {
			continue
		}
		if byName[n] == nil {
			byName[n] = &ipc.SendRef{Name: n}
		}
		byName[n].ID = id
	}
	refs := make([]ipc.SendRef, 0, len(byName))
	for _, r := range byName {
		refs = append(refs, *r)
	}
	slices.SortFunc(refs, func(a, b ipc.SendRef) int { return strings.Compare(a.Name, b.Name) })
	ch, err := d.spawn(RoleSend, 0, nil)
	if err != nil {
		return err
	}
	t.proc, t.gen, t.all, t.refs, t.done = ch, t.st.Gen, start.All, nil, nil
	send := func(m ipc.Message) bool {
		if err := ipc.Send(ch.ch, m, nil); err != nil {
			d.log.Error("push mirror: cannot start a send", "err", err)
			ch.kill()
			return false
		}
		return true
	}
	if !send(start) {
		return nil // its exit is a failed attempt
	}
	for len(refs) > 0 {
		n := min(len(refs), mirrorChunk(refs))
		if !send(&ipc.SendRefs{Refs: refs[:n]}) {
			return nil
		}
		refs = refs[n:]
	}
	send(&ipc.SendGo{})
	return nil
}

// mirrorChunk returns how many of refs fit one SendRefs message.
func mirrorChunk(refs []ipc.SendRef) int {
	size := 4
	for i, r := range refs {
		size += 16 + len(r.Name) + len(r.ID)
		if size > msg.MaxSize-1024 || i == ipc.MaxSendRefs {
			return i
		}
	}
	return len(refs)
}

// readKey reads an SSH private key file, bounded.
func readKey(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, fmt.Errorf("ssh key: %w", err)
	}
	defer f.Close()
	b, err := config.ReadAll(f, maxMirrorKey)
	if err != nil {
		return nil, fmt.Errorf("ssh key %s: %w", path, err)
	}
	return b, nil
}

// pushMirrorOf returns the target whose send process is ch, or nil.
func (d *daemon) pushMirrorOf(ch *child) *mirrorTarget {
	if ch == nil || ch.role != RoleSend {
		return nil
	}
	for _, t := range d.pushMirrors {
		if t.proc == ch {
			return t
		}
	}
	return nil
}

// fromSend handles a message of t's send process: SendRefs, then one
// SendDone.
func (d *daemon) fromSend(t *mirrorTarget, raw msg.Msg) error {
	if t.done != nil {
		return fmt.Errorf("unexpected message %d", raw.Type)
	}
	switch raw.Type {
	case ipc.TypeSendRefs:
		var m ipc.SendRefs
		if _, err := ipc.Check(raw, &m, false); err != nil {
			return err
		}
		if len(t.refs)+len(m.Refs) > maxMirrorQueued+len(t.st.Seen)+1<<20 {
			return errors.New("too many references")
		}
		t.refs = append(t.refs, m.Refs...)
		return nil
	}
	var m ipc.SendDone
	if _, err := ipc.Check(raw, &m, false); err != nil {
		return err
	}
	t.done = &m
	return nil
}

// sendExited records how a send to t ended and schedules the next one:
// at once when pushes came meanwhile, after the retry delay when it
// failed.
func (d *daemon) sendExited(t *mirrorTarget) {
	ch := t.proc
	t.proc = nil
	now := time.Now()
	switch m := t.done; {
	case m == nil:
		d.log.Error("push mirror: the send process exited without a report", "repo", t.st.Repo, "target", send.Redact(t.st.URL), "pid", ch.pid(), "err", ch.status)
		d.mirrorFailed(t, fmt.Sprintf("the send process failed (%v)", ch.status))
	case m.Status == ipc.SendFailed:
		d.mirrorFailed(t, m.Message)
	default:
		d.mirrorSent(t, now)
	}
	if err := t.save(); err != nil {
		d.log.Error("push mirror: cannot save its queue", "repo", t.st.Repo, "target", send.Redact(t.st.URL), "err", err)
	}
	if t.removed {
		delete(d.pushMirrors, mirrorKey(t.st.Repo, t.st.URL))
		return
	}
	if t.pending() {
		d.scheduleMirror(t)
	}
}

// mirrorSent applies the report of a send that reached the target:
// references it moved (or found equal) leave the queue unless pushed
// again since the send started, and their values become the lease;
// references it would not overwrite leave the queue as well, with the
// target's last error saying so (the next push that moves them tries
// again); others the target refused stay queued for the retry.
func (d *daemon) mirrorSent(t *mirrorTarget, now time.Time) {
	if t.st.Seen == nil {
		t.st.Seen = map[string]string{}
	}
	var refused []string
	retry := false
	for _, r := range t.refs {
		switch {
		case r.Status == "":
			if len(r.ID) == 0 {
				delete(t.st.Seen, r.Name)
			} else {
				t.st.Seen[r.Name] = hex.EncodeToString(r.ID)
			}
		case strings.HasPrefix(r.Status, "the target moved it"):
			refused = append(refused, r.Name)
		default:
			refused = append(refused, r.Name)
			retry = true
			continue // stays queued
		}
		if g, ok := t.st.Queued[r.Name]; ok && g <= t.gen {
			delete(t.st.Queued, r.Name)
		}
	}
	if t.all && t.st.All <= t.gen {
		t.st.All = 0
	}
	if t.all {
		t.st.Contacted = true
	}
	if len(refused) == 0 {
		t.st.LastSuccess, t.st.Attempts, t.st.Next = now, 0, time.Time{}
		return
	}
	slices.Sort(refused)
	why := ""
	for _, r := range t.refs {
		if r.Name == refused[0] {
			why = r.Status
		}
	}
	msg := fmt.Sprintf("%d references not sent: %s: %s", len(refused), refused[0], why)
	d.log.Error("push mirror: references not sent", "repo", t.st.Repo, "target", send.Redact(t.st.URL), "refs", strings.Join(refused[:min(len(refused), 10)], " "), "why", why)
	t.st.LastError, t.st.LastErrorAt = truncate(msg, ipc.MaxMessage), now
	if retry {
		t.backoff(now)
	} else {
		t.st.Attempts, t.st.Next = 0, time.Time{}
	}
}

// mirrorFailed records a send to t that made no update.
// The failure is logged once while it stays the same (a target down
// for a day is not logged at every retry); gotctl info shows the
// attempts.
func (d *daemon) mirrorFailed(t *mirrorTarget, why string) {
	now := time.Now()
	why = truncate(why, ipc.MaxMessage)
	level := slog.LevelError
	if why == t.st.LastError && t.st.Attempts > 0 {
		level = slog.LevelDebug
	}
	t.st.LastError, t.st.LastErrorAt = why, now
	t.backoff(now)
	d.log.Log(context.Background(), level, "push mirror: send failed, will try again", "repo", t.st.Repo, "target", send.Redact(t.st.URL),
		"err", why, "attempts", t.st.Attempts, "next", t.st.Next.UTC().Format(time.RFC3339))
}

// backoff sets t's next attempt after a failed one at now.
func (t *mirrorTarget) backoff(now time.Time) {
	t.st.Attempts++
	wait := mirrorRetryFirst
	for i := 1; i < t.st.Attempts && wait < mirrorRetryMax; i++ {
		wait *= 2
	}
	t.st.Next = now.Add(min(wait, mirrorRetryMax))
}

// mirrorProcs are the running send processes, for shutdown.
func (d *daemon) mirrorProcs() []*child {
	var out []*child
	for _, t := range d.pushMirrors {
		if t.proc != nil {
			out = append(out, t.proc)
		}
		if t.timer != nil {
			t.timer.Stop()
		}
	}
	return out
}

// mirrorToInfo describes the push mirrors, for gotctl info: per target
// the references queued, whether a send runs, the last success, the
// last error and the next attempt.
func (d *daemon) mirrorToInfo(b *strings.Builder) {
	stamp := func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.UTC().Format(time.RFC3339)
	}
	for _, r := range d.cfg.Repositories {
		for _, m := range r.MirrorTo {
			t := d.pushMirrors[mirrorKey(r.Name, m.URL)]
			if t == nil {
				fmt.Fprintf(b, "mirror %q to %s: off (no spool)\n", r.Name, send.Redact(m.URL))
				continue
			}
			queued := fmt.Sprint(len(t.st.Queued))
			if t.st.All != 0 || !t.st.Contacted && t.pending() {
				queued = "all"
			}
			state := "idle"
			switch {
			case t.proc != nil:
				state = "sending"
			case t.pending() && !t.st.Next.IsZero():
				state = "waiting"
			}
			fmt.Fprintf(b, "mirror %q to %s: %s, queued %s, last success %s", r.Name, send.Redact(m.URL), state, queued, stamp(t.st.LastSuccess))
			if t.st.LastError != "" {
				fmt.Fprintf(b, ", last error %s %q", stamp(t.st.LastErrorAt), t.st.LastError)
			}
			if t.pending() && !t.st.Next.IsZero() {
				fmt.Fprintf(b, ", next attempt %s", stamp(t.st.Next))
			}
			b.WriteString("\n")
		}
	}
}
