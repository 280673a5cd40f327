package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotd/internal/git/oid"
	"gotd/internal/git/refs"
	"gotd/internal/gittest"
)

// TestRef lists the reflog of a branch that was force-pushed and
// deleted, restores it with -c @{N} and checks the result with C Git.
func TestRef(t *testing.T) {
	for _, format := range formats {
		t.Run(format, func(t *testing.T) {
			dir := generated(t, format)
			f, _ := oid.ParseFormat(format)
			s := refs.New(dir, f)
			rev := func(name string) oid.ID {
				id, err := oid.ParseHex(f, strings.TrimSpace(gittest.Git(t, dir, "rev-parse", name)))
				if err != nil {
					t.Fatal(err)
				}
				return id
			}
			tip, older := rev("main"), rev("main~3")
			zero := oid.Zero(f)
			for _, u := range []refs.Update{
				{Name: "refs/heads/gone", Old: zero, New: older, Who: refs.Who{Name: "alice", Message: "push via ssh: created"}},
				{Name: "refs/heads/gone", Old: older, New: tip, Who: refs.Who{Name: "alice", Message: "push via ssh: fast-forward"}},
				{Name: "refs/heads/gone", Old: tip, New: zero, Who: refs.Who{Name: "m\x1b[31mallory\n", Message: "push via http: deleted\x07"}},
			} {
				if err := s.Update([]refs.Update{u}); err != nil {
					t.Fatal(err)
				}
			}
			out := mustGotadmin(t, "ref", "-l", "-r", dir, "gone")
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != 3 {
				t.Fatalf("ref -l: %q; want 3 lines", out)
			}
			for i, want := range []string{
				"@{0} - " + tip.String() + " ",
				"@{1} " + tip.String() + " " + older.String() + " ",
				"@{2} " + older.String() + " - ",
			} {
				if !strings.HasPrefix(lines[i], want) {
					t.Errorf("line %d: %q; want it to start with %q", i, lines[i], want)
				}
			}
			if !strings.HasSuffix(lines[0], " m[31mallory: push via http: deleted") {
				t.Errorf("line 0: %q: control characters not dropped", lines[0])
			}

			// The deleted branch comes back with its value.
			mustGotadmin(t, "ref", "-r", dir, "-c", "@{0}", "refs/heads/gone")
			if got := rev("refs/heads/gone"); got != tip {
				t.Errorf("restored gone = %v; want %v", got, tip)
			}
			// And back to the older value, from entry 2 (now 3).
			mustGotadmin(t, "ref", "-r", dir, "-c", "@{3}", "gone")
			if got := rev("refs/heads/gone"); got != older {
				t.Errorf("gone = %v; want %v", got, older)
			}
			gittest.Git(t, dir, "fsck", "--full", "--strict")
			out = gittest.Git(t, dir, "reflog", "show", "--format=%H %gs", "refs/heads/gone")
			want := older.String() + " gotadmin ref: restored @{3}\n" +
				tip.String() + " gotadmin ref: restored @{0} (the deleted value)\n" +
				tip.String() + " push via ssh: fast-forward\n" +
				older.String() + " push via ssh: created\n"
			if out != want {
				t.Errorf("git reflog show:\n%s\nwant\n%s", out, want)
			}
		})
	}
}

func TestRefRefuses(t *testing.T) {
	dir := generated(t, "sha1")
	s := refs.New(dir, oid.SHA1)
	main, err := s.Resolve("refs/heads/main")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update([]refs.Update{{Name: "refs/heads/x", New: main.ID, Who: refs.Who{Name: "a", Message: "push"}}}); err != nil {
		t.Fatal(err)
	}
	// A commit whose tree is gone.
	tree := strings.TrimSpace(gittest.GitInput(t, dir, []byte("100644 blob "+strings.TrimSpace(gittest.GitInput(t, dir, []byte("only here\n"), "hash-object", "-w", "--stdin"))+"\tf\n"), "mktree"))
	broken := strings.TrimSpace(gittest.Git(t, dir, "commit-tree", tree, "-m", "broken"))
	os.Remove(filepath.Join(dir, "objects", tree[:2], tree[2:]))
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no entry", []string{"ref", "-r", dir, "-c", "@{5}", "x"}, "no reflog entry @{5}"},
		{"bad index", []string{"ref", "-r", dir, "-c", "@{-1}", "x"}, "bad reflog entry"},
		{"bad name", []string{"ref", "-r", dir, "-l", "refs/heads/../../config"}, "bad reference name"},
		{"no reflog", []string{"ref", "-r", dir, "-l", "refs/heads/none"}, "has no reflog"},
		{"missing object", []string{"ref", "-r", dir, "-c", strings.Repeat("1", 40), "x"}, "object 1111"},
		{"incomplete", []string{"ref", "-r", dir, "-c", broken, "x"}, "not complete"},
		{"both", []string{"ref", "-r", dir, "-l", "-c", "@{0}", "x"}, "usage: gotadmin ref"},
	} {
		_, errs, status := gotadmin(t, tc.args...)
		if status == 0 || !strings.Contains(errs, tc.want) {
			t.Errorf("%s: status %d, stderr %q; want failure mentioning %q", tc.name, status, errs, tc.want)
		}
	}
	if got, _ := s.Resolve("refs/heads/x"); got.ID != main.ID {
		t.Errorf("x moved to %v", got.ID)
	}
}
