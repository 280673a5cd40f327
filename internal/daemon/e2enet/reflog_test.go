package e2enet

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestReflog: pushes through the front-ends land in the server's
// reflogs with the pusher and how the reference moved; a branch deleted
// by a push is listed and restored with gotadmin, fetched by a client
// and pushed to again.
func TestReflog(t *testing.T) {
	s := start(t, options{})
	src := filepath.Join(s.dir, "test.git")
	sshEnv := []string{"GIT_SSH_COMMAND=" + s.sshCommand(s.writerKey)}
	sshURL := s.sshURL(rwAccount, "test")
	httpURL := s.httpURL(rwAccount+":"+strings.ReplaceAll(password, " ", "%20"), "test")
	work := s.clientDir("work")
	s.mustGit(work, nil, "clone", "-q", s.gitURL("test"), "w")
	w := filepath.Join(work, "w")
	commit := func(name string) string {
		t.Helper()
		os.WriteFile(filepath.Join(w, name), []byte(name+"\n"), 0o644)
		s.mustGit(w, nil, "add", ".")
		s.mustGit(w, nil, "commit", "-q", "-m", name)
		return strings.TrimSpace(s.mustGit(w, nil, "rev-parse", "HEAD"))
	}
	serverLog := func(ref string) string {
		t.Helper()
		return run(t, "git", "--git-dir", src, "reflog", "show", "--format=%H %gn %gs", ref)
	}

	// A fast-forward over SSH, then a forced update over HTTP.
	first := commit("one")
	s.mustGit(w, sshEnv, "push", "-q", sshURL, "HEAD:main")
	s.mustGit(w, nil, "reset", "-q", "--hard", "HEAD~1")
	forced := commit("two")
	s.mustGit(w, nil, "push", "-q", "--force", httpURL, "HEAD:main")
	want := forced + " " + rwAccount + " push via http: forced-update\n" +
		first + " " + rwAccount + " push via ssh: fast-forward\n"
	if got := serverLog("main"); got != want {
		t.Errorf("server reflog of main:\n%s\nwant\n%s", got, want)
	}
	if got := serverLog("HEAD"); got != want {
		t.Errorf("server reflog of HEAD:\n%s\nwant\n%s", got, want)
	}

	// A branch created over SSH and deleted over HTTP.
	topic := commit("three")
	s.mustGit(w, sshEnv, "push", "-q", sshURL, "HEAD:refs/heads/topic")
	s.mustGit(w, nil, "push", "-q", httpURL, ":refs/heads/topic")
	s.mustGit(w, nil, "reset", "-q", "--hard", "HEAD~1")
	if out, err := exec.Command("git", "--git-dir", src, "rev-parse", "-q", "--verify", "refs/heads/topic").CombinedOutput(); err == nil {
		t.Fatalf("topic not deleted: %s", out)
	}
	gotadmin := filepath.Join(s.bin, "gotadmin")
	out := run(t, gotadmin, "ref", "-l", "-r", src, "topic")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "@{0} - "+topic+" ") || !strings.HasSuffix(lines[0], rwAccount+": push via http: deleted") ||
		!strings.HasPrefix(lines[1], "@{1} "+topic+" - ") || !strings.HasSuffix(lines[1], rwAccount+": push via ssh: created") {
		t.Fatalf("gotadmin ref -l topic:\n%s", out)
	}
	run(t, gotadmin, "ref", "-r", src, "-c", "@{0}", "refs/heads/topic")
	fsck(t, src)

	// A client fetches the restored branch, and pushes to it again.
	s.mustGit(w, nil, "fetch", "-q", s.gitURL("test"), "refs/heads/topic:refs/remotes/back/topic")
	if got := strings.TrimSpace(s.mustGit(w, nil, "rev-parse", "refs/remotes/back/topic")); got != topic {
		t.Errorf("fetched topic %s; want %s", got, topic)
	}
	fsck(t, w)
	s.mustGit(w, nil, "checkout", "-q", "-b", "topic", "refs/remotes/back/topic")
	next := commit("four")
	s.mustGit(w, sshEnv, "push", "-q", sshURL, "topic")
	want = next + " " + rwAccount + " push via ssh: fast-forward\n" +
		topic + " " + currentUser(t) + " gotadmin ref: restored @{0} (the deleted value)\n" +
		topic + " " + rwAccount + " push via ssh: created\n"
	if got := serverLog("topic"); got != want {
		t.Errorf("server reflog of topic:\n%s\nwant\n%s", got, want)
	}
	fsck(t, src)
}
