package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// The server-side rebase scenario (gotd alone: C Git has no such
// thing; gotd serves the repository "rebase" with every branch
// rebased). A push of one commit onto the main branch, made by a client that is
// rebaseBehind commits behind, is rebased by gotd; the same change
// pushed onto the current main is a fast-forward. Both are sent as one
// smart-HTTP request with the same kind of pack, so that the two differ
// only by the server's work: the rebase's ancestry walk, tree merges,
// new commit and second pack.

// rebaseBehind is how far behind the rebased push's client is.
const rebaseBehind = 10

// rebasePush is one crafted push: its command and pack.
type rebasePush struct {
	old, new string
	pack     []byte
}

// rebasePushes makes, in a scratch repository with fetch.git's objects,
// a commit adding a file on top of tips[0] (stale: main will be
// rebaseBehind commits further) and the same change on top of
// tips[rebaseBehind] (a fast-forward), and the packs that carry them.
func rebasePushes(r *repos, work string) (stale, ff rebasePush) {
	scratch := filepath.Join(work, "rebase-client.git")
	check(os.RemoveAll(scratch))
	git("", "clone", "-q", "--bare", r.path("fetch"), scratch)
	blob := strings.TrimSpace(gitIn(scratch, nil, "hash-object", "-w", "--stdin").stdin([]byte("pushed while behind\n")))
	index := filepath.Join(work, "rebase-index")
	build := func(base string) rebasePush {
		env := []string{"GIT_INDEX_FILE=" + index}
		os.Remove(index)
		gitIn(scratch, env, "read-tree", base).run()
		gitIn(scratch, env, "update-index", "--add", "--cacheinfo", "100644,"+blob+",bench/rebased.txt").run()
		tree := strings.TrimSpace(gitIn(scratch, env, "write-tree").run())
		commit := strings.TrimSpace(gitIn(scratch, []string{"GIT_AUTHOR_NAME=Bench", "GIT_AUTHOR_EMAIL=bench@example.com",
			"GIT_COMMITTER_NAME=Bench", "GIT_COMMITTER_EMAIL=bench@example.com"}, "commit-tree", tree, "-p", base, "-m", "pushed while behind").run())
		cmd := exec.Command("git", "pack-objects", "--stdout", "--revs", "-q")
		cmd.Dir = scratch
		cmd.Env = gitEnv()
		cmd.Stdin = strings.NewReader(commit + "\n^" + base + "\n")
		pack, err := cmd.Output()
		check(err)
		return rebasePush{old: base, new: commit, pack: pack}
	}
	return build(r.tips[0]), build(r.tips[rebaseBehind])
}

// send pushes p to branch of the repository at url (smart HTTP, with
// the credentials url holds) and fails the benchmark unless the update
// is accepted.
func (p rebasePush) send(url, branch string) {
	line := fmt.Sprintf("%s %s %s\x00report-status-v2 agent=gotd-bench\n", p.old, p.new, branch)
	var body bytes.Buffer
	fmt.Fprintf(&body, "%04x%s0000", len(line)+4, line)
	body.Write(p.pack)
	req, err := http.NewRequest(http.MethodPost, url+"/git-receive-pack", &body)
	check(err)
	req.Header.Set("Content-Type", "application/x-git-receive-pack-request")
	resp, err := http.DefaultClient.Do(req)
	check(err)
	out, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	check(err)
	if resp.StatusCode != http.StatusOK || !bytes.Contains(out, []byte("ok "+branch)) {
		fatalf("rebase push: HTTP %d: %q", resp.StatusCode, out)
	}
}

// rebaseScenarios are the two pushes as scenarios of gotd: each run
// starts from a fresh copy of fetch.git with main at tips[rebaseBehind].
func rebaseScenarios(r *repos, work string) []scenario {
	stale, ff := rebasePushes(r, work)
	push := func(name string, p rebasePush) scenario {
		var before map[string]int64
		return repeated(scenario{name: name,
			before: func(s *server) string {
				dir := r.fresh("rebase", "fetch", s.user)
				git(dir, "update-ref", r.branch, r.tips[rebaseBehind])
				before = packsOf(dir)
				return dir
			},
			client: func(s *server, dir string) int {
				p.send(s.pushURL("rebase"), r.branch)
				return 0
			},
			bytes: func(dir string) int64 { return newBytes(dir, before) },
		})
	}
	return []scenario{
		push("push of 1 commit, fast-forward", ff),
		push(fmt.Sprintf("push of 1 commit, rebased %d behind", rebaseBehind), stale),
	}
}

// printRebase runs the rebase scenarios against gotd and prints their
// figures and the rebased push's CPU against the fast-forward's.
func printRebase(gotd *server, r *repos, work string) {
	fmt.Println()
	var res []result
	for _, sc := range rebaseScenarios(r, work) {
		x := median(gotd, sc, *runs)
		res = append(res, x)
		fmt.Printf("%-38s %-6s %9v %9v %8.1fMB %12d\n", sc.name, gotd.name, x.wall.Round(1e6), x.cpu.Round(1e6), float64(x.rss)/1024, x.bytes)
		if x.failures > 0 {
			fmt.Printf("%-38s %d failed\n", "", x.failures)
		}
	}
	fmt.Printf("%-38s %-6s %9s %8.2fx (target: at most 2x)\n", "rebased push / fast-forward push", gotd.name, "cpu", div(res[1].cpu.Seconds(), res[0].cpu.Seconds()))
}
