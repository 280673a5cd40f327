package blame

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gotd/internal/git/oid"
	"gotd/internal/git/repo"
	"gotd/internal/gittest"
)

// gitBlame runs `git blame --porcelain` and returns each line's commit
// and original line number.
func gitBlame(t *testing.T, dir, commit, path string) []Line {
	t.Helper()
	out := gittest.Git(t, dir, "blame", "--porcelain", commit, "--", path)
	var lines []Line
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) < 3 || (len(f[0]) != 40 && len(f[0]) != 64) {
			continue
		}
		id, err := oid.ParseHexAny(f[0])
		if err != nil {
			continue
		}
		orig, err1 := strconv.Atoi(f[1])
		final, err2 := strconv.Atoi(f[2])
		if err1 != nil || err2 != nil || final != len(lines)+1 {
			t.Fatalf("porcelain line %q out of order", l)
		}
		lines = append(lines, Line{Commit: id, OrigLine: orig})
	}
	return lines
}

// compare checks Blame against git blame for path at commit: every
// line's text is the file's, and is the line its commit's version holds
// at its original number; at most tolerate of the lines are blamed
// elsewhere than git blame blames them (0 where no diff can be aligned
// in two ways, as in the generated histories).
func compare(t *testing.T, dir string, r *repo.Repo, commit, path string, tolerate float64) {
	t.Helper()
	id, err := oid.ParseHexAny(strings.TrimSpace(gittest.Git(t, dir, "rev-parse", commit)))
	if err != nil {
		t.Fatal(err)
	}
	got, err := Blame(context.Background(), r, id, path, Limits{})
	if err != nil {
		t.Fatalf("Blame(%s, %s): %v", commit, path, err)
	}
	want := gitBlame(t, dir, commit, path)
	content := gittest.Git(t, dir, "cat-file", "blob", commit+":"+path)
	if len(got) != len(want) {
		t.Fatalf("Blame(%s, %s): %d lines; git blame has %d", commit, path, len(got), len(want))
	}
	var text bytes.Buffer
	versions := map[oid.ID][]string{}
	bad := 0
	for i := range got {
		text.Write(got[i].Text)
		v, ok := versions[got[i].Commit]
		if !ok {
			v = strings.SplitAfter(gittest.Git(t, dir, "cat-file", "blob", got[i].Commit.String()+":"+path), "\n")
			versions[got[i].Commit] = v
		}
		if o := got[i].OrigLine; o < 1 || o > len(v) || v[o-1] != string(got[i].Text) || got[i].Path != path {
			t.Errorf("Blame(%s, %s) line %d: %s line %d is not the line %q", commit, path, i+1, got[i].Commit, o, got[i].Text)
		}
		if got[i].Commit != want[i].Commit || got[i].OrigLine != want[i].OrigLine {
			if bad++; bad <= 5 && tolerate == 0 {
				t.Errorf("Blame(%s, %s) line %d: %s %d; git blame: %s %d", commit, path, i+1, got[i].Commit, got[i].OrigLine, want[i].Commit, want[i].OrigLine)
			}
		}
	}
	if bad > 0 {
		t.Logf("Blame(%s, %s): %d of %d lines blamed elsewhere than by git blame", commit, path, bad, len(got))
	}
	if float64(bad) > tolerate*float64(len(got)) {
		t.Errorf("Blame(%s, %s): %d of %d lines differ from git blame; tolerated %.0f%%", commit, path, bad, len(got), 100*tolerate)
	}
	if text.String() != content {
		t.Errorf("Blame(%s, %s): the lines' text is not the file's", commit, path)
	}
}

// history writes with fast-import a history of n commits on main
// editing two files at random (lines replaced, inserted, deleted; each
// new line unique), with a branch merged back every few commits, the
// merge's file taking lines of both sides.
func history(t *testing.T, format string, seed uint64, n int) string {
	t.Helper()
	dir := gittest.InitBare(t, format)
	r := rand.New(rand.NewPCG(seed, 7))
	counter := 0
	fresh := func() string { counter++; return fmt.Sprintf("line %d of the history, %x", counter, r.Uint32()) }
	edit := func(lines []string) []string {
		out := append([]string(nil), lines...)
		for range 1 + r.IntN(4) {
			if len(out) == 0 {
				out = append(out, fresh())
				continue
			}
			at := r.IntN(len(out))
			switch r.IntN(3) {
			case 0:
				out[at] = fresh()
			case 1:
				out = append(out[:at], append([]string{fresh()}, out[at:]...)...)
			case 2:
				out = append(out[:at], out[at+1:]...)
			}
		}
		return out
	}
	var b bytes.Buffer
	mark := 0
	when := 1700000000
	files := map[string][]string{"a.txt": nil, "dir/b.txt": nil}
	for i := range 20 {
		files["a.txt"] = append(files["a.txt"], fresh())
		if i%2 == 0 {
			files["dir/b.txt"] = append(files["dir/b.txt"], fresh())
		}
	}
	commit := func(ref string, fs map[string][]string, from, merge int) int {
		mark++
		when += 60 + r.IntN(600)
		fmt.Fprintf(&b, "commit %s\nmark :%d\ncommitter C O Mitter <c@example.com> %d +0000\ndata 7\ncommit\n", ref, mark, when)
		if from > 0 {
			fmt.Fprintf(&b, "from :%d\n", from)
		}
		if merge > 0 {
			fmt.Fprintf(&b, "merge :%d\n", merge)
		}
		for name, lines := range fs {
			content := strings.Join(lines, "\n")
			if len(lines) > 0 {
				content += "\n"
			}
			fmt.Fprintf(&b, "M 100644 inline %s\ndata %d\n%s\n", name, len(content), content)
		}
		return mark
	}
	copyFiles := func(fs map[string][]string) map[string][]string {
		out := map[string][]string{}
		for k, v := range fs {
			out[k] = append([]string(nil), v...)
		}
		return out
	}
	tip := commit("refs/heads/main", files, 0, 0)
	for i := 1; i < n; i++ {
		if i%8 == 0 {
			// A branch of a few commits, merged back after main moved
			// on too.
			side := copyFiles(files)
			stip := tip
			for range 1 + r.IntN(3) {
				side["a.txt"] = edit(side["a.txt"])
				if r.IntN(2) == 0 {
					side["dir/b.txt"] = edit(side["dir/b.txt"])
				}
				stip = commit("refs/heads/side", side, stip, 0)
				i++
			}
			files["a.txt"] = edit(files["a.txt"])
			tip = commit("refs/heads/main", files, tip, 0)
			// The merge keeps main's lines and splices in a run of
			// the side's, and adds a line of its own at times.
			merged := copyFiles(files)
			for name, all := range side {
				// The side's own lines, so that every line of a
				// version stays unique and the diffs unambiguous.
				var lines []string
				for _, l := range all {
					if !slices.Contains(files[name], l) {
						lines = append(lines, l)
					}
				}
				if len(lines) == 0 {
					continue
				}
				lo := r.IntN(len(lines))
				hi := lo + r.IntN(len(lines)-lo) + 1
				at := r.IntN(len(merged[name]) + 1)
				m := append([]string(nil), merged[name][:at]...)
				m = append(m, lines[lo:hi]...)
				if r.IntN(3) == 0 {
					m = append(m, fresh())
				}
				merged[name] = append(m, merged[name][at:]...)
			}
			if r.IntN(4) == 0 {
				merged = copyFiles(side) // the side's file whole
			}
			files = merged
			tip = commit("refs/heads/main", files, tip, stip)
			continue
		}
		files["a.txt"] = edit(files["a.txt"])
		if r.IntN(3) == 0 {
			files["dir/b.txt"] = edit(files["dir/b.txt"])
		}
		tip = commit("refs/heads/main", files, tip, 0)
	}
	gittest.GitInput(t, dir, b.Bytes(), "fast-import", "--quiet")
	return dir
}

// TestBlameMatchesGit compares Blame with git blame on generated
// histories of 50 commits with merges, at the tip and at older commits.
func TestBlameMatchesGit(t *testing.T) {
	for _, format := range []string{"sha1", "sha256"} {
		for seed := range uint64(4) {
			t.Run(fmt.Sprintf("%s/%d", format, seed), func(t *testing.T) {
				dir := history(t, format, seed, 50)
				r, err := repo.Open(dir, repo.Options{})
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				for _, c := range []string{"main", "main~3", "main^2", "side"} {
					for _, p := range []string{"a.txt", "dir/b.txt"} {
						compare(t, dir, r, c, p, 0)
					}
				}
			})
		}
	}
}

// TestBlameRealFile compares Blame with git blame on files of this
// repository's own history (some 20 commits each, merges among them),
// when the tests run in a checkout.
func TestBlameRealFile(t *testing.T) {
	out, err := exec.Command("git", "rev-parse", "--path-format=absolute", "--git-common-dir").Output()
	if err != nil {
		t.Skip("not in a git checkout")
	}
	dir := strings.TrimSpace(string(out))
	r, err := repo.Open(dir, repo.Options{})
	if err != nil {
		t.Skipf("open %s: %v", dir, err)
	}
	defer r.Close()
	out, err = exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skip("no HEAD")
	}
	head := strings.TrimSpace(string(out))
	for _, path := range []string{"internal/daemon/ipc/ipc.go", "internal/daemon/config/config.go", "internal/protocol/upload/v2.go", "Makefile"} {
		if _, err := gittest.Run(t, dir, nil, "cat-file", "-e", head+":"+path); err != nil {
			t.Logf("%s is not in this checkout", path)
			continue
		}
		// C Git's xdiff finds another of the shortest diffs at times,
		// where equal lines ("}" and blank lines of Go code) can be
		// matched in more than one way: such lines may be blamed on
		// another commit that also wrote them.
		compare(t, dir, r, head, path, 0.05)
	}
}

// TestLimits: past each bound Blame refuses.
func TestLimits(t *testing.T) {
	dir := history(t, "sha1", 9, 30)
	r, err := repo.Open(dir, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	id, _ := oid.ParseHexAny(strings.TrimSpace(gittest.Git(t, dir, "rev-parse", "main")))
	ctx := context.Background()
	if _, err := Blame(ctx, r, id, "a.txt", Limits{MaxFileSize: 100}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("MaxFileSize 100: %v; want ErrTooLarge", err)
	}
	if _, err := Blame(ctx, r, id, "a.txt", Limits{MaxCommits: 3}); !errors.Is(err, ErrTooManyCommits) {
		t.Errorf("MaxCommits 3: %v; want ErrTooManyCommits", err)
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Blame(done, r, id, "a.txt", Limits{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v; want context.Canceled", err)
	}
	for _, p := range []string{"nosuch", "dir", "dir/b.txt/x", "a.txt/x", ""} {
		if _, err := Blame(ctx, r, id, p, Limits{}); !errors.Is(err, ErrNotFound) {
			t.Errorf("Blame of %q: %v; want ErrNotFound", p, err)
		}
	}
}
