package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotd/internal/gittest"
)

// TestCloneFetch: gotadmin clone of a local repository gives the same
// branches and tags, HEAD and a recorded upstream; after the upstream
// moves, gotadmin fetch without a URL follows it, and git fsck passes.
func TestCloneFetch(t *testing.T) {
	up := gittest.InitBare(t, "sha1")
	gittest.Generate(t, up, gittest.History{Commits: 8, Branches: 1, Files: 4})
	dir := filepath.Join(t.TempDir(), "mirror.git")
	mustGotadmin(t, "clone", "-q", up, dir)
	list := func(d string) string {
		return gittest.Git(t, d, "for-each-ref", "--format=%(objectname) %(refname)", "refs/heads/", "refs/tags/")
	}
	if got, want := list(dir), list(up); got != want {
		t.Fatalf("clone's references\n%s\nwant\n%s", got, want)
	}
	if head := strings.TrimSpace(gittest.Git(t, dir, "symbolic-ref", "HEAD")); head != "refs/heads/main" {
		t.Errorf("HEAD = %s; want refs/heads/main", head)
	}
	// The references are packed, every annotated tag with its peeled
	// value, as git clone leaves them.
	packed, err := os.ReadFile(filepath.Join(dir, "packed-refs"))
	if err != nil {
		t.Fatalf("clone's packed-refs: %v", err)
	}
	tags := strings.Fields(gittest.Git(t, dir, "for-each-ref", "--format=%(objecttype)", "refs/tags/"))
	annotated := strings.Count(strings.Join(tags, " "), "tag")
	if !strings.HasPrefix(string(packed), "# pack-refs with: peeled fully-peeled sorted") || annotated == 0 || strings.Count(string(packed), "\n^") != annotated {
		t.Errorf("clone's packed-refs (%d annotated tags):\n%s", annotated, packed)
	}
	if names, _ := filepath.Glob(filepath.Join(dir, "refs", "*", "*")); len(names) != 0 {
		t.Errorf("loose references after the clone: %v", names)
	}
	if url := strings.TrimSpace(gittest.Git(t, dir, "config", "remote.origin.url")); url != up {
		t.Errorf("upstream %q; want %q", url, up)
	}
	work := filepath.Join(t.TempDir(), "work")
	gittest.Git(t, "", "clone", "-q", up, work)
	os.WriteFile(filepath.Join(work, "n.txt"), []byte("n\n"), 0o644)
	gittest.Git(t, work, "add", "n.txt")
	gittest.Git(t, work, "commit", "-q", "-m", "n")
	gittest.Git(t, work, "push", "-q", "origin", "main")
	out := mustGotadmin(t, "fetch", "-r", dir)
	if !strings.Contains(out, "refs/heads/main: ") {
		t.Errorf("fetch says %q; want main's move", out)
	}
	if got, want := list(dir), list(up); got != want {
		t.Fatalf("after fetch\n%s\nwant\n%s", got, want)
	}
	gittest.Git(t, dir, "fsck", "--full", "--strict", "--no-dangling")
	if _, errs, status := gotadmin(t, "clone", "-q", filepath.Join(t.TempDir(), "none.git"), filepath.Join(t.TempDir(), "x.git")); status == 0 {
		t.Errorf("clone of a missing repository succeeded: %s", errs)
	}
}

// TestCloneFetchSSH: gotadmin clone and fetch over ssh:// from C Git
// behind OpenSSH's sshd, with the key and known_hosts given by -i and
// -k; a known_hosts that does not name the server makes the clone fail
// with nothing left behind.
func TestCloneFetchSSH(t *testing.T) {
	srv := gittest.StartSSHD(t, true)
	up := gittest.InitBare(t, "sha1")
	gittest.Generate(t, up, gittest.History{Commits: 8, Branches: 1, Files: 4})
	list := func(d string) string {
		return gittest.Git(t, d, "for-each-ref", "--format=%(objectname) %(refname)", "refs/heads/", "refs/tags/")
	}
	dir := filepath.Join(t.TempDir(), "mirror.git")
	mustGotadmin(t, "clone", "-q", "-i", srv.Key, "-k", srv.KnownHosts, srv.URL(up), dir)
	if got, want := list(dir), list(up); got != want {
		t.Fatalf("clone's references\n%s\nwant\n%s", got, want)
	}
	work := filepath.Join(t.TempDir(), "work")
	gittest.Git(t, "", "clone", "-q", up, work)
	os.WriteFile(filepath.Join(work, "n.txt"), []byte("n\n"), 0o644)
	gittest.Git(t, work, "add", "n.txt")
	gittest.Git(t, work, "commit", "-q", "-m", "n")
	gittest.Git(t, work, "push", "-q", "origin", "main")
	if out := mustGotadmin(t, "fetch", "-i", srv.Key, "-k", srv.KnownHosts, "-r", dir); !strings.Contains(out, "refs/heads/main: ") {
		t.Errorf("fetch says %q; want main's move", out)
	}
	if got, want := list(dir), list(up); got != want {
		t.Fatalf("after fetch\n%s\nwant\n%s", got, want)
	}
	gittest.Git(t, dir, "fsck", "--full", "--strict", "--no-dangling")

	empty := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(empty, nil, 0o644)
	other := filepath.Join(t.TempDir(), "other.git")
	_, errs, status := gotadmin(t, "clone", "-q", "-i", srv.Key, "-k", empty, srv.URL(up), other)
	if status == 0 || !strings.Contains(errs, "host key not accepted") {
		t.Errorf("clone from a host known_hosts does not name: status %d, %q; want a refusal", status, errs)
	}
	if _, err := os.Stat(other); !os.IsNotExist(err) {
		t.Errorf("a refused clone left %s: %v", other, err)
	}
}
