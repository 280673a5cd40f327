package remote

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotd/internal/git/repo"
	"gotd/internal/gittest"
	"gotd/internal/protocol/receive"
	"gotd/internal/protocol/wire"
)

// TestFetchClosed: the pack of a first fetch holds everything its
// tips reach and is found closed, so that Fetch installs it without
// walking it a second time; the pack of a later fetch, whose commits
// name parents the repository holds, is not, and is walked again
// under the prune lock.
func TestFetchClosed(t *testing.T) {
	root := t.TempDir()
	up := filepath.Join(root, "up.git")
	gittest.Git(t, "", "-c", "init.defaultBranch=main", "init", "-q", "--bare", up)
	gittest.Generate(t, up, gittest.History{Commits: 10, Branches: 2, Files: 4})
	dir, r := emptyMirror(t)
	opts := FetchOptions{URL: up, Repo: r, Prune: true}
	closed := func() bool {
		t.Helper()
		q := quarantine(t, r)
		f, cancel, err := startFetch(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		defer cancel()
		defer f.t.close()
		got, err := f.fetchPack(f.ctx, q, true)
		if err != nil {
			t.Fatalf("fetchPack: %v", err)
		}
		if got.Pack == nil || got.Pack.Count == 0 {
			t.Fatalf("fetchPack brought no pack")
		}
		return got.closed
	}
	if !closed() {
		t.Errorf("first fetch: got a pack not closed; want closed")
	}
	if _, err := Fetch(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(t.TempDir(), "work")
	gittest.Git(t, "", "clone", "-q", up, work)
	os.WriteFile(filepath.Join(work, "new.txt"), []byte("new\n"), 0o644)
	gittest.Git(t, work, "add", "new.txt")
	gittest.Git(t, work, "commit", "-q", "-m", "new")
	gittest.Git(t, work, "push", "-q", "origin", "main")
	if closed() {
		t.Errorf("fetch of a commit on top of the mirror's: got a closed pack; want not")
	}
	if _, err := Fetch(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	if got, want := mirrored(t, dir), mirrored(t, up); got != want {
		t.Errorf("mirror's references\n%s\nwant\n%s", got, want)
	}
	gittest.Git(t, dir, "fsck", "--full", "--strict", "--no-dangling")
}

// TestFetchPackLeavesCheck: FetchPack indexes a pack that holds a
// commit without its tree and parent without checking what the new
// value reaches, which is Install's to check: it refuses the pack as
// incomplete. Fetch, which checks, fails as well, and neither leaves a
// pack behind.
func TestFetchPackLeavesCheck(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src.git")
	gittest.Git(t, "", "-c", "init.defaultBranch=main", "init", "-q", "--bare", src)
	gittest.Generate(t, src, gittest.History{Commits: 3, Files: 2})
	tip := strings.TrimSpace(gittest.Git(t, src, "rev-parse", "main"))
	pack := []byte(gittest.GitInput(t, src, []byte(tip+"\n"), "pack-objects", "-q", "--stdout"))
	url := liar(t, []string{tip + " refs/heads/main"}, pack)
	dir, r := emptyMirror(t)
	opts := FetchOptions{URL: url, Repo: r, Prune: true}
	got, err := FetchPack(context.Background(), opts, quarantine(t, r))
	if err != nil {
		t.Fatalf("FetchPack: %v", err)
	}
	if got.Pack == nil || got.Pack.Count != 1 {
		t.Fatalf("FetchPack brought %+v; want a pack of one object", got.Pack)
	}
	in := &receive.Ingest{Repo: r, Limits: wire.DefaultLimits}
	if _, err := in.Install(context.Background(), got.Pack, got.Tips); err == nil || !strings.Contains(err.Error(), "incomplete") {
		t.Errorf("Install of a commit without its tree: got %v; want refused as incomplete", err)
	}
	opts.URL = liar(t, []string{tip + " refs/heads/main"}, pack) // a liar answers once
	if _, err := Fetch(context.Background(), opts); err == nil || !strings.Contains(err.Error(), "incomplete") {
		t.Errorf("Fetch of a commit without its tree: got %v; want refused as incomplete", err)
	}
	if packs, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "*")); len(packs) != 0 {
		t.Errorf("packs installed: %v", packs)
	}
}

// emptyMirror makes an empty repository to fetch into, closed when the
// test ends.
func emptyMirror(t *testing.T) (string, *repo.Repo) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "mirror.git")
	r, err := repo.Init(dir, repo.InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return dir, r
}

// quarantine makes a quarantine directory in r, removed when the test
// ends.
func quarantine(t *testing.T, r *repo.Repo) string {
	t.Helper()
	q, hold, err := receive.NewQuarantine(r.ObjectsDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		os.RemoveAll(q)
		hold.Close()
	})
	return q
}
