package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gotd/internal/git/oid"
	"gotd/internal/git/refs"
	"gotd/internal/git/repo"
	"gotd/internal/gittest"
)

// leak pushes a commit adding a secret file to main of dir with C Git
// (kept as a pack: receive.unpackLimit is 1), then moves main back as
// gotd does after a forced push, with a reflog entry. It returns the
// secret blob's id.
func leak(t *testing.T, dir string) string {
	t.Helper()
	gittest.Git(t, dir, "config", "receive.unpackLimit", "1")
	work := filepath.Join(t.TempDir(), "work")
	gittest.Git(t, "", "clone", "-q", "--no-local", dir, work)
	if err := os.WriteFile(filepath.Join(work, "secret.txt"), []byte("password=hunter2 "+dir+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gittest.Git(t, work, "add", "secret.txt")
	gittest.Git(t, work, "commit", "-q", "-m", "oops")
	gittest.Git(t, work, "push", "-q", "origin", "main")
	blob := strings.TrimSpace(gittest.Git(t, dir, "rev-parse", "main:secret.txt"))
	back := strings.TrimSpace(gittest.Git(t, dir, "rev-parse", "main~1"))
	moveRef(t, dir, "refs/heads/main", back, "push via ssh: forced-update")
	return blob
}

// moveRef moves name to id as gotd's push does, logging it.
func moveRef(t *testing.T, dir, name, id, msg string) {
	t.Helper()
	r, err := repo.Open(dir, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	nid, err := oid.ParseHex(r.Format, id)
	if err != nil {
		t.Fatal(err)
	}
	err = r.Refs.Update([]refs.Update{{Name: name, New: nid, Who: refs.Who{Name: "pusher", Email: "pusher@example.com", Message: msg}}})
	if err != nil {
		t.Fatal(err)
	}
}

func hasObject(t *testing.T, dir, id string) bool {
	t.Helper()
	_, err := gittest.Run(t, dir, nil, "cat-file", "-e", id)
	return err == nil
}

// checkRepo runs C Git's strictest checks on dir and reports whether
// the warning about extra bitmaps shows up.
func checkRepo(t *testing.T, dir string) {
	t.Helper()
	gittest.Git(t, dir, "fsck", "--full", "--strict", "--no-dangling")
	bms, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "*.bitmap"))
	if len(bms) > 1 {
		t.Errorf("bitmaps: %v; want at most one", bms)
	}
	clone := filepath.Join(t.TempDir(), "clone")
	gittest.Git(t, "", "clone", "-q", "--mirror", "--no-local", dir, clone)
	gittest.Git(t, clone, "fsck", "--full")
}

// TestCleanupLeakedBlob: a blob pushed and forced away survives cleanup
// while a reflog entry reaches it and, once none does, while it is
// younger than the grace period; cleanup -a removes it then.
func TestCleanupLeakedBlob(t *testing.T) {
	for _, format := range formats {
		t.Run(format, func(t *testing.T) {
			dir := generated(t, format)
			mustGotadmin(t, "pack", "-a", "-q", "-r", dir)
			reachable := gittest.Git(t, dir, "rev-list", "--objects", "--all")
			blob := leak(t, dir)

			mustGotadmin(t, "cleanup", "-q", "-r", dir)
			mustGotadmin(t, "cleanup", "-a", "-q", "-r", dir)
			if !hasObject(t, dir, blob) {
				t.Fatalf("cleanup -a removed %s, which the reflog reaches", blob)
			}
			checkRepo(t, dir)

			gittest.Git(t, dir, "reflog", "expire", "--expire=all", "--all")
			if out := mustGotadmin(t, "cleanup", "-n", "-r", dir); strings.Contains(out, blob) {
				t.Errorf("cleanup -n would remove %s, younger than the grace period:\n%s", blob, out)
			}
			mustGotadmin(t, "cleanup", "-q", "-r", dir)
			if !hasObject(t, dir, blob) {
				t.Fatalf("cleanup removed %s, younger than the grace period", blob)
			}
			checkRepo(t, dir)
			if out := mustGotadmin(t, "cleanup", "-a", "-n", "-r", dir); !strings.Contains(out, "would be removed: "+blob) {
				t.Errorf("cleanup -a -n does not list %s:\n%s", blob, out)
			}
			if !hasObject(t, dir, blob) {
				t.Fatalf("cleanup -n removed %s", blob)
			}

			out := mustGotadmin(t, "cleanup", "-a", "-r", dir)
			if hasObject(t, dir, blob) {
				t.Fatalf("cleanup -a kept %s:\n%s", blob, out)
			}
			if !strings.Contains(out, "removed 3 unreachable objects") {
				t.Errorf("cleanup -a output lacks the 3 objects of the leak (blob, tree, commit):\n%s", out)
			}
			checkRepo(t, dir)
			if got := gittest.Git(t, dir, "rev-list", "--objects", "--all"); got != reachable {
				t.Errorf("reachable objects changed by cleanup")
			}
			if got := gittest.Git(t, dir, "count-objects", "-v"); !strings.Contains(got, "count: 0\n") || !strings.Contains(got, "packs: 1\n") {
				t.Errorf("after cleanup -a:\n%s\nwant no loose objects and one pack", got)
			}
		})
	}
}

// TestCleanupGrace: unreachable objects older than the grace period go
// without -a, packed or loose; younger ones stay.
func TestCleanupGrace(t *testing.T) {
	dir := generated(t, "sha1")
	blob := leak(t, dir)
	gittest.Git(t, dir, "reflog", "expire", "--expire=all", "--all")
	young := strings.TrimSpace(gittest.GitInput(t, dir, []byte("young and unreachable\n"), "hash-object", "-w", "--stdin"))
	old := strings.TrimSpace(gittest.GitInput(t, dir, []byte("old and unreachable\n"), "hash-object", "-w", "--stdin"))
	weeksAgo := time.Now().Add(-15 * 24 * time.Hour)
	if err := os.Chtimes(filepath.Join(dir, "objects", old[:2], old[2:]), weeksAgo, weeksAgo); err != nil {
		t.Fatal(err)
	}
	// The leak's pack is old too.
	packs, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "pack-*.pack"))
	for _, p := range packs {
		if err := os.Chtimes(p, weeksAgo, weeksAgo); err != nil {
			t.Fatal(err)
		}
	}
	out := mustGotadmin(t, "cleanup", "-r", dir)
	for id, want := range map[string]bool{blob: false, old: false, young: true} {
		if got := hasObject(t, dir, id); got != want {
			t.Errorf("after cleanup, has %s = %v; want %v\n%s", id, got, want, out)
		}
	}
	checkRepo(t, dir)
}

// TestPackAllDropsUnreachable: pack -a removes the old pack even when
// it holds unreachable objects (keeping the young ones loose), so that
// one pack and one bitmap remain (before, the old pack stayed with its
// bitmap and C Git warned "ignoring extra bitmap file").
func TestPackAllDropsUnreachable(t *testing.T) {
	dir := generated(t, "sha1")
	mustGotadmin(t, "pack", "-a", "-q", "-r", dir)
	topic := strings.TrimSpace(gittest.Git(t, dir, "rev-parse", "topic1"))
	gittest.Git(t, dir, "update-ref", "-d", "refs/heads/topic1")
	mustGotadmin(t, "pack", "-a", "-q", "-r", dir)

	packs, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "pack-*.pack"))
	if len(packs) != 1 {
		t.Errorf("packs after pack -a: %v; want one", packs)
	}
	_, err := gittest.Run(t, dir, nil, "rev-list", "--use-bitmap-index", "--count", "--objects", "--all")
	if err != nil {
		t.Fatal(err)
	}
	_, errOut := runGitStderr(t, dir, "rev-list", "--test-bitmap", "main")
	if i := strings.Index(errOut, "warning: ignoring extra bitmap"); i >= 0 {
		t.Errorf("C Git warns: %s", strings.SplitN(errOut[i:], "\n", 2)[0])
	}
	if !hasObject(t, dir, topic) {
		t.Errorf("pack -a removed %s, unreachable but young", topic)
	}
	checkRepo(t, dir)
}

// runGitStderr runs git and returns its standard output and error.
func runGitStderr(t *testing.T, dir string, args ...string) (string, string) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = gittest.Env(t)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("git %s: %v: %s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), errb.String()
}

// TestCleanupKeepsWhatItMust: a .keep pack is left alone, a precious
// repository is refused, -p removes an index whose pack is gone.
func TestCleanupKeepsWhatItMust(t *testing.T) {
	dir := generated(t, "sha1")
	leak(t, dir)
	gittest.Git(t, dir, "reflog", "expire", "--expire=all", "--all")
	packs, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "pack-*.pack"))
	kept := packs[0]
	if err := os.WriteFile(strings.TrimSuffix(kept, ".pack")+".keep", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	lonely := filepath.Join(dir, "objects", "pack", "pack-"+strings.Repeat("ab", 20)+".idx")
	if err := os.WriteFile(lonely, []byte("left over"), 0o444); err != nil {
		t.Fatal(err)
	}

	gittest.Git(t, dir, "config", "extensions.preciousObjects", "true")
	gittest.Git(t, dir, "config", "core.repositoryformatversion", "1")
	_, errs, status := gotadmin(t, "cleanup", "-a", "-r", dir)
	if status == 0 || !strings.Contains(errs, "precious") {
		t.Errorf("cleanup of a precious repository: status %d, %q; want refused", status, errs)
	}
	gittest.Git(t, dir, "config", "--unset", "extensions.preciousObjects")

	out := mustGotadmin(t, "cleanup", "-a", "-p", "-r", dir)
	if _, err := os.Stat(kept); err != nil {
		t.Errorf("cleanup removed %s, which has a .keep file: %v", kept, err)
	}
	if _, err := os.Stat(lonely); err == nil {
		t.Errorf("cleanup -p left %s", lonely)
	}
	if !strings.Contains(out, "removed "+filepath.Base(lonely)) {
		t.Errorf("cleanup -p output lacks the lonely index:\n%s", out)
	}
	checkRepo(t, dir)
}
