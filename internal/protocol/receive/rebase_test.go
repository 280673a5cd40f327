package receive

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotd/internal/gittest"
)

// rebaseFixture is a fixture whose server's main holds a.txt and b.txt,
// with another writer's commit on top of it, "theirs", already in the
// server's objects (under refs/heads/other) but not yet on main: a push
// made with GOTD_TEST_MOVE set to main → theirs races that writer.
type rebaseFixture struct {
	*fixture
	base, theirs string
}

func newRebaseFixture(t *testing.T, v string) *rebaseFixture {
	t.Helper()
	f := newFixture(t, v, "sha1", false)
	lines := "1\n2\n3\n4\n5\n6\n7\n8\n"
	f.commit(t, "a.txt", lines)
	base := f.commit(t, "b.txt", lines)
	f.mustPush(t, "origin", "HEAD:refs/heads/main")
	f.results(t)
	// The other writer, in a clone of its own.
	other := filepath.Join(t.TempDir(), "other")
	gittest.Git(t, "", "clone", "-q", "-b", "main", f.server, other)
	if err := os.WriteFile(filepath.Join(other, "a.txt"), []byte("one\n2\n3\n4\n5\n6\n7\n8\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gittest.Git(t, other, "commit", "-q", "-am", "theirs")
	theirs := strings.TrimSpace(gittest.Git(t, other, "rev-parse", "HEAD"))
	gittest.Git(t, other, "push", "-q", "origin", "HEAD:refs/heads/other")
	return &rebaseFixture{f, base, theirs}
}

// race pushes main with the server's main moved to theirs once the
// advertisement is sent, main rebased.
func (f *rebaseFixture) race(t *testing.T, args ...string) (string, error) {
	t.Helper()
	env := []string{"GOTD_TEST_MOVE=refs/heads/main " + f.theirs, "GOTD_TEST_REBASE=refs/heads/main"}
	return f.push(t, env, append([]string{"origin"}, args...)...)
}

// TestRebase pushes, with C Git over protocol versions 0, 1 and 2, a
// change made on a main that another push has since moved: the server
// rebases it onto the new main (the tree C Git's merge-tree makes of the
// two, one parent: the other push), keeps its author and message, tells
// the client where main is (report-status-v2), and the repository passes
// fsck. Without Options.Rebase the same push is refused as stale.
func TestRebase(t *testing.T) {
	for _, v := range versions {
		t.Run("v"+v, func(t *testing.T) {
			f := newRebaseFixture(t, v)
			if err := os.WriteFile(filepath.Join(f.work, "b.txt"), []byte("1\n2\n3\n4\n5\n6\n7\neight\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			gittest.Git(t, f.work, "commit", "-q", "-am", "mine\n\nwith a body")
			mine := strings.TrimSpace(gittest.Git(t, f.work, "rev-parse", "HEAD"))

			// Without the rebase policy: stale, as before.
			stderr, err := f.push(t, []string{"GOTD_TEST_MOVE=refs/heads/main " + f.theirs}, "origin", "main")
			if err == nil {
				t.Fatalf("stale push accepted without rebase:\n%s", stderr)
			}
			if r := f.lastResult(t); r.Commands["refs/heads/main"] != ngStale {
				t.Fatalf("without rebase: served %+v; want %q", r, ngStale)
			}
			gittest.Git(t, f.server, "update-ref", "refs/heads/main", f.base)

			stderr, err = f.race(t, "main")
			if err != nil {
				t.Fatalf("push: %v\n%s", err, stderr)
			}
			if r := f.lastResult(t); r.Commands["refs/heads/main"] != "" {
				t.Fatalf("served %+v; want main updated", r)
			}
			got := f.ref(t, "refs/heads/main")
			if got == mine || got == f.theirs {
				t.Fatalf("main = %s; want a rebased commit", got)
			}
			if p := strings.TrimSpace(gittest.Git(t, f.server, "rev-parse", got+"^@")); p != f.theirs {
				t.Errorf("rebased commit's parents %q; want %s", p, f.theirs)
			}
			want := strings.Fields(gittest.Git(t, f.server, "merge-tree", "--write-tree", "--no-messages", f.theirs, mine))[0]
			if tree := strings.TrimSpace(gittest.Git(t, f.server, "rev-parse", got+"^{tree}")); tree != want {
				t.Errorf("rebased tree %s; want %s (git merge-tree)", tree, want)
			}
			for _, format := range []string{"%an <%ae> %at%n%B", "%cn <%ce>"} {
				if a, b := gittest.Git(t, f.server, "log", "-1", "--format="+format, got), gittest.Git(t, f.work, "log", "-1", "--format="+format, mine); a != b {
					t.Errorf("rebased commit %q; want %q as the pushed one", a, b)
				}
			}
			if !strings.Contains(stderr, "rebased onto "+f.theirs+", now at "+got) {
				t.Errorf("git's output does not tell the rebase:\n%s", stderr)
			}
			// Told with report-status-v2 (which C Git asks for in
			// every protocol version), git shows the range main
			// really moved. It cannot set origin/main there, since it
			// lacks the rebased commit until it fetches (C Git
			// refuses to write a reference to an object it does not
			// have, and says so): it leaves origin/main as it was.
			if !strings.Contains(stderr, f.theirs[:7]+".."+got[:7]+"  main -> main") {
				t.Errorf("git shows the update as\n%s\nwant %s..%s", stderr, f.theirs[:7], got[:7])
			}
			gittest.Git(t, f.work, "pull", "-q", "--rebase")
			if head := strings.TrimSpace(gittest.Git(t, f.work, "rev-parse", "HEAD", "refs/remotes/origin/main")); head != got+"\n"+got {
				t.Errorf("after git pull --rebase: HEAD and origin/main %q; want both %s", head, got)
			}
			reflog := gittest.Git(t, f.server, "reflog", "show", "--format=%gs", "refs/heads/main")
			if !strings.Contains(reflog, "rebased") {
				t.Errorf("reflog of main:\n%s; want a rebased entry", reflog)
			}
			f.verify(t)
		})
	}
}

// TestRebaseRefused: a change to the same lines, a merge, a signed
// commit, and too many commits are refused with a reason, and main
// stays where the other push put it; a forced push (the client saw
// the current main) is not rebased.
func TestRebaseRefused(t *testing.T) {
	f := newRebaseFixture(t, "0")
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(f.work, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	reset := func() {
		gittest.Git(t, f.server, "update-ref", "refs/heads/main", f.base)
		gittest.Git(t, f.work, "reset", "-q", "--hard", f.base)
	}
	refused := func(what, want string) {
		t.Helper()
		stderr, err := f.race(t, "main")
		if err == nil {
			t.Fatalf("%s: push accepted:\n%s", what, stderr)
		}
		if r := f.lastResult(t); r.Commands["refs/heads/main"] != want {
			t.Errorf("%s: served %+v; want %q", what, r, want)
		}
		if !strings.Contains(stderr, want) {
			t.Errorf("%s: git says\n%s\nwant %q", what, stderr, want)
		}
		f.wantRef(t, "refs/heads/main", f.theirs)
		reset()
	}

	write("a.txt", "ONE\n2\n3\n4\n5\n6\n7\n8\n")
	gittest.Git(t, f.work, "commit", "-q", "-am", "conflicting")
	refused("conflict", "cannot rebase: a.txt changed on both sides")

	gittest.Git(t, f.work, "checkout", "-q", "-b", "side")
	write("c.txt", "c\n")
	gittest.Git(t, f.work, "add", "c.txt")
	gittest.Git(t, f.work, "commit", "-q", "-m", "side")
	gittest.Git(t, f.work, "checkout", "-q", "main")
	write("d.txt", "d\n")
	gittest.Git(t, f.work, "add", "d.txt")
	gittest.Git(t, f.work, "commit", "-q", "-m", "main side")
	gittest.Git(t, f.work, "merge", "-q", "--no-edit", "side")
	merge := strings.TrimSpace(gittest.Git(t, f.work, "rev-parse", "HEAD"))
	refused("merge", "cannot rebase: commit "+merge+" is a merge")

	// A signed commit, made by hand: the signature is not checked,
	// only its presence.
	head := strings.TrimSpace(gittest.Git(t, f.work, "write-tree"))
	signed := "tree " + head + "\nparent " + f.base + "\nauthor A <a@example.com> 1700000000 +0000\ncommitter C <c@example.com> 1700000000 +0000\ngpgsig -----BEGIN PGP SIGNATURE-----\n \n x\n -----END PGP SIGNATURE-----\n\nsigned\n"
	id := strings.TrimSpace(gittest.GitInput(t, f.work, []byte(signed), "hash-object", "-t", "commit", "-w", "--stdin"))
	gittest.Git(t, f.work, "reset", "-q", "--hard", id)
	refused("signed", "cannot rebase: commit "+id+" is signed")

	for i := range 6 {
		write("e.txt", strings.Repeat("e\n", i+1))
		gittest.Git(t, f.work, "add", "e.txt")
		gittest.Git(t, f.work, "commit", "-q", "-m", "e")
	}
	refused("range", "cannot rebase: more than 5 commits")

	// Forced, with the current main seen: kept as the client pushed it.
	write("f.txt", "f\n")
	gittest.Git(t, f.work, "add", "f.txt")
	gittest.Git(t, f.work, "commit", "-q", "-m", "forced")
	forced := strings.TrimSpace(gittest.Git(t, f.work, "rev-parse", "HEAD"))
	gittest.Git(t, f.server, "update-ref", "refs/heads/main", f.theirs)
	stderr, err := f.push(t, []string{"GOTD_TEST_REBASE=refs/heads/main"}, "--force", "origin", "main")
	if err != nil {
		t.Fatalf("forced push: %v\n%s", err, stderr)
	}
	f.results(t)
	f.wantRef(t, "refs/heads/main", forced)
	f.verify(t)
}

// TestRebaseSkipsLanded: the client built on a commit the branch has
// since gained, and lost again by a revert (main: A, B adds leak.txt, D
// reverts it); its stale push from A is rebased as its own commit alone
// onto D: B is not replayed, so the revert stays (a stranger's finding:
// the leak came back).
func TestRebaseSkipsLanded(t *testing.T) {
	f := newFixture(t, "0", "sha1", false)
	a := f.commit(t, "a.txt", "a\n")
	f.mustPush(t, "origin", "HEAD:refs/heads/main")
	b := f.commit(t, "leak.txt", "secret\n")
	gittest.Git(t, f.work, "rm", "-q", "leak.txt")
	gittest.Git(t, f.work, "commit", "-q", "-m", "revert")
	d := strings.TrimSpace(gittest.Git(t, f.work, "rev-parse", "HEAD"))
	f.mustPush(t, "origin", "HEAD:refs/heads/other")
	gittest.Git(t, f.work, "reset", "-q", "--hard", b)
	c := f.commit(t, "c.txt", "c\n")
	f.results(t)
	env := []string{"GOTD_TEST_MOVE=refs/heads/main " + d, "GOTD_TEST_REBASE=refs/heads/main"}
	if stderr, err := f.push(t, env, "origin", "HEAD:refs/heads/main"); err != nil {
		t.Fatalf("push: %v\n%s", err, stderr)
	}
	got := f.ref(t, "refs/heads/main")
	if p := strings.TrimSpace(gittest.Git(t, f.server, "rev-parse", got+"^")); p != d {
		t.Errorf("rebased main's parent %s; want %s (the revert)", p, d)
	}
	files := gittest.Git(t, f.server, "ls-tree", "--name-only", got)
	if strings.Contains(files, "leak.txt") || !strings.Contains(files, "c.txt") {
		t.Errorf("rebased tree holds\n%s\nwant c.txt and no leak.txt", files)
	}
	_, _ = a, c
	f.verify(t)
}
