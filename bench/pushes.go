package main

import (
	"bytes"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The "pushes" scenario pushes -pushes commits, one per push, onto a
// small generated repository served by gotd with its upkeep on (the
// defaults) and by C Git 2.55's git daemon, whose receive-pack runs gc
// --auto after each push (gc.autoDetach off, so that gc's CPU is the
// daemon's and the push waits for it, as a server's accounting would
// see it). It prints for each: the packs (and loose objects) left, the
// server CPU of all the pushes, and the server CPU of a full clone
// afterwards against that of the same repository freshly packed (git
// repack -adb): the targets are at most ~log2(pushes)+1 packs and a
// clone at most 1.1x the fresh one.

var (
	pushesN     = flag.Int("pushes", 1000, "pushes of one commit each in the pushes scenario")
	pushServers = flag.String("pushservers", "gotd,git", "servers of the pushes scenario: gotd, git or both")
)

// cgit255 is the C Git the pushes scenario serves with.
const cgit255 = "/work/git-2.55/bin"

// pushClones is how many clones of each repository the pushes scenario
// makes per server start.
const pushClones = 3 * smallRepeat

// pushFigures are one server's results.
type pushFigures struct {
	packs, loose      int
	pushCPU, pushWall time.Duration
	clone, fresh      result
}

// printPushes runs the pushes scenario with the gotd built in bin.
func printPushes(work, bin string) {
	n := *pushesN
	dir := filepath.Join(work, "pushes")
	check(os.MkdirAll(dir, 0o755))
	if !*keep {
		defer os.RemoveAll(dir)
	}
	base := filepath.Join(dir, "base.git")
	const baseCommits = 200
	generate(base, baseCommits)
	git(base, "repack", "-adq")

	// The client: a clone of base with the n commits made ahead, each
	// changing one file (a commit, a tree and a blob per push).
	client := filepath.Join(dir, "client")
	git("", "clone", "-q", "--bare", base, client)
	var in bytes.Buffer
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&in, "commit refs/heads/main\nmark :%d\ncommitter Bench <bench@example.com> %d +0000\n", i, 1800000000+i)
		msg := fmt.Sprintf("push %d", i)
		fmt.Fprintf(&in, "data %d\n%s\n", len(msg), msg)
		if i == 1 {
			fmt.Fprintf(&in, "from refs/heads/main^0\n")
		}
		body := fmt.Sprintf("pushed %d\n", i)
		fmt.Fprintf(&in, "M 644 inline pushed.txt\ndata %d\n%s\n", len(body), body)
	}
	marks := filepath.Join(dir, "marks")
	gitIn(client, nil, "fast-import", "--quiet", "--export-marks="+marks).stdin(in.Bytes())
	b, err := os.ReadFile(marks)
	check(err)
	commits := make([]string, n)
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var i int
		var id string
		if _, err := fmt.Sscanf(l, ":%d %s", &i, &id); err == nil && i >= 1 && i <= n {
			commits[i-1] = id
		}
	}

	// Each server's repositories: "push-upkeep" receives the pushes,
	// "push-fresh" is its final state freshly packed.
	gotdRepos := filepath.Join(dir, "gotd-repos")
	cgitRepos := filepath.Join(dir, "cgit-repos")
	for _, repos := range []string{gotdRepos, cgitRepos} {
		check(os.MkdirAll(repos, 0o755))
		git("", "clone", "-q", "--bare", "--no-local", base, filepath.Join(repos, "push-upkeep.git"))
		git("", "init", "-q", "--bare", "-b", "main", filepath.Join(repos, "push-fresh.git"))
	}
	git(filepath.Join(cgitRepos, "push-upkeep.git"), "config", "receive.fsckObjects", "true")
	git(filepath.Join(cgitRepos, "push-upkeep.git"), "config", "gc.autoDetach", "false")
	exec.Command("chmod", "-R", "a+rX", dir).Run()

	gotdWork := filepath.Join(dir, "gotd")
	check(os.MkdirAll(gotdWork, 0o755))
	if os.Geteuid() == 0 {
		check(exec.Command("chown", "-R", "nobody", gotdRepos).Run())
	}
	gotd := newGotd(gotdWork, bin, gotdRepos, []string{"push-upkeep", "push-fresh"})
	cgit := newGitDaemon255(cgitRepos)

	fmt.Printf("\npushes: %d pushes of one commit each onto a generated repository of %d commits\n", n, baseCommits)
	figs := make([]pushFigures, 2)
	for i, s := range []*server{gotd, cgit} {
		repos, name := gotdRepos, "gotd"
		if s == cgit {
			repos, name = cgitRepos, "git"
		}
		if strings.Contains(*pushServers, name) {
			figs[i] = pushAndClone(s, repos, commits)
		}
	}
	target := int(math.Round(math.Log2(float64(n)))) + 1
	fmt.Printf("%-24s %6s %7s %12s %12s %12s %12s %7s\n", "server", "packs", "loose", "push cpu", "push wall", "clone cpu", "fresh clone", "ratio")
	for i, s := range []string{"gotd (upkeep defaults)", "C Git 2.55 (gc --auto)"} {
		f := figs[i]
		fmt.Printf("%-24s %6d %7d %12s %12s %12s %12s %6.2fx\n", s, f.packs, f.loose,
			f.pushCPU.Round(time.Millisecond), f.pushWall.Round(time.Millisecond),
			f.clone.cpu.Round(time.Millisecond), f.fresh.cpu.Round(time.Millisecond), div(f.clone.cpu.Seconds(), f.fresh.cpu.Seconds()))
	}
	fmt.Printf("targets: at most ~%d packs (log2 of %d pushes, plus one), a clone at most 1.10x the fresh one; gotd/C Git push cpu %.2fx\n",
		target, n, div(figs[0].pushCPU.Seconds(), figs[1].pushCPU.Seconds()))
	if figs[0].clone.failures+figs[0].fresh.failures+figs[1].clone.failures+figs[1].fresh.failures > 0 {
		fmt.Printf("failed clones: gotd %d, C Git %d\n", figs[0].clone.failures+figs[0].fresh.failures, figs[1].clone.failures+figs[1].fresh.failures)
	}
}

// pushAndClone pushes commits one by one to s's push-upkeep, waits for
// the server's upkeep to settle, then copies the result into push-fresh
// packed afresh, and measures full clones of both.
func pushAndClone(s *server, repos string, commits []string) pushFigures {
	var f pushFigures
	repo := filepath.Join(repos, "push-upkeep.git")
	client := filepath.Join(filepath.Dir(repos), "client")
	r := run(s, scenario{
		before: func(*server) string { return "" },
		client: func(s *server, _ string) int {
			failed := 0
			for i, c := range commits {
				cmd := exec.Command("git", "push", "-q", s.pushURL("push-upkeep"), c+":refs/heads/main")
				cmd.Dir, cmd.Env = client, gitEnv()
				if out, err := cmd.CombinedOutput(); err != nil {
					failed++
					if failed < 3 {
						fmt.Fprintf(os.Stderr, "%s: push %d: %v\n%s", s.name, i+1, err, out)
					}
				}
			}
			settlePacks(repo)
			return failed
		},
		bytes: func(string) int64 { return 0 },
	})
	if r.failures > 0 {
		fmt.Printf("%s: %d pushes failed\n", s.name, r.failures)
	}
	f.pushCPU, f.pushWall = r.cpu, r.wall
	f.packs = len(packsOf(repo))
	f.loose = looseCount(repo)

	fresh := filepath.Join(repos, "push-fresh.git")
	check(os.RemoveAll(fresh))
	check(exec.Command("cp", "-a", repo, fresh).Run())
	git(fresh, "repack", "-adbq")
	git(fresh, "prune-packed")
	exec.Command("chmod", "-R", "a+rX", fresh).Run()
	if s.user != currentUser() {
		check(exec.Command("chown", "-R", s.user, fresh).Run())
	}
	clone := func(name string) scenario {
		return scenario{
			before: func(*server) string {
				d, err := os.MkdirTemp(filepath.Dir(repos), "clone-")
				check(err)
				return d
			},
			client: func(s *server, d string) int {
				defer os.RemoveAll(d)
				cmd := exec.Command("git", "clone", "-q", "--bare", s.url(name), filepath.Join(d, "c.git"))
				cmd.Env = gitEnv()
				if out, err := cmd.CombinedOutput(); err != nil {
					fmt.Fprintf(os.Stderr, "%s: clone %s: %v\n%s", s.name, name, err, out)
					return 1
				}
				return 0
			},
			bytes: func(string) int64 { return 0 },
		}
	}
	// A clone of this small repository costs some 60 ms of server CPU,
	// and the noise of a server's start and stop (210 to 410 ms here)
	// and of the machine's load would swamp the difference measured:
	// repeated, as other small actions are, and more.
	up, fr := clone("push-upkeep"), clone("push-fresh")
	up.repeat, fr.repeat = pushClones, pushClones
	// The two are measured in turns, so that a change in the machine's
	// load falls on both alike (one after the other, at -runs 1, the
	// same build measured 0.98x and 1.29x), at least three times.
	var ups, frs []result
	for range max(*runs, 3) {
		ups = append(ups, run(s, up))
		frs = append(frs, run(s, fr))
	}
	f.clone, f.fresh = medianOf(ups), medianOf(frs)
	return f
}

// settlePacks waits, up to five minutes, until the pack files of repo have
// not changed for three seconds: gotd's upkeep runs after the push that
// started it has been answered.
func settlePacks(repo string) {
	key := func() string {
		names, _ := filepath.Glob(filepath.Join(repo, "objects", "pack", "*"))
		return strings.Join(names, " ")
	}
	last, since := key(), time.Now()
	for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
		if k := key(); k != last {
			last, since = k, time.Now()
		} else if time.Since(since) >= 3*time.Second {
			return
		}
	}
}

// looseCount counts the loose objects of repo.
func looseCount(repo string) int {
	files, _ := filepath.Glob(filepath.Join(repo, "objects", "[0-9a-f][0-9a-f]", "*"))
	return len(files)
}

// newGitDaemon255 is newGitDaemon with C Git 2.55 first on PATH, so
// that the daemon, its receive-pack and upload-pack and the gc --auto
// they run are 2.55's.
func newGitDaemon255(repos string) *server {
	env := append(gitEnv(), "PATH="+cgit255+":"+os.Getenv("PATH"))
	return newGitDaemonOf("git daemon 2.55", filepath.Join(cgit255, "git"), env, repos)
}
