package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The "mirror" scenarios time the client side of a pull mirror against
// C Git's, both fetching from C Git's git daemon on loopback: the
// initial mirror of the repository (gotadmin clone against git clone
// --mirror), and a sync bringing one new commit, and one bringing
// nothing (gotadmin fetch against git fetch --prune). gotadmin runs the
// engine a mirror's sync runs in gotd (remote.Fetch: the same
// negotiation, indexer, object checks and connectivity check; gotd's
// session_write checks connectivity once more before it installs), as
// one process whose CPU and peak memory the kernel accounts for when
// it is reaped.

// printMirror runs the mirror scenarios on r's "bitmap" repository,
// those pick matches.
func printMirror(work string, r *repos, pick func(string) bool) {
	if !pick("mirror initial") && !pick("mirror sync 1 commit") && !pick("mirror sync nothing new") {
		return
	}
	bin := filepath.Join(work, "bin-mirror")
	build := exec.Command("go", "build", "-o", bin+"/", "./cmd/gotadmin")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fatalf("build gotadmin: %v\n%s", err, out)
	}
	gotadmin := filepath.Join(bin, "gotadmin")
	// The upstream: a copy of the repository that gains commits.
	upName := "mirror-upstream"
	up := r.fresh(upName, "bitmap", currentUser())
	dir := filepath.Join(work, "mirror")
	check(os.MkdirAll(dir, 0o755))
	defer os.RemoveAll(dir)
	gd := newGitDaemon(r.dir)
	cmd := gd.start()
	defer gd.stop(cmd)
	url := gd.url(upName)
	gitMirror, gotMirror := filepath.Join(dir, "git.git"), filepath.Join(dir, "gotadmin.git")

	fmt.Println()
	fmt.Printf("%-26s %-10s %9s %9s %10s %22s\n", "scenario", "tool", "wall", "cpu", "peak mem", "gotd/C Git cpu rss wall")
	line := func(name string, g, c toolRun) {
		fmt.Printf("%-26s %-10s %9s %9s %8.1fMB\n", name, "git", c.wall.Round(time.Millisecond), c.cpu.Round(time.Millisecond), float64(c.rss)/1024)
		fmt.Printf("%-26s %-10s %9s %9s %8.1fMB %6.2fx %5.2fx %5.2fx\n", name, "gotadmin", g.wall.Round(time.Millisecond), g.cpu.Round(time.Millisecond), float64(g.rss)/1024,
			div(g.cpu.Seconds(), c.cpu.Seconds()), div(float64(g.rss), float64(c.rss)), div(g.wall.Seconds(), c.wall.Seconds()))
	}
	same := func(what string) {
		refs := func(d string) string {
			return git(d, "for-each-ref", "--format=%(objectname) %(refname)", "refs/heads", "refs/tags")
		}
		if a, b := refs(gitMirror), refs(gotMirror); a != b {
			fatalf("%s: gotadmin's mirror's references differ from git's", what)
		}
	}
	initial := func() (toolRun, toolRun) {
		check(os.RemoveAll(gitMirror))
		check(os.RemoveAll(gotMirror))
		c := runTool(dir, "", "", "git", "clone", "-q", "--mirror", url, gitMirror)
		g := runTool(dir, "", "", gotadmin, "clone", "-q", url, gotMirror)
		return g, c
	}
	g, c := medianPair(*runs, initial)
	same("mirror initial")
	if pick("mirror initial") {
		line("mirror initial", g, c)
	}
	sync := func() (toolRun, toolRun) {
		c := runTool(gitMirror, "", "", "git", "fetch", "-q", "--prune", "origin")
		g := runTool("", "", "", gotadmin, "fetch", "-q", "-r", gotMirror)
		return g, c
	}
	if pick("mirror sync 1 commit") {
		n := 0
		g, c := medianPair(*runs, func() (toolRun, toolRun) {
			n++
			tree := strings.TrimSpace(git(up, "rev-parse", "main^{tree}"))
			commit := strings.TrimSpace(gitIn(up, []string{"GIT_AUTHOR_NAME=b", "GIT_AUTHOR_EMAIL=b@example.org", "GIT_COMMITTER_NAME=b", "GIT_COMMITTER_EMAIL=b@example.org"},
				"commit-tree", "-p", "main", "-m", fmt.Sprintf("bench %d", n), tree).run())
			git(up, "update-ref", "refs/heads/main", commit)
			return sync()
		})
		same("mirror sync 1 commit")
		line("mirror sync 1 commit", g, c)
	}
	if pick("mirror sync nothing new") {
		g, c := medianPair(*runs, sync)
		same("mirror sync nothing new")
		line("mirror sync nothing new", g, c)
	}
}

// medianPair runs f n times and returns the medians of each of its two
// runs' figures.
func medianPair(n int, f func() (toolRun, toolRun)) (toolRun, toolRun) {
	var gs, cs []toolRun
	for range n {
		g, c := f()
		gs, cs = append(gs, g), append(cs, c)
	}
	of := func(rs []toolRun) toolRun {
		i := 0
		return medianRun(len(rs), func() toolRun { i++; return rs[i-1] })
	}
	return of(gs), of(cs)
}

// mirrorOnly reports whether pick leaves no scenario but the mirror
// ones.
func mirrorOnly(pick func(string) bool, scs []scenario) bool {
	for _, sc := range scs {
		if pick(sc.name) {
			return false
		}
	}
	for _, name := range []string{"rebase", "load held", "fast-export", "fast-import", "ls-remote", "pages"} {
		if pick(name) {
			return false
		}
	}
	return true
}
