package remote

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"gotd/internal/git/repo"
	"gotd/internal/gittest"
	"gotd/internal/protocol/receive"
)

// TestFetchPackClosed: the pack of a first fetch holds everything its
// tips reach and is found closed, so that Fetch installs it without
// walking it a second time; the pack of a later fetch, whose commits
// name parents the repository holds, is not, and is walked again
// under the prune lock.
func TestFetchPackClosed(t *testing.T) {
	root := t.TempDir()
	up := filepath.Join(root, "up.git")
	gittest.Git(t, "", "-c", "init.defaultBranch=main", "init", "-q", "--bare", up)
	gittest.Generate(t, up, gittest.History{Commits: 10, Branches: 2, Files: 4})
	dir := filepath.Join(t.TempDir(), "mirror.git")
	r, err := repo.Init(dir, repo.InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	opts := FetchOptions{URL: up, Repo: r, Prune: true}
	closed := func() bool {
		t.Helper()
		q, hold, err := receive.NewQuarantine(r.ObjectsDir())
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			os.RemoveAll(q)
			hold.Close()
		}()
		got, err := FetchPack(context.Background(), opts, q)
		if err != nil {
			t.Fatalf("FetchPack: %v", err)
		}
		if got.Pack == nil || got.Pack.Count == 0 {
			t.Fatalf("FetchPack brought no pack")
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
