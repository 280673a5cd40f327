package upkeep

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"gotd/internal/daemon/ipc"
	"gotd/internal/daemon/msg"
	engine "gotd/internal/engine/upkeep"
	"gotd/internal/git/repo"
)

// makeRepo makes a bare repository with C Git holding five packs, one
// per commit, as five pushes leave one, and, if precious, with
// extensions.preciousObjects set.
func makeRepo(t *testing.T, precious bool) string {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	dir := t.TempDir()
	bare, work := filepath.Join(dir, "r.git"), filepath.Join(dir, "w")
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=a", "GIT_AUTHOR_EMAIL=a@example.com", "GIT_COMMITTER_NAME=a", "GIT_COMMITTER_EMAIL=a@example.com")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git("init", "-q", "--bare", bare)
	git("init", "-q", work)
	for i := 0; i < 5; i++ {
		os.WriteFile(filepath.Join(work, fmt.Sprintf("f%d", i)), []byte(fmt.Sprintf("file %d\n", i)), 0o644)
		git("-C", work, "add", ".")
		git("-C", work, "commit", "-q", "-m", fmt.Sprint(i))
		// receive.unpackLimit=1: every push keeps its pack.
		git("-C", work, "-c", "transfer.unpackLimit=1", "push", "-q", "--receive-pack=git -c receive.unpackLimit=1 receive-pack", bare, "HEAD:refs/heads/main")
	}
	if precious {
		git("--git-dir", bare, "config", "core.repositoryformatversion", "1")
		git("--git-dir", bare, "config", "extensions.preciousObjects", "true")
	}
	return bare
}

func packs(t *testing.T, dir string) int {
	l, err := filepath.Glob(filepath.Join(dir, "objects", "pack", "*.pack"))
	if err != nil {
		t.Fatal(err)
	}
	return len(l)
}

// runMain runs Main on the repository at path as the parent would,
// and returns the UpkeepDone it sent.
func runMain(t *testing.T, path string) *ipc.UpkeepDone {
	t.Helper()
	r, err := repo.Open(path, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	parent, child, err := msg.Pair()
	if err != nil {
		t.Fatal(err)
	}
	defer parent.Close()
	defer child.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	start := &ipc.UpkeepStart{Path: path, Name: "r", Grace: 14 * 24 * 3600}
	if err := Main(context.Background(), log, child, start, r); err != nil {
		t.Fatal(err)
	}
	var done ipc.UpkeepDone
	if _, err := ipc.Recv(parent, &done, false); err != nil {
		t.Fatal(err)
	}
	return &done
}

// TestMainOutcomes runs upkeep on repositories of five packs: a plain
// one is left with one, a precious one is left as it is, and one whose upkeep
// lock another holds (gotadmin cleanup) is left alone and reported
// busy.
func TestMainOutcomes(t *testing.T) {
	for _, tc := range []struct {
		name      string
		precious  bool
		locked    bool
		status    uint32
		packsLeft int
	}{
		{"plain", false, false, ipc.UpkeepOK, 1},
		{"precious", true, false, ipc.UpkeepPrecious, 5},
		{"locked", false, true, ipc.UpkeepBusy, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := makeRepo(t, tc.precious)
			if n := packs(t, path); n != 5 {
				t.Fatalf("got %d packs to start with; want 5", n)
			}
			if tc.locked {
				f, err := os.OpenFile(filepath.Join(path, engine.LockFile), os.O_RDONLY|os.O_CREATE, 0o444)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
					t.Fatal(err)
				}
			}
			done := runMain(t, path)
			if done.Status != tc.status {
				t.Errorf("got status %d (%q); want %d", done.Status, done.Message, tc.status)
			}
			if n := packs(t, path); n != tc.packsLeft {
				t.Errorf("got %d packs after upkeep; want %d", n, tc.packsLeft)
			}
			if tc.status == ipc.UpkeepOK && (done.Objects != 15 || done.Packs != 5) {
				t.Errorf("got %d objects packed, %d packs removed; want 15 and 5", done.Objects, done.Packs)
			}
			if out, err := exec.Command("git", "--git-dir", path, "fsck", "--full", "--strict", "--no-progress").CombinedOutput(); err != nil {
				t.Errorf("git fsck: %v\n%s", err, out)
			}
		})
	}
}
