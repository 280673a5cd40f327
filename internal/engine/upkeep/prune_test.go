package upkeep

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"gotd/internal/git/repo"
	"gotd/internal/gittest"
	"gotd/internal/protocol/receive"
)

// TestPushDuringRemoval: a push whose pack holds only a commit whose
// parent is an unreachable commit of the repository (a client that
// left the parent out because a reference it saw reached it) arrives
// between Repack's last walk and its removal of that parent's pack.
// The push must not be acknowledged with its parent then removed:
// either it waits for the removal and is refused, or Repack keeps the
// parent. C Git's fsck --full --strict must pass afterwards.
func TestPushDuringRemoval(t *testing.T) {
	dir := gittest.InitBare(t, "sha1")
	gittest.Generate(t, dir, gittest.History{Commits: 5})
	tree := strings.TrimSpace(gittest.Git(t, dir, "rev-parse", "main^{tree}"))
	base := strings.TrimSpace(gittest.Git(t, dir, "commit-tree", tree, "-p", "main", "-m", "deleted branch"))
	child := strings.TrimSpace(gittest.Git(t, dir, "commit-tree", tree, "-p", base, "-m", "pushed on it"))
	// The base in a pack of its own, as its push left it; the child
	// only in the pack the client sends.
	gittest.GitInput(t, dir, []byte(base+"\n"), "pack-objects", "-q", filepath.Join(dir, "objects", "pack", "pack"))
	sent := []byte(gittest.GitInput(t, dir, []byte(child+"\n"), "pack-objects", "-q", "--stdout"))
	for _, id := range []string{base, child} {
		if err := os.Remove(filepath.Join(dir, "objects", id[:2], id[2:])); err != nil {
			t.Fatal(err)
		}
	}
	line := fmt.Sprintf("%s %s refs/heads/topic\x00report-status\n", strings.Repeat("0", 40), child)
	req := append([]byte(fmt.Sprintf("%04x%s0000", len(line)+4, line)), sent...)

	type outcome struct {
		res *receive.Result
		err error
	}
	pushed := make(chan outcome, 1)
	var inWindow bool
	defer func() { pauseBeforeRemoval = func() {} }()
	pauseBeforeRemoval = func() {
		// The push runs in a process of its own, with its own view of
		// the repository.
		go func() {
			r, err := repo.Open(dir, repo.Options{})
			if err != nil {
				pushed <- outcome{err: err}
				return
			}
			defer r.Close()
			var out bytes.Buffer
			res, err := receive.Serve(context.Background(), bytes.NewReader(req), &out, receive.Options{Repo: r, StatelessRPC: true, PruneWait: 10 * time.Second})
			pushed <- outcome{res, err}
		}()
		select {
		case o := <-pushed:
			pushed <- o
			inWindow = true
		case <-time.After(500 * time.Millisecond):
		}
	}
	rep, err := Repack(context.Background(), open(t, dir), Options{All: true})
	if err != nil {
		t.Fatal(err)
	}
	o := <-pushed
	if o.err != nil {
		t.Fatalf("push: %v", o.err)
	}
	if len(o.res.Commands) != 1 {
		t.Fatalf("push: %d commands; want 1", len(o.res.Commands))
	}
	acked := o.res.Commands[0].Status == ""
	t.Logf("push acknowledged: %v (completed during the removal window: %v), status %q; Repack pruned %d objects", acked, inWindow, o.res.Commands[0].Status, len(rep.Pruned))
	if inWindow {
		t.Errorf("the push completed between Repack's last walk and its removal")
	}
	if acked && !has(t, dir, base) {
		t.Errorf("the push was acknowledged and its parent %s removed", base)
	}
	if out, err := gittest.Run(t, dir, nil, "fsck", "--full", "--strict", "--no-dangling"); err != nil {
		t.Errorf("git fsck: %v\n%s", err, out)
	}
}

// TestPushWaitsForPrune: a push waits for the prune lock a cleanup
// holds, gives up after PruneWait with a fixed reason, and leaves the
// repository as it was.
func TestPushWaitsForPrune(t *testing.T) {
	dir := gittest.InitBare(t, "sha1")
	gittest.Generate(t, dir, gittest.History{Commits: 3})
	tree := strings.TrimSpace(gittest.Git(t, dir, "rev-parse", "main^{tree}"))
	child := strings.TrimSpace(gittest.Git(t, dir, "commit-tree", tree, "-p", "main", "-m", "pushed"))
	sent := []byte(gittest.GitInput(t, dir, []byte(child+"\n"), "pack-objects", "-q", "--stdout"))
	os.Remove(filepath.Join(dir, "objects", child[:2], child[2:]))
	line := fmt.Sprintf("%s %s refs/heads/topic\x00report-status\n", strings.Repeat("0", 40), child)
	req := append([]byte(fmt.Sprintf("%04x%s0000", len(line)+4, line)), sent...)

	r := open(t, dir)
	unlock, err := r.LockPrune(context.Background(), true, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	before := gittest.Git(t, dir, "for-each-ref")
	start := time.Now()
	var out bytes.Buffer
	res, err := receive.Serve(context.Background(), bytes.NewReader(req), &out, receive.Options{Repo: open(t, dir), StatelessRPC: true, PruneWait: 300 * time.Millisecond})
	took := time.Since(start)
	unlock()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := res.Commands[0].Status, "repository is being cleaned up, try again later"; got != want {
		t.Errorf("status %q; want %q", got, want)
	}
	if took < 300*time.Millisecond {
		t.Errorf("push gave up after %v; want at least the 300ms wait", took)
	}
	if got := gittest.Git(t, dir, "for-each-ref"); got != before {
		t.Errorf("references changed: %s; were %s", got, before)
	}
	// Once the lock is free, the same push goes in.
	res, err = receive.Serve(context.Background(), bytes.NewReader(req), &out, receive.Options{Repo: open(t, dir), StatelessRPC: true})
	if err != nil || res.Commands[0].Status != "" {
		t.Fatalf("push after the cleanup: %v, status %q", err, res.Commands[0].Status)
	}
	gittest.Git(t, dir, "fsck", "--full", "--strict")
}

// TestQuarantineMissingParent: a push in flight whose pack names a
// parent the repository lacks (it will be refused) does not make
// Repack fail: a client could otherwise stop every cleanup with such a
// push, sent slowly.
func TestQuarantineMissingParent(t *testing.T) {
	dir := gittest.InitBare(t, "sha1")
	gittest.Generate(t, dir, gittest.History{Commits: 5})
	tree := strings.TrimSpace(gittest.Git(t, dir, "rev-parse", "main^{tree}"))
	missing := strings.TrimSpace(gittest.Git(t, dir, "commit-tree", tree, "-p", "main", "-m", "never sent"))
	blob := strings.TrimSpace(gittest.GitInput(t, dir, []byte("pushed\n"), "hash-object", "-w", "--stdin"))
	pushedTree := strings.TrimSpace(gittest.GitInput(t, dir, []byte("100644 blob "+blob+"\tf\n"), "mktree"))
	child := strings.TrimSpace(gittest.Git(t, dir, "commit-tree", pushedTree, "-p", missing, "-m", "pushed"))
	q := filepath.Join(dir, "objects", "incoming-gotd-test")
	if err := os.Mkdir(q, 0o755); err != nil {
		t.Fatal(err)
	}
	hold, err := os.Open(q)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	if err := unix.Flock(int(hold.Fd()), unix.LOCK_SH); err != nil {
		t.Fatal(err)
	}
	gittest.GitInput(t, dir, []byte(child+"\n"), "pack-objects", "-q", filepath.Join(q, "pack"))
	for _, id := range []string{missing, child} {
		if err := os.Remove(filepath.Join(dir, "objects", id[:2], id[2:])); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := Repack(context.Background(), open(t, dir), Options{All: true})
	if err != nil {
		t.Fatalf("Repack with a push in flight that names a missing parent: %v", err)
	}
	t.Logf("pruned %d objects", len(rep.Pruned))
	gittest.Git(t, dir, "fsck", "--full", "--strict", "--no-dangling")
}
