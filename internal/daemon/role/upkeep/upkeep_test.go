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
// extensions.preciousObjects set. With repacked, the first four
// pushes are repacked into one pack before the fifth: two packs, of
// 12 and 3 objects.
func makeRepo(t *testing.T, precious, repacked bool) string {
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
		if repacked && i == 3 {
			git("--git-dir", bare, "repack", "-adq")
		}
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
// asking for a full repack if full, with the pack threshold packs, and
// returns the UpkeepDone it sent.
func runMain(t *testing.T, path string, full bool, packs uint32) *ipc.UpkeepDone {
	t.Helper()
	return runStart(t, &ipc.UpkeepStart{Path: path, Name: "r", Grace: 14 * 24 * 3600, Full: full, Packs: packs})
}

// runStart runs Main with start as the parent would and returns the
// UpkeepDone it sent.
func runStart(t *testing.T, start *ipc.UpkeepStart) *ipc.UpkeepDone {
	t.Helper()
	path := start.Path
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
// busy. On packs of 12 and 3 objects, a progression, the geometric
// repack changes nothing and the run ends there unless the threshold
// is under two packs or a full repack is asked for.
func TestMainOutcomes(t *testing.T) {
	for _, tc := range []struct {
		name      string
		precious  bool
		locked    bool
		repacked  bool
		full      bool
		threshold uint32
		status    uint32
		packsLeft int
		removed   uint64
	}{
		{"plain", false, false, false, false, 16, ipc.UpkeepOK, 1, 5},
		{"full", false, false, false, true, 16, ipc.UpkeepOK, 1, 5},
		{"precious", true, false, false, false, 16, ipc.UpkeepPrecious, 5, 0},
		{"locked", false, true, false, false, 16, ipc.UpkeepBusy, 5, 0},
		{"progression", false, false, true, false, 16, ipc.UpkeepOK, 2, 0},
		{"progression past the threshold", false, false, true, false, 1, ipc.UpkeepOK, 1, 2},
		{"progression, full", false, false, true, true, 16, ipc.UpkeepOK, 1, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := makeRepo(t, tc.precious, tc.repacked)
			want := 5
			if tc.repacked {
				want = 2
			}
			if n := packs(t, path); n != want {
				t.Fatalf("got %d packs to start with; want %d", n, want)
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
			done := runMain(t, path, tc.full, tc.threshold)
			if done.Status != tc.status {
				t.Errorf("got status %d (%q); want %d", done.Status, done.Message, tc.status)
			}
			if n := packs(t, path); n != tc.packsLeft {
				t.Errorf("got %d packs after upkeep; want %d", n, tc.packsLeft)
			}
			if done.Packs != tc.removed {
				t.Errorf("got %d packs removed; want %d", done.Packs, tc.removed)
			}
			if tc.status == ipc.UpkeepOK && tc.packsLeft == 1 && done.Objects != 15 {
				t.Errorf("got %d objects packed; want 15", done.Objects)
			}
			if out, err := exec.Command("git", "--git-dir", path, "fsck", "--full", "--strict", "--no-progress").CombinedOutput(); err != nil {
				t.Errorf("git fsck: %v\n%s", err, out)
			}
		})
	}
}

// TestMainPacksRefs: with 61 loose references, a run whose threshold is
// 100 leaves them loose and one whose threshold is 50 packs them all;
// C Git reads the same references before and after.
func TestMainPacksRefs(t *testing.T) {
	path := makeRepo(t, false, false)
	git := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("git", append([]string{"--git-dir", path}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	for i := range 60 {
		git("update-ref", fmt.Sprintf("refs/heads/topic/%02d", i), "main~"+fmt.Sprint(i%4))
	}
	before := git("for-each-ref")
	loose := func() int {
		n := 0
		filepath.WalkDir(filepath.Join(path, "refs"), func(_ string, d os.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				n++
			}
			return nil
		})
		return n
	}
	if n := loose(); n != 61 {
		t.Fatalf("%d loose references to start with; want 61", n)
	}
	for _, tc := range []struct {
		threshold uint32
		packed    uint64
		left      int
	}{{100, 0, 61}, {50, 61, 0}} {
		done := runStart(t, &ipc.UpkeepStart{Path: path, Name: "r", Grace: 14 * 24 * 3600, Packs: 16, LooseRefs: tc.threshold})
		if done.Status != ipc.UpkeepOK || done.Refs != tc.packed {
			t.Errorf("threshold %d: status %d (%q), %d references packed; want OK, %d", tc.threshold, done.Status, done.Message, done.Refs, tc.packed)
		}
		if n := loose(); n != tc.left {
			t.Errorf("threshold %d: %d loose references left; want %d", tc.threshold, n, tc.left)
		}
		if after := git("for-each-ref"); after != before {
			t.Errorf("threshold %d: references changed:\n%s\nwere\n%s", tc.threshold, after, before)
		}
	}
}
