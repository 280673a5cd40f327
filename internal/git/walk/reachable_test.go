package walk

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"gotd/internal/git/oid"
	"gotd/internal/git/walk/walktest"
	"gotd/internal/gittest"
)

// TestReachable checks Reachable on commits, a blob and a missing id,
// from the main line and from a side branch.
func TestReachable(t *testing.T) {
	dir := gittest.InitBare(t, "sha1")
	gittest.Generate(t, dir, gittest.History{Commits: 30, Files: 6})
	git := func(in string, args ...string) string {
		return strings.TrimSpace(gittest.GitInput(t, dir, []byte(in), args...))
	}
	id := func(s string) oid.ID {
		v, err := oid.ParseHexAny(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	main := git("", "rev-parse", "main")
	old := git("", "rev-parse", "main~20")
	oldBlob := git("", "rev-parse", "main~20:"+strings.Fields(git("", "ls-tree", "--name-only", "-r", "main~20"))[0])
	side := git("", "commit-tree", git("", "rev-parse", "main~5^{tree}"), "-p", "main~5", "-m", "side")
	sideBlob := git("side only\n", "hash-object", "-w", "--stdin")
	sideTop := git("", "commit-tree", git("100644 blob "+sideBlob+"\tf\n", "mktree"), "-p", side, "-m", "side top")
	w := &Walker{Store: walktest.LoadStore(t, dir, oid.SHA1), Format: oid.SHA1}
	missing := strings.Repeat("ab", 20)
	tipTree := git("", "rev-parse", "main^{tree}")
	ids := []oid.ID{id(main), id(old), id(oldBlob), id(side), id(sideTop), id(sideBlob), id(missing), id(tipTree)}
	got, err := w.Reachable(context.Background(), []oid.ID{id(main)}, ids)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{main: true, old: true, oldBlob: true, tipTree: true}
	for _, x := range ids {
		if got[x] != want[x.String()] {
			t.Errorf("%v reachable: %v, want %v", x, got[x], want[x.String()])
		}
	}
	got, err = w.Reachable(context.Background(), []oid.ID{id(sideTop)}, ids)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range ids {
		if w := x.String() != missing && x.String() != main && x.String() != tipTree; got[x] != w {
			t.Errorf("from the side: %v reachable: %v, want %v", x, got[x], w)
		}
	}
}

// TestReachableSkew checks that skewed commit dates, which stop C
// Git's limited walk too early, do not hide a reachable commit: T
// merges X (dated before everything) and Y; X's parent O is reached
// only through X.
func TestReachableSkew(t *testing.T) {
	dir := gittest.InitBare(t, "sha1")
	empty := strings.TrimSpace(gittest.Git(t, dir, "mktree"))
	commit := func(date int, msg string, parents ...string) string {
		args := []string{"commit-tree", empty, "-m", msg}
		for _, p := range parents {
			args = append(args, "-p", p)
		}
		d := fmt.Sprintf("@%d +0000", 1700000000+date)
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(gittest.Env(t), "GIT_COMMITTER_DATE="+d, "GIT_AUTHOR_DATE="+d)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%v: %s", err, err.(*exec.ExitError).Stderr)
		}
		return strings.TrimSpace(string(out))
	}
	p := commit(40, "p")
	for i := range 8 { // enough commits for the slop to run out
		p = commit(41+i, fmt.Sprint("p", i), p)
	}
	o := commit(50, "o", p)
	x := commit(1, "x", o)
	y := commit(60, "y", p)
	top := commit(70, "t", x, y)
	id := func(s string) oid.ID {
		v, err := oid.ParseHexAny(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	w := &Walker{Store: walktest.LoadStore(t, dir, oid.SHA1), Format: oid.SHA1}
	got, err := w.Reachable(context.Background(), []oid.ID{id(top)}, []oid.ID{id(o), id(x), id(p)})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{o, x, p} {
		if !got[id(c)] {
			t.Errorf("%s not found reachable from the merge", c)
		}
	}
}
