package refs

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"gotd/internal/git/oid"
	"gotd/internal/gittest"
)

// readLogT returns name's reflog, oldest first, failing on a bad line.
func readLogT(t *testing.T, s *Store, name string) []LogEntry {
	t.Helper()
	var got []LogEntry
	err := s.ReadLog(name, func(e LogEntry) error {
		got = append(got, e)
		return nil
	}, func(line int, err error) { t.Errorf("%s line %d: %v", name, line, err) })
	if err != nil {
		t.Fatalf("ReadLog(%s): %v", name, err)
	}
	return got
}

// TestUpdateReflog writes a branch's life through Update and reads it
// back with C Git: created, fast-forwarded, forced back, deleted and
// created again; HEAD's reflog follows its branch.
func TestUpdateReflog(t *testing.T) {
	for _, f := range formats {
		t.Run(f.String(), func(t *testing.T) {
			r := newTestRepo(t, f)
			zero := oid.Zero(f)
			c := func(i int) oid.ID { return r.c(t, i) }
			when := time.Unix(1700000000, 0)
			who := func(msg string) Who {
				when = when.Add(time.Minute)
				return Who{Name: "alice", Email: "alice@gotd", When: when, Message: msg}
			}
			steps := []Update{
				{Name: "refs/heads/x", Old: zero, New: c(3), Who: who("push via ssh: created")},
				{Name: "refs/heads/x", Old: c(3), New: c(1), Who: who("push via ssh: fast-forward")},
				{Name: "refs/heads/x", Old: c(1), New: c(2), Who: who("push via http: forced-update")},
				{Name: "refs/heads/x", Old: c(2), New: zero, Who: who("push via git: deleted")},
				{Name: "refs/heads/never", New: zero, Who: who("push: deleted")}, // absent: no entry
			}
			for _, u := range steps {
				if err := r.s.Update([]Update{u}); err != nil {
					t.Fatalf("Update(%s → %s): %v", u.Name, u.New, err)
				}
			}
			// Deleted: the history is kept; C Git says it exists and
			// fsck accepts the null id.
			if _, err := gittest.Run(t, r.dir, nil, "reflog", "exists", "refs/heads/x"); err != nil {
				t.Errorf("git reflog exists refs/heads/x after the deletion: %v", err)
			}
			if r.s.LogExists("refs/heads/never") {
				t.Errorf("reflog of a deletion of nothing")
			}
			gittest.Git(t, r.dir, "fsck", "--full", "--strict")
			if err := r.s.Update([]Update{{Name: "refs/heads/x", Old: zero, New: c(0), Who: who("gotadmin ref: restored")}}); err != nil {
				t.Fatal(err)
			}
			got := readLogT(t, r.s, "refs/heads/x")
			want := []struct {
				old, new oid.ID
				msg      string
			}{
				{zero, c(3), "push via ssh: created"},
				{c(3), c(1), "push via ssh: fast-forward"},
				{c(1), c(2), "push via http: forced-update"},
				{c(2), zero, "push via git: deleted"},
				{zero, c(0), "gotadmin ref: restored"},
			}
			if len(got) != len(want) {
				t.Fatalf("got %d entries %+v; want %d", len(got), got, len(want))
			}
			for i, w := range want {
				g := got[i]
				if g.Old != w.old || g.New != w.new || g.Message != w.msg || g.Name != "alice" || g.Email != "alice@gotd" || i > 0 && !g.When.After(got[i-1].When) {
					t.Errorf("entry %d: got %v %v %q %q %q %v; want %v %v %q", i, g.Old, g.New, g.Name, g.Email, g.Message, g.When, w.old, w.new, w.msg)
				}
			}
			// C Git shows the entries newest first, without the
			// deletion (null new id).
			out := gittest.Git(t, r.dir, "log", "-g", "--format=%H %gd %gn <%ge> %gs", "refs/heads/x")
			wantOut := strings.Join([]string{
				c(0).String() + " x@{0} alice <alice@gotd> gotadmin ref: restored",
				c(2).String() + " x@{2} alice <alice@gotd> push via http: forced-update",
				c(1).String() + " x@{3} alice <alice@gotd> push via ssh: fast-forward",
				c(3).String() + " x@{4} alice <alice@gotd> push via ssh: created",
			}, "\n") + "\n"
			if out != wantOut {
				t.Errorf("git log -g:\n%s\nwant\n%s", out, wantOut)
			}
			gittest.Git(t, r.dir, "fsck", "--full", "--strict")

			// main is HEAD's branch: its moves are in HEAD's reflog too.
			if err := r.s.Update([]Update{{Name: "refs/heads/main", New: c(1), Who: who("push via ssh: forced-update")}}); err != nil {
				t.Fatal(err)
			}
			out = gittest.Git(t, r.dir, "reflog", "show", "--format=%H %gs", "HEAD")
			if want := c(1).String() + " push via ssh: forced-update\n"; out != want {
				t.Errorf("git reflog show HEAD: %q; want %q", out, want)
			}
			if g := readLogT(t, r.s, "refs/heads/main"); len(g) != 1 || g[0].Old != c(0) || g[0].New != c(1) {
				t.Errorf("main's reflog: %+v", g)
			}
			if got := tree(t, r.dir); hasLock(got) {
				t.Errorf("lock files left: %v", got)
			}
		})
	}
}

// TestUpdateReflogConflicts: the kept reflog of a deleted reference
// gives way to a reference whose name conflicts with it; a failed
// transaction takes its lines back; an update without Who logs nothing.
func TestUpdateReflogConflicts(t *testing.T) {
	f := oid.SHA1
	r := newTestRepo(t, f)
	zero := oid.Zero(f)
	who := Who{Name: "bob", Message: "push"}
	for _, u := range []Update{
		{Name: "refs/heads/a", Old: zero, New: r.c(t, 0), Who: who},
		{Name: "refs/heads/a", New: zero, Who: who},
		{Name: "refs/heads/a/b", Old: zero, New: r.c(t, 1), Who: who},
		{Name: "refs/heads/a/b", New: zero, Who: who},
		{Name: "refs/heads/a", Old: zero, New: r.c(t, 2), Who: who},
	} {
		if err := r.s.Update([]Update{u}); err != nil {
			t.Fatalf("Update(%s → %s): %v", u.Name, u.New, err)
		}
	}
	if got := readLogT(t, r.s, "refs/heads/a"); len(got) != 1 || got[0].New != r.c(t, 2) {
		t.Errorf("reflog of refs/heads/a: %+v; want the creation alone", got)
	}
	gittest.Git(t, r.dir, "fsck", "--full", "--strict")

	// The second update fails (its old value is wrong), after both
	// were locked: neither reflog has a line.
	before := readLogT(t, r.s, "refs/heads/a")
	err := r.s.Update([]Update{
		{Name: "refs/heads/a", New: r.c(t, 3), Who: who},
		{Name: "refs/heads/c", Old: r.c(t, 3), New: r.c(t, 4), Who: who},
	})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("Update: %v; want a conflict", err)
	}
	if got := readLogT(t, r.s, "refs/heads/a"); len(got) != len(before) {
		t.Errorf("failed transaction left %d entries; want %d", len(got), len(before))
	}
	if r.s.LogExists("refs/heads/c") {
		t.Errorf("failed transaction left a reflog for refs/heads/c")
	}
	if err := r.s.Update([]Update{{Name: "refs/heads/d", New: r.c(t, 3)}}); err != nil {
		t.Fatal(err)
	}
	if r.s.LogExists("refs/heads/d") {
		t.Errorf("an update without Who wrote a reflog")
	}
}

// TestUpdateReflogUndo: a reflog append that fails after another one
// was made takes that one back, and no reference moves.
func TestUpdateReflogUndo(t *testing.T) {
	f := oid.SHA1
	r := newTestRepo(t, f)
	who := Who{Name: "bob", Message: "push"}
	if err := r.s.Update([]Update{{Name: "refs/heads/a", New: r.c(t, 0), Who: who}}); err != nil {
		t.Fatal(err)
	}
	// refs/heads/b/c's reflog cannot be written: a symbolic link
	// stands in its place (reflogs are opened without following them).
	if err := os.MkdirAll(filepath.Join(r.dir, "logs/refs/heads/b"), 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/null", filepath.Join(r.dir, "logs/refs/heads/b/c")); err != nil {
		t.Fatal(err)
	}
	err := r.s.Update([]Update{
		{Name: "refs/heads/a", Old: r.c(t, 0), New: r.c(t, 1), Who: who},
		{Name: "refs/heads/b/c", New: r.c(t, 2), Who: who},
	})
	if err == nil {
		t.Fatal("Update with an unwritable reflog succeeded")
	}
	if got := readLogT(t, r.s, "refs/heads/a"); len(got) != 1 {
		t.Errorf("reflog of refs/heads/a has %d entries; want 1", len(got))
	}
	if got := r.cur(t, "refs/heads/a"); got != r.c(t, 0) {
		t.Errorf("refs/heads/a moved to %v", got)
	}
	if got := tree(t, r.dir); hasLock(got) {
		t.Errorf("lock files left: %v", got)
	}
}

func TestLogLineClean(t *testing.T) {
	f := oid.SHA1
	id := oid.MustFromBytes(f, bytes.Repeat([]byte{1}, 20))
	tests := []struct {
		who                  Who
		name, email, message string
	}{
		{Who{Name: "alice", Email: "a@b", Message: "push"}, "alice", "a@b", "push"},
		{Who{Name: "ev<il>\n", Email: "x>\x00y", Message: "two\nlines\t\tand\r\n  more  "}, "evil", "xy", "two lines and more"},
		{Who{Name: strings.Repeat("é", 100), Message: strings.Repeat("m", 1000)}, strings.Repeat("é", 64), "", strings.Repeat("m", MaxLogMessage)},
		{Who{Name: "\xff\xfe", Message: "\n\n"}, "", "", ""},
	}
	for _, tt := range tests {
		line := appendLogLine(nil, oid.Zero(f), id, tt.who)
		if bytes.Count(line, []byte{'\n'}) != 1 || line[len(line)-1] != '\n' {
			t.Errorf("%q: not one line", line)
			continue
		}
		e, err := ParseLogLine(f, line[:len(line)-1])
		if err != nil {
			t.Errorf("ParseLogLine(%q): %v", line, err)
			continue
		}
		if e.Name != tt.name || e.Email != tt.email || e.Message != tt.message || e.New != id || !e.Old.IsNull() {
			t.Errorf("%+v → %q: got %q <%q> %q; want %q <%q> %q", tt.who, line, e.Name, e.Email, e.Message, tt.name, tt.email, tt.message)
		}
	}
}

// FuzzReadLog reads arbitrary reflog files: whatever the bytes, the
// entries read are well formed and survive being written again.
func FuzzReadLog(f *testing.F) {
	z := strings.Repeat("0", 40)
	a := strings.Repeat("a", 40)
	f.Add([]byte(z + " " + a + " alice <a@b> 1700000000 +0000\tpush via ssh: created\n"))
	f.Add([]byte(a + " " + z + " C O Mitter <c@o> 1700000000 -0130\n" + a + " " + a + " x <> 1 +0000\t" + strings.Repeat("m", 5000) + "\n"))
	f.Add([]byte(z + " " + a + " <> 0 +9999\n\n\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, format := range formats {
			var n int
			err := readLog(bytes.NewReader(data), format, func(e LogEntry) error {
				n++
				if e.Old.Format() != format || e.New.Format() != format {
					t.Fatalf("entry ids of another format: %+v", e)
				}
				if len(e.Message) > maxLogLine || strings.ContainsRune(e.Message, '\n') {
					t.Fatalf("message unbounded or with a newline: %q", e.Message)
				}
				w := Who{Name: e.Name, Email: e.Email, When: e.When, Message: e.Message}
				line := appendLogLine(nil, e.Old, e.New, w)
				back, err := ParseLogLine(format, line[:len(line)-1])
				if err != nil {
					t.Fatalf("entry %+v written as %q does not parse: %v", e, line, err)
				}
				if back.Old != e.Old || back.New != e.New || back.When.Unix() != e.When.Unix() || !utf8.ValidString(back.Name) || strings.ContainsAny(back.Name+back.Email, "<>\n") {
					t.Fatalf("entry %+v read back as %+v", e, back)
				}
				return nil
			}, nil)
			if err != nil {
				t.Fatalf("readLog: %v", err)
			}
			if n > bytes.Count(data, []byte{'\n'})+1 {
				t.Fatalf("%d entries from %d lines", n, bytes.Count(data, []byte{'\n'})+1)
			}
		}
	})
}

// TestUpdateReflogLocked: a reference whose lock another writer holds
// is neither updated nor logged.
func TestUpdateReflogLocked(t *testing.T) {
	r := newTestRepo(t, oid.SHA1)
	who := Who{Name: "bob", Message: "push"}
	if err := r.s.Update([]Update{{Name: "refs/heads/a", New: r.c(t, 0), Who: who}}); err != nil {
		t.Fatal(err)
	}
	lock := filepath.Join(r.dir, "refs/heads/a.lock")
	if err := os.WriteFile(lock, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err := r.s.Update([]Update{{Name: "refs/heads/a", Old: r.c(t, 0), New: r.c(t, 1), Who: who}})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("Update under a foreign lock: %v; want ErrLocked", err)
	}
	if got := readLogT(t, r.s, "refs/heads/a"); len(got) != 1 {
		t.Errorf("reflog has %d entries; want 1", len(got))
	}
	// HEAD's lock held by another writer: the update of HEAD's branch
	// waits for it like the branch's own.
	os.Remove(lock)
	if err := os.WriteFile(filepath.Join(r.dir, "HEAD.lock"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err = r.s.Update([]Update{{Name: "refs/heads/main", New: r.c(t, 1), Who: who}})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("Update of HEAD's branch under a foreign HEAD.lock: %v; want ErrLocked", err)
	}
	if r.s.LogExists("refs/heads/main") || r.s.LogExists("HEAD") {
		t.Errorf("reflogs written without HEAD's lock")
	}
	os.Remove(filepath.Join(r.dir, "HEAD.lock"))
	if err := r.s.Update([]Update{{Name: "refs/heads/main", New: r.c(t, 1), Who: who}}); err != nil {
		t.Fatal(err)
	}
	if got := readLogT(t, r.s, "HEAD"); len(got) != 1 || got[0].New != r.c(t, 1) {
		t.Errorf("HEAD's reflog: %+v", got)
	}
}

// TestReadLogFromGit reads reflogs C Git wrote, with its identities,
// time zones and messages (a tab in one), as git log -g shows them.
func TestReadLogFromGit(t *testing.T) {
	for _, f := range formats {
		t.Run(f.String(), func(t *testing.T) {
			r := newTestRepo(t, f)
			for i, tz := range []string{"+0000", "-0130", "+1400"} {
				cmd := exec.Command("git", "-c", "core.logAllRefUpdates=always", "update-ref", "--create-reflog",
					"-m", "step "+tz+"\twith a tab", "refs/heads/g", r.commits[i])
				cmd.Dir = r.dir
				cmd.Env = append(gittest.Env(t), "GIT_COMMITTER_NAME=C. O. Mitter "+tz, "GIT_COMMITTER_EMAIL=c@example.org",
					fmt.Sprintf("GIT_COMMITTER_DATE=%d %s", 1700000000+i, tz))
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("git update-ref: %v: %s", err, out)
				}
			}
			var got []string
			for _, e := range readLogT(t, r.s, "refs/heads/g") {
				got = append([]string{fmt.Sprintf("%s %s <%s> g@{%d %s} %s", e.New, e.Name, e.Email, e.When.Unix(), e.When.Format("-0700"), e.Message)}, got...)
			}
			want := strings.TrimSpace(gittest.Git(t, r.dir, "log", "-g", "--date=raw", "--format=%H %gn <%ge> %gd %gs", "refs/heads/g"))
			if g := strings.Join(got, "\n"); g != want {
				t.Errorf("ReadLog:\n%s\ngit log -g:\n%s", g, want)
			}
		})
	}
}

// TestListLogs lists the reflogs of existing and deleted references and
// skips what is not one.
func TestListLogs(t *testing.T) {
	r := newTestRepo(t, oid.SHA1)
	who := Who{Name: "bob", Message: "push"}
	for _, u := range []Update{
		{Name: "refs/heads/main", New: r.c(t, 1), Who: who},
		{Name: "refs/heads/gone/x", New: r.c(t, 1), Who: who},
		{Name: "refs/heads/gone/x", New: oid.Zero(oid.SHA1), Who: who},
		{Name: "refs/tags/t", New: r.c(t, 2), Who: who},
	} {
		if err := r.s.Update([]Update{u}); err != nil {
			t.Fatal(err)
		}
	}
	for _, junk := range []string{"logs/refs/heads/bad..name", "logs/refs/heads/x.lock", "logs/other"} {
		if err := os.WriteFile(filepath.Join(r.dir, junk), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Symlink("/etc/passwd", filepath.Join(r.dir, "logs/refs/heads/link"))
	var got []string
	if err := r.s.ListLogs(func(name string) error { got = append(got, name); return nil }); err != nil {
		t.Fatal(err)
	}
	want := []string{"HEAD", "refs/heads/gone/x", "refs/heads/main", "refs/tags/t"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("ListLogs: %q; want %q", got, want)
	}
}
