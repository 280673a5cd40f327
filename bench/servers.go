package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// server is a Git server the benchmark starts and stops for each run.
type server struct {
	name  string
	start func() *exec.Cmd
	stop  func(*exec.Cmd)
	// url is where repository repo is fetched from; pushURL where it
	// is pushed to; sshURL, if not empty, fetches over SSH (sshEnv is
	// the client's environment for it).
	url, pushURL, sshURL func(repo string) string
	sshEnv               []string
	// user owns repositories pushed to.
	user string
	// web is the base URL of the server's web pages, if it has them.
	web  string
	idle time.Duration // CPU of starting and stopping with no client
}

// benchToken is the HTTP token gotd's push account uses.
const benchToken = "gotd-bench-token"

// newGotd is gotd serving the repositories over git://, pushes over
// smart HTTP with a token, and over SSH with a generated key when
// ssh-keygen is there.
func newGotd(work, bin, repos string, names []string) *server {
	gitPort, httpPort, sshPort := freePort(), freePort(), freePort()
	// gotd refuses to run its roles as root.
	user := currentUser()
	if os.Geteuid() == 0 {
		user = "nobody"
	}
	conf := filepath.Join(work, "gotd.conf")
	sock := filepath.Join(work, "gotd.sock")
	secrets := filepath.Join(work, "gotd-secrets.conf")
	sum := sha256.Sum256([]byte(benchToken))
	check(os.WriteFile(secrets, []byte("token bench sha256:"+hex.EncodeToString(sum[:])+"\n"), 0o600))

	var b strings.Builder
	fmt.Fprintf(&b, "listen on %q\nuser %s\nlisten git on 127.0.0.1 port %d\nlisten http on 127.0.0.1 port %d\n", sock, user, gitPort, httpPort)
	fmt.Fprintf(&b, "connection {\n\tlimit user anonymous 1024\n\tlimit user bench 1024\n}\n")
	s := &server{name: "gotd", user: user}
	key := filepath.Join(work, "bench-key")
	if _, err := exec.LookPath("ssh"); err == nil && exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).Run() == nil {
		pub, err := os.ReadFile(key + ".pub")
		check(err)
		fmt.Fprintf(&b, "listen ssh on 127.0.0.1 port %d\nssh hostkey %q\naccount bench {\n\tkey %q\n}\n",
			sshPort, filepath.Join(work, "ssh_host_key"), strings.TrimSpace(string(pub)))
		s.sshURL = func(repo string) string { return fmt.Sprintf("ssh://bench@127.0.0.1:%d/%s", sshPort, repo) }
		s.sshEnv = []string{"GIT_SSH_COMMAND=ssh -i " + key + " -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR"}
	} else {
		fmt.Fprintf(&b, "account bench {\n}\n")
	}
	for _, name := range names {
		policy := ""
		if name == "rebase" {
			policy = "\tpush {\n\t\trebase namespace \"refs/heads/\"\n\t}\n"
		}
		path := filepath.Join(repos, name+".git")
		access := "ro"
		if pushed(name) {
			access = "rw"
			// gotd -n wants what a rule lets users push to to
			// exist and be writable; each run makes it afresh.
			if _, err := os.Stat(path); err != nil {
				git("", "init", "-q", "--bare", "-b", "main", path)
				if os.Geteuid() == 0 {
					check(exec.Command("chown", "-R", user, path).Run())
				}
			}
		}
		// Upkeep off: a run after a scenario's push would be counted
		// into the next scenario's CPU, and it races the removal of
		// the pushed-to copy; but the pushes scenario measures it.
		upkeep := "\tupkeep off\n"
		if name == "push-upkeep" {
			upkeep = ""
		}
		fmt.Fprintf(&b, "repository %q {\n\tpath %q\n\tpermit ro anonymous\n\tpermit %s bench\n%s%s}\n", name, path, access, upkeep, policy)
	}
	check(os.WriteFile(conf, []byte(b.String()), 0o644))
	if out, err := exec.Command(filepath.Join(bin, "gotd"), "-n", "-f", conf, "-s", secrets).CombinedOutput(); err != nil {
		fatalf("gotd -n: %v\n%s", err, out)
	}
	s.start = func() *exec.Cmd {
		cmd := exec.Command(filepath.Join(bin, "gotd"), "-d", "-f", conf, "-s", secrets)
		startServer(cmd)
		waitPort(gitPort)
		waitPort(httpPort)
		return cmd
	}
	s.stop = func(cmd *exec.Cmd) {
		exec.Command(filepath.Join(bin, "gotctl"), "-f", sock, "stop").Run()
		cmd.Wait()
		stopServer(cmd)
	}
	s.url = func(repo string) string { return fmt.Sprintf("git://127.0.0.1:%d/%s", gitPort, repo) }
	s.web = fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	s.pushURL = func(repo string) string {
		return fmt.Sprintf("http://bench:%s@127.0.0.1:%d/%s", benchToken, httpPort, repo)
	}
	return s
}

// newGitDaemon is C Git's git daemon serving the same repositories,
// pushes included (receive-pack enabled; the repositories pushed to
// have receive.fsckObjects set).
func newGitDaemon(repos string) *server {
	return newGitDaemonOf("git daemon", "git", gitEnv(), repos)
}

// newGitDaemonOf is newGitDaemon named name, run by the git binary
// with environment env.
func newGitDaemonOf(name, git string, env []string, repos string) *server {
	port := freePort()
	s := &server{name: name, user: currentUser()}
	s.start = func() *exec.Cmd {
		cmd := exec.Command(git, "daemon", "--export-all", "--reuseaddr", "--enable=receive-pack", "--base-path="+repos,
			"--listen=127.0.0.1", fmt.Sprintf("--port=%d", port), "--max-connections=1024", repos)
		cmd.Env = env
		startServer(cmd)
		waitPort(port)
		return cmd
	}
	s.stop = func(cmd *exec.Cmd) {
		time.Sleep(100 * time.Millisecond) // let it reap the finished upload-pack
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		stopServer(cmd)
	}
	s.url = func(repo string) string { return fmt.Sprintf("git://127.0.0.1:%d/%s", port, repo) }
	s.pushURL = s.url
	return s
}

// pushed reports whether the benchmark pushes to repository name.
func pushed(name string) bool { return strings.HasPrefix(name, "push-") || name == "rebase" }

func currentUser() string {
	out, _ := exec.Command("id", "-un").Output()
	return strings.TrimSpace(string(out))
}
