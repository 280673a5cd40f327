package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The "repack" scenario times a full repack with a reachability bitmap,
// gotadmin pack -a against git repack -adb, each on a copy of the
// repository in the state it leaves it (one pack and its bitmap, written
// by the same tool, untimed) plus one commit pushed since (loose
// objects): the repack a server runs again and again. Each run starts
// from a fresh copy whose pack files are hard links (both tools write
// new files and only remove old ones). Figures are the repacking
// process's own: wall time, CPU (user+system) and peak RSS.

// printRepack runs the repack scenario on src.
func printRepack(work, src string) {
	gotadmin := buildGotadmin(work)
	dir := filepath.Join(work, "repack")
	check(os.MkdirAll(dir, 0o755))
	defer os.RemoveAll(dir)

	gitRepack := func(repo string) toolRun { return runTool(repo, "", "", "git", "repack", "-adbq") }
	gotRepack := func(repo string) toolRun { return runTool("", "", "", gotadmin, "pack", "-a", "-q", "-r", repo) }
	// Each tool's steady state: src packed once by the tool itself.
	base := map[string]string{}
	for name, repack := range map[string]func(string) toolRun{"git": gitRepack, "gotadmin": gotRepack} {
		b := filepath.Join(dir, name+".base")
		git("", "clone", "-q", "--bare", "--no-local", src, b)
		repack(b)
		base[name] = b
	}
	// measure repacks a fresh copy of the tool's base with one more
	// commit on HEAD, made from HEAD's tree with a new file.
	measure := func(name string, repack func(string) toolRun) toolRun {
		return medianRun(*runs, func() toolRun {
			repo := filepath.Join(dir, name)
			check(os.RemoveAll(repo))
			linkCopy(base[name], repo)
			blob := strings.TrimSpace(gitIn(repo, nil, "hash-object", "-w", "--stdin").stdin([]byte(time.Now().String())))
			gitIn(repo, []string{"GIT_INDEX_FILE=" + filepath.Join(repo, "bench-index")}, "read-tree", "HEAD").run()
			gitIn(repo, []string{"GIT_INDEX_FILE=" + filepath.Join(repo, "bench-index")}, "update-index", "--add", "--cacheinfo", "100644,"+blob+",bench/repack.txt").run()
			tree := strings.TrimSpace(gitIn(repo, []string{"GIT_INDEX_FILE=" + filepath.Join(repo, "bench-index")}, "write-tree").run())
			os.Remove(filepath.Join(repo, "bench-index"))
			head := strings.TrimSpace(git(repo, "rev-parse", "HEAD"))
			commit := strings.TrimSpace(git(repo, "commit-tree", "-p", head, "-m", "bench: one more commit", tree))
			git(repo, "update-ref", "HEAD", commit)
			r := repack(repo)
			// Both must leave one pack with a bitmap that C Git accepts.
			if out := git(repo, "rev-list", "--test-bitmap", "HEAD"); !strings.Contains(out, "OK!") {
				fatalf("repack: %s's bitmap fails git rev-list --test-bitmap:\n%s", name, out)
			}
			return r
		})
	}
	c := measure("git", gitRepack)
	g := measure("gotadmin", gotRepack)
	fmt.Println()
	fmt.Printf("%-26s %-10s %9s %9s %10s %22s\n", "scenario", "tool", "wall", "cpu", "peak mem", "gotd/C Git cpu rss wall")
	fmt.Printf("%-26s %-10s %9s %9s %8.1fMB\n", "repack -a with bitmap", "git", c.wall.Round(time.Millisecond), c.cpu.Round(time.Millisecond), float64(c.rss)/1024)
	fmt.Printf("%-26s %-10s %9s %9s %8.1fMB %6.2fx %5.2fx %5.2fx\n", "repack -a with bitmap", "gotadmin", g.wall.Round(time.Millisecond), g.cpu.Round(time.Millisecond), float64(g.rss)/1024,
		div(g.cpu.Seconds(), c.cpu.Seconds()), div(float64(g.rss), float64(c.rss)), div(g.wall.Seconds(), c.wall.Seconds()))
}

// buildGotadmin builds gotadmin into work and returns its path.
func buildGotadmin(work string) string {
	return filepath.Join(build(filepath.Join(work, "bin-repack"), "gotadmin"), "gotadmin")
}

// build builds the commands named (of cmd/) into dir as make does,
// without cgo, and returns dir.
func build(dir string, cmds ...string) string {
	args := []string{"build", "-o", dir + "/"}
	for _, c := range cmds {
		args = append(args, "./cmd/"+c)
	}
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		fatalf("build %v: %v\n%s", cmds, err, out)
	}
	return dir
}

// linkCopy copies the bare repository src to dst, its pack files as
// hard links.
func linkCopy(src, dst string) {
	check(filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		if strings.Contains(path, string(filepath.Separator)+"pack"+string(filepath.Separator)) {
			return os.Link(path, to)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(to, data, 0o644)
	}))
}
