package main

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// repos are the repositories of one benchmark: what the servers serve
// and what the clients start from.
type repos struct {
	dir string
	// branch is the branch HEAD names (refs/heads/…); base is its
	// commit in the source, and tips[i] the branch after i+1 commits
	// made on top of it in fetch.git (newCommits of them).
	branch, base string
	tips         []string
}

// newCommits is how many commits the incremental fetches and pushes
// find on top of the served history.
const newCommits = 100

// served lists the repositories the servers serve.
var served = []string{"bitmap", "nobitmap", "fetch", "push-empty", "push-one", "rebase"}

// prepare makes the repositories from src: copies with and without a
// bitmap (one pack each), fetch.git with newCommits more commits on
// main, and the clients of the incremental fetches.
func prepare(dir, src string) *repos {
	r := &repos{dir: dir}
	for _, c := range []struct{ name, bitmap string }{{"bitmap", "true"}, {"nobitmap", "false"}} {
		dst := r.path(c.name)
		git("", "clone", "-q", "--bare", "--no-local", src, dst)
		// Partial clones need the filter allowed, by both servers.
		git(dst, "config", "uploadpack.allowFilter", "true")
		git(dst, "-c", "repack.writeBitmaps="+c.bitmap, "-c", "pack.writeBitmapHashCache=true", "repack", "-adq")
		if c.bitmap == "false" {
			matches, _ := filepath.Glob(filepath.Join(dst, "objects", "pack", "*.bitmap"))
			for _, m := range matches {
				os.Remove(m)
			}
		}
	}
	r.branch = strings.TrimSpace(git(r.path("bitmap"), "symbolic-ref", "HEAD"))
	r.base = strings.TrimSpace(git(r.path("bitmap"), "rev-parse", r.branch))

	// The served history plus commits pushed since its last repack:
	// loose objects next to the bitmapped pack.
	fetch := r.path("fetch")
	git("", "clone", "-q", "--bare", r.path("bitmap"), fetch)
	var in bytes.Buffer
	rng := rand.New(rand.NewSource(2))
	var lines []string
	for i := 1; i <= newCommits; i++ {
		fmt.Fprintf(&in, "commit %s\nmark :%d\ncommitter Bench <bench@example.com> %d +0000\n", r.branch, i, 1800000000+i*60)
		msg := fmt.Sprintf("new %d", i)
		fmt.Fprintf(&in, "data %d\n%s\n", len(msg), msg)
		if i == 1 {
			fmt.Fprintf(&in, "from %s\n", r.base)
		}
		lines = append(lines, fmt.Sprintf("line %d: %x", i, rng.Int63()))
		body := strings.Join(lines, "\n") + "\n"
		fmt.Fprintf(&in, "M 644 inline bench/new-%d.txt\ndata %d\n%s\n", i%7, len(body), body)
	}
	fmt.Fprintf(&in, "done\n")
	gitIn(fetch, nil, "-c", "fastimport.unpackLimit=1000", "fast-import", "--quiet", "--done").stdin(in.Bytes())
	for i := newCommits - 1; i >= 0; i-- {
		r.tips = append(r.tips, strings.TrimSpace(git(fetch, "rev-parse", fmt.Sprintf("%s~%d", r.branch, i))))
	}

	// Clients of the fetches: the served history, and that plus all
	// but the last new commit.
	git("", "clone", "-q", "--bare", r.path("bitmap"), r.path("client-0"))
	git("", "clone", "-q", "--bare", r.path("bitmap"), r.path("client-99"))
	git(r.path("client-99"), "fetch", "-q", fetch, r.tips[newCommits-2]+":"+r.branch)
	return r
}

func (r *repos) path(name string) string { return filepath.Join(r.dir, name+".git") }

// fresh makes a new copy of repository from (empty if ""), named name,
// owned by user: the server side of a push.
func (r *repos) fresh(name, from, user string) string {
	dst := r.path(name)
	check(os.RemoveAll(dst))
	if from == "" {
		git("", "init", "-q", "--bare", "-b", "main", dst)
	} else {
		git("", "clone", "-q", "--bare", r.path(from), dst)
		// A served repository's steady state has a commit-graph:
		// without one, C Git's automatic maintenance after a push
		// writes it for the whole history (1.5 s of CPU on git.git,
		// nearly all that its push of one commit cost), which a real
		// server does once, not on every push.
		git(dst, "commit-graph", "write", "--reachable", "--split", "--no-progress")
	}
	// What C Git skips by default and gotd always does.
	git(dst, "config", "receive.fsckObjects", "true")
	if os.Geteuid() == 0 {
		check(exec.Command("chown", "-R", user, dst).Run())
	}
	return dst
}

// packsOf lists the pack files of a repository with their sizes.
func packsOf(dir string) map[string]int64 {
	out := map[string]int64{}
	packs, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "*.pack"))
	for _, p := range packs {
		if fi, err := os.Stat(p); err == nil {
			out[filepath.Base(p)] = fi.Size()
		}
	}
	return out
}

// newBytes is the size of the packs in dir that are not in before.
func newBytes(dir string, before map[string]int64) int64 {
	var n int64
	for name, size := range packsOf(dir) {
		if _, ok := before[name]; !ok {
			n += size
		}
	}
	return n
}

// generate writes a synthetic history with git fast-import: commits
// each changing a few of 400 files, which grow and change so that
// deltas form, and a tag every 100 commits.
func generate(dir string, n int) {
	git("", "init", "-q", "--bare", "-b", "main", dir)
	rng := rand.New(rand.NewSource(1))
	files := make([][]string, 400)
	var in bytes.Buffer
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&in, "commit refs/heads/main\nmark :%d\ncommitter Bench <bench@example.com> %d +0000\n", i, 1700000000+i*60)
		msg := fmt.Sprintf("change %d", i)
		fmt.Fprintf(&in, "data %d\n%s\n", len(msg), msg)
		for range 1 + rng.Intn(4) {
			f := rng.Intn(len(files))
			files[f] = append(files[f], fmt.Sprintf("line %d of commit %d: %x", len(files[f]), i, rng.Int63()))
			if len(files[f]) > 200 {
				files[f] = files[f][50:]
			}
			body := strings.Join(files[f], "\n") + "\n"
			fmt.Fprintf(&in, "M 644 inline dir%d/file%d.txt\ndata %d\n%s\n", f%20, f, len(body), body)
		}
		if i%100 == 0 {
			fmt.Fprintf(&in, "tag v%d\nfrom :%d\ntagger Bench <bench@example.com> %d +0000\ndata 4\ntag\n", i/100, i, 1700000000+i*60)
		}
	}
	gitIn(dir, nil, "fast-import", "--quiet").stdin(in.Bytes())
}

// gitCmd is a git command about to run.
type gitCmd struct{ cmd *exec.Cmd }

// gitIn prepares git in dir with extra environment; run or stdin
// starts it.
func gitIn(dir string, env []string, args ...string) gitCmd {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(gitEnv(), env...)
	return gitCmd{cmd}
}

// run runs the command and returns its output; failure ends the
// benchmark.
func (g gitCmd) run() string { return g.stdin(nil) }

// stdin is run with input.
func (g gitCmd) stdin(in []byte) string {
	if in != nil {
		g.cmd.Stdin = bytes.NewReader(in)
	}
	out, err := g.cmd.CombinedOutput()
	if err != nil {
		fatalf("git %v: %v\n%s", g.cmd.Args[1:], err, out)
	}
	return string(out)
}

// try runs the command and reports whether it succeeded.
func (g gitCmd) try() bool {
	out, err := g.cmd.CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "git %v: %v\n%s", g.cmd.Args[1:], err, out)
	}
	return err == nil
}

// git runs git in dir and returns its output; failure ends the
// benchmark.
func git(dir string, args ...string) string { return gitIn(dir, nil, args...).run() }

// gitEnv is the environment of the git commands the bench runs: every
// repository is safe to use whoever owns it, and automatic
// maintenance, which C Git's fetch starts after it ends, runs
// before the command returns instead of in a process of its own: that
// process wrote into a client repository as the next scenario removed
// it ("unlinkat client/objects: directory not empty"), and its CPU fell
// into the next scenario's figures.
func gitEnv() []string {
	return append(os.Environ(), "GIT_CONFIG_COUNT=3", "GIT_CONFIG_KEY_0=safe.directory", "GIT_CONFIG_VALUE_0=*",
		"GIT_CONFIG_KEY_1=maintenance.autoDetach", "GIT_CONFIG_VALUE_1=false",
		"GIT_CONFIG_KEY_2=gc.autoDetach", "GIT_CONFIG_VALUE_2=false")
}
