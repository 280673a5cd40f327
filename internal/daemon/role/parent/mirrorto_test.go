package parent

import (
	"encoding/hex"
	"log/slog"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gotd/internal/daemon/config"
	"gotd/internal/daemon/ipc"
)

// TestMirrorQueue: pushes queue their moved branches and tags for each
// target, a send's report takes out what it sent unless pushed again
// meanwhile, becomes the lease, leaves references the target would not
// have overwritten out with the error shown, and keeps what the target
// refused for the retry; the state survives in the spool file.
func TestMirrorQueue(t *testing.T) {
	src := "mirror spool \"" + t.TempDir() + "/spool\"\nrepository \"r\" {\n\tpath \"/r.git\"\n\tmirror to \"git://h/r.git\"\n}\n"
	cfg, err := config.Parse("m.conf", []byte(src), config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{log: slog.New(slog.DiscardHandler), cfg: cfg, halted: true} // halted: no process is started
	d.startPushMirrors()
	tg := d.pushMirrors[mirrorKey("r", "git://h/r.git")]
	if tg == nil {
		t.Fatal("no target")
	}
	if got, want := filepath.Dir(tg.file), cfg.MirrorSpoolDir(); got != want {
		t.Errorf("spool file in %s; want %s", got, want)
	}
	push := func(updated uint32, names ...string) {
		end := &ipc.SessionEnd{Updated: updated}
		for _, n := range names {
			end.Updates = append(end.Updates, ipc.Update{Name: n, Move: "fast-forward"})
		}
		end.Updates = append(end.Updates, ipc.Update{Name: "refs/heads/refused", Refused: "protected"})
		d.mirrorPushed("r", end)
	}
	push(3, "refs/heads/main", "refs/tags/v1", "refs/notes/commits")
	if got, want := tg.st.Queued, map[string]uint64{"refs/heads/main": 1, "refs/tags/v1": 1}; !reflect.DeepEqual(got, want) {
		t.Errorf("queued: got %v; want %v", got, want)
	}

	// A send starts (the first: every branch and tag), a push to main
	// and a new branch come while it runs; it reports main, v1 and an
	// old branch it deleted, all done.
	tg.gen, tg.all = tg.st.Gen, true
	push(2, "refs/heads/main", "refs/heads/new")
	a, b := hexID("aa"), hexID("bb")
	tg.refs = []ipc.SendRef{{Name: "refs/heads/main", ID: a, Queued: true}, {Name: "refs/tags/v1", ID: b}, {Name: "refs/heads/old", Queued: true}}
	d.mirrorSent(tg, time.Now())
	if got, want := tg.st.Queued, map[string]uint64{"refs/heads/main": 2, "refs/heads/new": 2}; !reflect.DeepEqual(got, want) {
		t.Errorf("queued after the send: got %v; want %v (pushed meanwhile)", got, want)
	}
	if got, want := tg.st.Seen, map[string]string{"refs/heads/main": hex.EncodeToString(a), "refs/tags/v1": hex.EncodeToString(b)}; !reflect.DeepEqual(got, want) {
		t.Errorf("lease: got %v; want %v", got, want)
	}
	if !tg.st.Contacted || tg.st.LastSuccess.IsZero() || tg.st.LastError != "" {
		t.Errorf("after a first send: %+v", tg.st)
	}

	// The next send: main was moved at the target by another writer,
	// new was refused by the target's hook.
	tg.gen, tg.all = tg.st.Gen, false
	tg.refs = []ipc.SendRef{{Name: "refs/heads/main", Queued: true, Status: "the target moved it: not overwritten"},
		{Name: "refs/heads/new", Queued: true, Status: "pre-receive hook declined"}}
	d.mirrorSent(tg, time.Now())
	if got, want := tg.st.Queued, map[string]uint64{"refs/heads/new": 2}; !reflect.DeepEqual(got, want) {
		t.Errorf("queued after refusals: got %v; want %v", got, want)
	}
	if tg.st.Seen["refs/heads/main"] != hex.EncodeToString(a) {
		t.Errorf("lease of main: got %s; want the value gotd set, %x", tg.st.Seen["refs/heads/main"], a)
	}
	if !strings.Contains(tg.st.LastError, "2 references not sent: refs/heads/main: the target moved it") || tg.st.Attempts != 1 || tg.st.Next.IsZero() {
		t.Errorf("after refusals: %+v", tg.st)
	}

	// More names than a push lists: every branch and tag.
	push(ipc.MaxUpdates+5, "refs/heads/main")
	if tg.st.All != tg.st.Gen || tg.st.Queued != nil || tg.st.Attempts != 0 {
		t.Errorf("after a long push: %+v; want all queued, attempts reset", tg.st)
	}

	// The spool keeps it: a new daemon reads the same state.
	d2 := &daemon{log: slog.New(slog.DiscardHandler), cfg: cfg, halted: true}
	d2.startPushMirrors()
	got := d2.pushMirrors[mirrorKey("r", "git://h/r.git")].st
	if got.All != tg.st.All || got.Gen != tg.st.Gen || !reflect.DeepEqual(got.Seen, tg.st.Seen) || got.LastError != tg.st.LastError {
		t.Errorf("read back: %+v\nwant %+v", got, tg.st)
	}
}

// TestMirrorBackoff: 10 s, then twice as long each time, up to 30
// minutes.
func TestMirrorBackoff(t *testing.T) {
	now := time.Now()
	tg := &mirrorTarget{}
	var got []time.Duration
	for range 10 {
		tg.backoff(now)
		got = append(got, tg.st.Next.Sub(now))
	}
	want := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second,
		320 * time.Second, 640 * time.Second, 1280 * time.Second, 30 * time.Minute, 30 * time.Minute}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v; want %v", got, want)
	}
}

func hexID(b string) []byte {
	id, _ := hex.DecodeString(strings.Repeat(b, 20))
	return id
}

// TestMirrorFailedLogsOnce: a target that stays down with the same
// error is logged once, not at every retry; a new error is logged.
func TestMirrorFailedLogsOnce(t *testing.T) {
	var out strings.Builder
	d := &daemon{log: slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	tg := &mirrorTarget{st: mirrorState{Repo: "r", URL: "git://h/r.git"}}
	for _, why := range []string{"connection refused", "connection refused", "connection refused", "host key not accepted"} {
		d.mirrorFailed(tg, why)
	}
	if got := strings.Count(out.String(), "level=ERROR"); got != 2 {
		t.Errorf("got %d error lines; want 2 (one per distinct error):\n%s", got, out.String())
	}
	if tg.st.Attempts != 4 {
		t.Errorf("attempts: got %d; want 4", tg.st.Attempts)
	}
}

// TestMirrorReload: a reload that removes a target drops it (once its
// send ends, when one runs), and one that adds a target loads it.
func TestMirrorReload(t *testing.T) {
	spool := t.TempDir() + "/spool"
	conf := func(urls ...string) *config.Config {
		src := "mirror spool \"" + spool + "\"\nrepository \"r\" {\n\tpath \"/r.git\"\n"
		for _, u := range urls {
			src += "\tmirror to \"" + u + "\"\n"
		}
		cfg, err := config.Parse("m.conf", []byte(src+"}\n"), config.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	d := &daemon{log: slog.New(slog.DiscardHandler), cfg: conf("git://a/r", "git://b/r"), halted: true}
	d.startPushMirrors()
	busy := d.pushMirrors[mirrorKey("r", "git://b/r")]
	busy.proc = &child{role: RoleSend}
	d.cfg = conf("git://c/r")
	d.startPushMirrors()
	var got []string
	for k, tg := range d.pushMirrors {
		got = append(got, strings.TrimPrefix(k, "r\x00")+map[bool]string{true: " removed"}[tg.removed])
	}
	slices.Sort(got)
	if want := []string{"git://b/r removed", "git://c/r"}; !reflect.DeepEqual(got, want) {
		t.Errorf("targets after the reload: got %q; want %q", got, want)
	}
	busy.done = &ipc.SendDone{Status: ipc.SendOK}
	d.sendExited(busy)
	if tg := d.pushMirrors[mirrorKey("r", "git://b/r")]; tg != nil || len(d.pushMirrors) != 1 {
		t.Errorf("the removed target is still there after its send: %d targets", len(d.pushMirrors))
	}
}
