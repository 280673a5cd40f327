package e2e

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestSSH(t *testing.T) {
	e := setup(t)
	work := t.TempDir()

	t.Run("clone push fetch", func(t *testing.T) {
		e.t = t
		for _, v := range []string{"0", "1", "2"} {
			dir := filepath.Join(work, "rw"+v)
			if v == "0" {
				e.mustGit(work, "clone", "-q", e.url(rwUser, "test"), dir)
				os.WriteFile(filepath.Join(dir, "a"), []byte("hello\n"), 0o644)
				e.mustGit(dir, "add", "a")
			} else {
				e.mustGit(work, "-c", "protocol.version="+v, "clone", "-q", e.url(rwUser, "test.git"), dir)
			}
			e.mustGit(dir, "commit", "-q", "--allow-empty", "-m", "commit over protocol "+v)
			e.mustGit(dir, "-c", "protocol.version="+v, "push", "-q", "origin", "HEAD:main")
			e.mustGit(dir, "-c", "protocol.version="+v, "fetch", "-q", "origin")
		}
		e.fsck("test")
		log := e.mustGit(work, "--git-dir", filepath.Join(e.dir, "test.git"), "-c", "safe.directory=*", "log", "--format=%s", "main")
		if !strings.Contains(log, "commit over protocol 2") || !strings.Contains(log, "commit over protocol 0") {
			t.Errorf("pushed commits missing:\n%s", log)
		}
	})

	t.Run("read only", func(t *testing.T) {
		e.t = t
		dir := filepath.Join(work, "ro")
		e.mustGit(work, "clone", "-q", e.url(roUser, "test"), dir)
		e.mustGit(dir, "commit", "-q", "--allow-empty", "-m", "not allowed")
		out, err := e.git(dir, "push", "origin", "HEAD:main")
		if err == nil || !strings.Contains(out, "permission denied: read-only access") {
			t.Errorf("read-only push: err %v, output:\n%s", err, out)
		}
	})

	// git archive --remote through OpenSSH and gotsh: the tar is git
	// archive's byte for byte; a user no rule names is told there is no
	// such repository, a bad format is refused with C Git's words.
	t.Run("archive", func(t *testing.T) {
		e.t = t
		got, want := filepath.Join(work, "remote.tar"), filepath.Join(work, "local.tar")
		e.mustGit(work, "archive", "--remote="+e.url(roUser, "test"), "--format=tar", "--prefix=p/", "-o", got, "main")
		e.mustGit(work, "--git-dir", filepath.Join(e.dir, "test.git"), "-c", "safe.directory=*", "archive", "--format=tar", "--prefix=p/", "-o", want, "main")
		g, err := os.ReadFile(got)
		if err != nil {
			t.Fatal(err)
		}
		w, err := os.ReadFile(want)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(g, w) || len(w) == 0 {
			t.Errorf("git archive --remote: %d bytes, differing from git archive's %d", len(g), len(w))
		}
		for _, c := range []struct {
			user string
			args []string
			want string
		}{
			{noneUser, []string{"HEAD"}, "no such repository"},
			{roUser, []string{"--format=rar", "HEAD"}, "NACK Unknown archive format"},
		} {
			args := append([]string{"archive", "--remote=" + e.url(c.user, "test"), "-o", filepath.Join(work, "refused.tar")}, c.args...)
			if out, err := e.git(work, args...); err == nil || !strings.Contains(out, c.want) {
				t.Errorf("git %q: err %v, want %q in:\n%s", args, err, c.want, out)
			}
		}
	})

	t.Run("no such repository", func(t *testing.T) {
		e.t = t
		for _, c := range []struct{ user, repo string }{{noneUser, "test"}, {rwUser, "missing"}, {roUser, "prot"}} {
			out, err := e.git(work, "clone", "-q", e.url(c.user, c.repo), filepath.Join(work, "none-"+c.user+c.repo))
			if err == nil || !strings.Contains(out, "no such repository") {
				t.Errorf("%s cloning %s: err %v, output:\n%s", c.user, c.repo, err, out)
			}
		}
	})

	t.Run("anonymous", func(t *testing.T) {
		e.t = t
		e.mustGit(work, "clone", "-q", e.url(anonUser, "test"), filepath.Join(work, "anon"))
	})

	// The record of a request through OpenSSH names the SSH client's
	// address, which gotsh reads from SSH_CONNECTION (issue 20: OpenSSH
	// users were logged with remote="").
	t.Run("audit trail", func(t *testing.T) {
		e.t = t
		e.mustGit(work, "clone", "-q", e.url(anonUser, "test"), filepath.Join(work, "audited"))
		want := []string{" msg=request ", " user=" + anonUser + " ", " transport=gotsh ", " remote=127.0.0.1:", " repo=test ", " outcome=ok "}
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			found := false
			for _, line := range strings.Split(e.logText(), "\n") {
				all := true
				for _, w := range want {
					all = all && strings.Contains(line, w)
				}
				found = found || all
			}
			if found {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no record with %q in the log:\n%s", want, e.logText())
			}
		}
	})

	t.Run("gotsh refuses other commands", func(t *testing.T) {
		e.t = t
		cmd := fmt.Sprintf("ssh -i %s -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR -p %d %s@127.0.0.1 ls /", e.key, e.sshPort, rwUser)
		out, err := runShell(cmd)
		if err == nil || !strings.Contains(out, "only git-upload-pack, git-receive-pack and git-upload-archive are allowed") || strings.Contains(out, "bin") {
			t.Errorf("shell command: err %v, output:\n%s", err, out)
		}
	})

	t.Run("protected references", func(t *testing.T) {
		e.t = t
		dir := filepath.Join(work, "prot")
		e.mustGit(work, "clone", "-q", e.url(rwUser, "prot"), dir)
		e.mustGit(dir, "commit", "-q", "--allow-empty", "-m", "one")
		e.mustGit(dir, "commit", "-q", "--allow-empty", "-m", "two")
		e.mustGit(dir, "tag", "v1", "HEAD~1")
		e.mustGit(dir, "push", "-q", "origin", "HEAD:main", "HEAD:release/1", "v1")
		// Moving main back to its parent needs no objects: an empty pack.
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"push", "-f", "origin", "HEAD~1:main"}, "non-fast-forward"},
			{[]string{"push", "origin", ":release/1"}, "refusing to delete a protected reference"},
			{[]string{"push", "-f", "origin", "HEAD~1:release/1"}, "non-fast-forward"},
			{[]string{"push", "-f", "origin", "HEAD:refs/tags/v1"}, "refusing to change a tag"},
			{[]string{"push", "origin", ":refs/tags/v1"}, "refusing to delete a protected reference"},
			{[]string{"push", "origin", "HEAD:blocked/x"}, "refusing to create this reference: not allowed for you"},
		} {
			out, err := e.git(dir, c.args...)
			if err == nil || !strings.Contains(out, c.want) {
				t.Errorf("git %v: err %v, want %q in:\n%s", c.args, err, c.want, out)
			}
		}
		// Fast-forwards and new tags are fine.
		e.mustGit(dir, "commit", "-q", "--allow-empty", "-m", "three")
		e.mustGit(dir, "tag", "v2")
		e.mustGit(dir, "push", "-q", "origin", "HEAD:main", "v2")
		e.fsck("prot")
	})

	t.Run("concurrent pushes", func(t *testing.T) {
		e.t = t
		const n = 4
		dirs := make([]string, n)
		for i := range dirs {
			dirs[i] = filepath.Join(work, fmt.Sprintf("race%d", i))
			e.mustGit(work, "clone", "-q", e.url(rwUser, "test"), dirs[i])
			os.WriteFile(filepath.Join(dirs[i], "race"), []byte(fmt.Sprintf("client %d\n", i)), 0o644)
			e.mustGit(dirs[i], "add", "race")
			e.mustGit(dirs[i], "commit", "-q", "-m", fmt.Sprintf("race %d", i))
		}
		var wg sync.WaitGroup
		outs := make([]string, n)
		errs := make([]error, n)
		for i := range dirs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				outs[i], errs[i] = e.git(dirs[i], "push", "origin", "HEAD:main")
			}()
		}
		wg.Wait()
		won := 0
		for i := range dirs {
			switch {
			case errs[i] == nil:
				won++
			case !strings.Contains(outs[i], "rejected") && !strings.Contains(outs[i], "failed to update ref"):
				t.Errorf("client %d failed without saying why:\n%s", i, outs[i])
			}
		}
		if won != 1 {
			t.Errorf("%d pushes won, want exactly 1:\n%s", won, strings.Join(outs, "\n---\n"))
		}
		e.fsck("test")
	})

	t.Run("info reload and processes during a clone", func(t *testing.T) {
		e.t = t
		hold := filepath.Join(e.dir, "go-info")
		done := make(chan error, 1)
		var out string
		go func() {
			var err error
			out, err = e.gitWith(work, hold, "clone", "-q", e.url(rwUser, "test"), filepath.Join(work, "held"))
			done <- err
		}()
		// The clone waits after the advertisement: its session runs.
		waitFor(t, "the session process", func() bool {
			return len(processes(t, e.daemon.Process.Pid)["session_read"]) > 0
		})
		info, err := e.gotctl("info")
		if err != nil || !strings.Contains(info, "user "+rwUser) || !strings.Contains(info, `reading from repository "test"`) {
			t.Errorf("gotctl info: %v\n%s", err, info)
		}
		// Every process of the daemon runs as its user, each role apart.
		procs := processes(t, e.daemon.Process.Pid)
		for _, role := range []string{"listen", "notify", "session_read"} {
			if len(procs[role]) == 0 {
				t.Errorf("no %s process: %v", role, procs)
			}
			for _, p := range procs[role] {
				if p.uid != e.daemonUI {
					t.Errorf("%s runs as uid %d, want %d", role, p.uid, e.daemonUI)
				}
			}
		}
		// A new rule applies to new clients, and the held clone goes on.
		if out, err := e.git(work, "clone", "-q", e.url(noneUser, "other"), filepath.Join(work, "before")); err == nil {
			t.Errorf("clone allowed before the reload:\n%s", out)
		}
		e.writeConf("permit ro " + noneUser)
		if out, err := e.gotctl("reload"); err != nil {
			t.Fatalf("gotctl reload: %v\n%s", err, out)
		}
		e.mustGit(work, "clone", "-q", e.url(noneUser, "other"), filepath.Join(work, "after"))
		os.WriteFile(hold, nil, 0o644)
		if err := <-done; err != nil {
			t.Errorf("the held clone failed after the reload: %v\n%s", err, out)
		}
	})

	t.Run("killed child", func(t *testing.T) {
		e.t = t
		// A pack larger than what the pipes and sshd's channel window
		// hold, so that session_read is still writing it when the client
		// stops reading.
		big := filepath.Join(work, "big")
		e.mustGit(work, "clone", "-q", e.url(rwUser, "test"), big)
		noise := make([]byte, 8<<20)
		rand.Read(noise)
		os.WriteFile(filepath.Join(big, "noise"), noise, 0o644)
		e.mustGit(big, "add", "noise")
		e.mustGit(big, "commit", "-q", "-m", "incompressible")
		e.mustGit(big, "push", "-q", "origin", "HEAD:main")

		hold := filepath.Join(e.dir, "go-kill")
		done := make(chan error, 1)
		var out string
		go func() {
			var err error
			out, err = e.gitHeldAtPack(work, hold, "clone", "-q", e.url(rwUser, "test"), filepath.Join(work, "killed"))
			done <- err
		}()
		var pid int
		waitFor(t, "session_read", func() bool {
			if p := processes(t, e.daemon.Process.Pid)["session_read"]; len(p) > 0 {
				pid = p[0].pid
				if p[0].uid != e.daemonUI {
					t.Errorf("session_read runs as uid %d, want %d", p[0].uid, e.daemonUI)
				}
			}
			return pid != 0
		})
		if p, err := os.FindProcess(pid); err == nil {
			p.Kill()
		}
		os.WriteFile(hold, nil, 0o644)
		if err := <-done; err == nil {
			t.Errorf("the clone whose session_read was killed succeeded:\n%s", out)
		}
		// The client's processes are gone, the daemon serves others,
		// and nothing is left in the repository.
		waitFor(t, "the killed client's processes to go", func() bool {
			p := processes(t, e.daemon.Process.Pid)
			return len(p["session_read"]) == 0
		})
		e.mustGit(work, "clone", "-q", e.url(rwUser, "test"), filepath.Join(work, "after-kill"))
		if info, _ := e.gotctl("info"); !strings.Contains(info, "number of connected clients: 0") {
			t.Errorf("clients left after the kill:\n%s", info)
		}
		left, _ := filepath.Glob(filepath.Join(e.dir, "*.git", "objects", "incoming-*"))
		if len(left) > 0 {
			t.Errorf("files left behind: %v", left)
		}
	})

	t.Run("stop", func(t *testing.T) {
		e.t = t
		if out, err := e.gotctl("stop"); err != nil {
			t.Fatalf("gotctl stop: %v\n%s", err, out)
		}
		waitFor(t, "gotd to exit", func() bool { return e.daemon.ProcessState != nil || exitedPID(e.daemon.Process.Pid) })
	})
}

// exitedPID reports whether pid is gone or a zombie.
func exitedPID(pid int) bool {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	return err != nil || strings.Contains(string(status), "State:\tZ")
}
