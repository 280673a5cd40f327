// Package gittest builds Git repositories with the real git client for
// tests, isolated from the user's and the system's configuration, so
// that C Git serves as the oracle for what gotd reads and writes.
package gittest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Env returns an environment for git commands that ignores system and
// user configuration and fixes author, committer and dates, so results
// are reproducible.
func Env(t testing.TB) []string {
	t.Helper()
	home := t.TempDir()
	env := []string{
		"HOME=" + home,
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=A U Thor",
		"GIT_AUTHOR_EMAIL=author@example.com",
		"GIT_COMMITTER_NAME=C O Mitter",
		"GIT_COMMITTER_EMAIL=committer@example.com",
		"GIT_AUTHOR_DATE=1700000000 +0000",
		"GIT_COMMITTER_DATE=1700000000 +0000",
		"GIT_TERMINAL_PROMPT=0",
		"LC_ALL=C",
	}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PATH=") || strings.HasPrefix(kv, "TMPDIR=") {
			env = append(env, kv)
		}
	}
	return env
}

// Git runs git with args in dir and returns its standard output; the
// test fails if git fails.
func Git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	return GitInput(t, dir, nil, args...)
}

// GitInput is Git with data on standard input.
func GitInput(t testing.TB, dir string, stdin []byte, args ...string) string {
	t.Helper()
	out, err := Run(t, dir, stdin, args...)
	if err != nil {
		t.Fatalf("git %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// Run runs git and returns its standard output and an error that
// includes its standard error when it fails.
func Run(t testing.TB, dir string, stdin []byte, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = Env(t)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%w: %s", err, stderr.String())
	}
	return stdout.String(), nil
}

// InitBare creates an empty bare repository of the given object format
// ("sha1" or "sha256") with main as its default branch.
func InitBare(t testing.TB, format string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "repo.git")
	Git(t, "", "-c", "init.defaultBranch=main", "init", "-q", "--bare", "--object-format="+format, dir)
	return dir
}

// History describes a generated history.
type History struct {
	Commits  int // commits on main
	Branches int // extra branches forked from main, each with a few commits
	Files    int // files per tree, spread over a few directories
}

// Generate writes a history into the bare repository dir with git
// fast-import: commits that modify a handful of files each (so packs
// get deltas), a merge, branches, an annotated tag, a lightweight tag,
// a tag of a blob, a tag of a tree, a tag of a tag, an executable, a
// symlink and a submodule entry. It leaves the objects in one pack, as
// fast-import writes them.
func Generate(t testing.TB, dir string, h History) {
	t.Helper()
	if h.Commits < 2 {
		h.Commits = 2
	}
	if h.Files < 4 {
		h.Files = 4
	}
	var b bytes.Buffer
	mark := 0
	next := func() int { mark++; return mark }
	blob := func(content string) int {
		m := next()
		fmt.Fprintf(&b, "blob\nmark :%d\ndata %d\n%s\n", m, len(content), content)
		return m
	}
	fileContent := func(i, rev int) string {
		var s strings.Builder
		for line := 0; line < 40; line++ {
			fmt.Fprintf(&s, "file %d line %d: the quick brown fox jumps over the lazy dog\n", i, line)
			if line == rev%40 {
				fmt.Fprintf(&s, "revision %d\n", rev)
			}
		}
		return s.String()
	}
	path := func(i int) string { return fmt.Sprintf("dir%d/sub%d/file%d.txt", i%3, i%2, i) }
	when := int64(1700000000)
	commit := func(ref string, msg string, from int, merge int, mods map[string]int, extra string) int {
		m := next()
		when += 60
		fmt.Fprintf(&b, "commit %s\nmark :%d\n", ref, m)
		fmt.Fprintf(&b, "author A U Thor <author@example.com> %d +0100\n", when)
		fmt.Fprintf(&b, "committer C O Mitter <committer@example.com> %d +0100\n", when)
		fmt.Fprintf(&b, "data %d\n%s\n", len(msg), msg)
		if from > 0 {
			fmt.Fprintf(&b, "from :%d\n", from)
		}
		if merge > 0 {
			fmt.Fprintf(&b, "merge :%d\n", merge)
		}
		for p, bm := range mods {
			fmt.Fprintf(&b, "M 100644 :%d %s\n", bm, p)
		}
		b.WriteString(extra)
		b.WriteString("\n")
		return m
	}

	first := map[string]int{}
	for i := 0; i < h.Files; i++ {
		first[path(i)] = blob(fileContent(i, 0))
	}
	exe := blob("#!/bin/sh\necho hello\n")
	extra := fmt.Sprintf("M 100755 :%d bin/run.sh\nM 120000 inline link\ndata 10\ndir0/sub0/\nM 160000 %s vendor/sub\n",
		exe, strings.Repeat("1", 40))
	if strings.Contains(Git(t, dir, "rev-parse", "--show-object-format"), "sha256") {
		extra = strings.Replace(extra, strings.Repeat("1", 40), strings.Repeat("1", 64), 1)
	}
	tip := commit("refs/heads/main", "initial commit", 0, 0, first, extra)
	root := tip
	for c := 1; c < h.Commits; c++ {
		mods := map[string]int{}
		for k := 0; k < 3; k++ {
			i := (c*7 + k*5) % h.Files
			mods[path(i)] = blob(fileContent(i, c))
		}
		tip = commit("refs/heads/main", fmt.Sprintf("commit %d\n\nbody of commit %d", c, c), tip, 0, mods, "")
	}
	for br := 0; br < h.Branches; br++ {
		ref := fmt.Sprintf("refs/heads/topic%d", br)
		btip := root
		for c := 0; c < 3; c++ {
			i := (br + c) % h.Files
			btip = commit(ref, fmt.Sprintf("topic %d commit %d", br, c), btip, 0,
				map[string]int{path(i): blob(fileContent(i, 1000+br*10+c))}, "")
		}
		if br == 0 {
			tip = commit("refs/heads/main", "merge topic0", tip, btip, nil, "")
		}
	}
	tagged := blob("a blob reached only through a tag\n")
	fmt.Fprintf(&b, "tag v1.0\nfrom :%d\ntagger T Agger <tagger@example.com> %d +0000\ndata 12\nrelease 1.0\n\n", tip, when)
	fmt.Fprintf(&b, "reset refs/tags/light\nfrom :%d\n\n", root)
	fmt.Fprintf(&b, "tag blob-tag\nfrom :%d\ntagger T Agger <tagger@example.com> %d +0000\ndata 9\na blob\n\n\n", tagged, when)
	GitInput(t, dir, b.Bytes(), "fast-import", "--quiet")

	// fast-import cannot tag a tree or a tag; add those with plumbing.
	tree := strings.TrimSpace(Git(t, dir, "rev-parse", "main^{tree}"))
	tagTree := fmt.Sprintf("object %s\ntype tree\ntag tree-tag\ntagger T Agger <tagger@example.com> %d +0000\n\na tree\n", tree, when)
	tt := strings.TrimSpace(GitInput(t, dir, []byte(tagTree), "hash-object", "-t", "tag", "-w", "--stdin"))
	Git(t, dir, "update-ref", "refs/tags/tree-tag", tt)
	v1 := strings.TrimSpace(Git(t, dir, "rev-parse", "refs/tags/v1.0"))
	tagTag := fmt.Sprintf("object %s\ntype tag\ntag nested\ntagger T Agger <tagger@example.com> %d +0000\n\na tag of a tag\n", v1, when)
	nt := strings.TrimSpace(GitInput(t, dir, []byte(tagTag), "hash-object", "-t", "tag", "-w", "--stdin"))
	Git(t, dir, "update-ref", "refs/tags/nested", nt)
}

// Objects returns every object id in the repository, as git lists them.
func Objects(t testing.TB, dir string) []string {
	t.Helper()
	out := Git(t, dir, "cat-file", "--batch-all-objects", "--batch-check=%(objectname)")
	return strings.Fields(out)
}
