package e2enet

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDaemonStart starts gotd in daemon mode, as the README has it (no
// -d): it returns once it serves, and a client is served at once; it
// exits non-zero with the reason on its standard error when a port is
// taken, the user does not exist or a TLS file is missing, and leaves
// no process behind (issue 20: it exited 0 and printed nothing).
func TestDaemonStart(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	bin := buildBinaries(t)
	dir, err := os.MkdirTemp("", "gotd-e2enet-start-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	repo := filepath.Join(dir, "r.git")
	run(t, "git", "init", "-q", "--bare", "-b", "main", repo)
	user := currentUser(t)
	if os.Geteuid() == 0 {
		user = rootDaemon
		run(t, "chown", "-R", rootDaemon, repo)
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	takenPort := taken.Addr().(*net.TCPAddr).Port

	for i, c := range []struct {
		name, user, listen string
		rootOnly           bool
		want               string // on standard error; "" when it starts
	}{
		{name: "starts", user: user, listen: "listen git on 127.0.0.1 port %d"},
		{name: "port taken", user: user, listen: fmt.Sprintf("listen git on 127.0.0.1 port %d", takenPort),
			want: fmt.Sprintf("gotd: listen tcp 127.0.0.1:%d: bind: address already in use", takenPort)},
		{name: "no such user", user: "nosuchuser-gotd", listen: "listen git on 127.0.0.1 port %d", rootOnly: true,
			want: `gotd: user "nosuchuser-gotd" does not exist`},
		{name: "TLS file missing", user: user,
			listen: "listen git on 127.0.0.1 port %d\nlisten http on 127.0.0.1 port 1 tls certificate \"" + dir + "/none.pem\" key \"" + dir + "/none.key\"",
			want:   "gotd: open " + dir + "/none.pem: no such file or directory"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.rootOnly && os.Geteuid() != 0 {
				t.Skip("the user is used only when gotd runs as root")
			}
			port := freePort(t)
			listen := c.listen
			if strings.Contains(listen, "%d") {
				listen = fmt.Sprintf(listen, port)
			}
			socket := filepath.Join(dir, fmt.Sprintf("gotd%d.sock", i))
			conf := filepath.Join(dir, "gotd.conf")
			write(t, conf, fmt.Sprintf("listen on %q\nuser %s\n%s\nrepository \"r\" {\n\tpath %q\n\tpermit ro anonymous\n}\n",
				socket, c.user, listen, repo), 0o644)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, filepath.Join(bin, "gotd"), "-f", conf)
			var stderr lockedBuffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			defer exec.Command(filepath.Join(bin, "gotctl"), "-f", socket, "stop").Run()
			if c.want == "" {
				if err != nil {
					t.Fatalf("gotd: %v\n%s", err, stderr.String())
				}
				// Served at once: the daemon returned once it serves.
				if out, err := exec.Command("git", "ls-remote", fmt.Sprintf("git://127.0.0.1:%d/r", port)).CombinedOutput(); err != nil {
					t.Errorf("git ls-remote right after gotd returned: %v\n%s", err, out)
				}
				return
			}
			if err == nil {
				t.Fatalf("gotd exited 0; want a failure: %s\n%s", c.want, stderr.String())
			}
			if got := stderr.String(); !strings.Contains(got, c.want) {
				t.Errorf("got standard error:\n%s\nwant: %s", got, c.want)
			}
			// Nothing left: the socket is not served.
			if conn, err := net.Dial("unixpacket", socket); err == nil {
				conn.Close()
				t.Errorf("a daemon serves %s after a failed start", socket)
			}
		})
	}
}

// TestMakeRun runs make run's script as root from a copy of the
// checkout in a directory only root may enter, as on a fresh machine
// where the checkout is under /root (issue 20: the daemon's user could
// not reach the binary and the parent failed to build its sandbox): a
// clone over git:// and one over SSH with the demo's key succeed, and
// a push over HTTP with the demo's token.
func TestMakeRun(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: make run is run as root from a directory nobody cannot enter")
	}
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Skip("ssh-keygen is not installed")
	}
	bin := buildBinaries(t)
	top, err := os.MkdirTemp("", "gotd-e2enet-makerun-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(top)
	os.Chmod(top, 0o755)
	// The checkout: bin/ and scripts/demo.sh, in a 0700 directory.
	checkout := filepath.Join(top, "root", "gotd")
	os.MkdirAll(filepath.Dir(checkout), 0o700)
	os.Chmod(filepath.Dir(checkout), 0o700)
	privateCopy(t, top, bin)
	if err := os.MkdirAll(filepath.Join(checkout, "scripts"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(top, "private-bin"), filepath.Join(checkout, "bin")); err != nil {
		t.Fatal(err)
	}
	demo, err := os.ReadFile("../../../scripts/demo.sh")
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(checkout, "scripts", "demo.sh"), string(demo), 0o755)
	home := filepath.Join(top, "home") // no ~/.ssh keys: the demo makes one
	os.Mkdir(home, 0o755)
	data := filepath.Join(top, "data")
	ports := freePorts(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "scripts/demo.sh")
	cmd.Dir = checkout
	cmd.Env = append(safeEnv(t), "HOME="+home, "GOTD_DEMO_DIR="+data,
		fmt.Sprintf("SSH_PORT=%d", ports[0]), fmt.Sprintf("GIT_PORT=%d", ports[1]), fmt.Sprintf("HTTP_PORT=%d", ports[2]))
	var log lockedBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		if t.Failed() {
			t.Logf("make run:\n%s", log.String())
		}
	}()
	for _, p := range ports {
		waitPort(t, p, &log)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(log.String(), "gotd started") {
		if time.Now().After(deadline) {
			t.Fatalf("gotd did not start:\n%s", log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	clients := filepath.Join(top, "clients")
	os.Mkdir(clients, 0o755)
	git := func(dir string, env []string, args ...string) {
		t.Helper()
		c := exec.CommandContext(ctx, "git", args...)
		c.Dir = dir
		c.Env = append(safeEnv(t), env...)
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git(clients, nil, "clone", "-q", fmt.Sprintf("git://127.0.0.1:%d/demo", ports[1]), "git")
	sshEnv := []string{fmt.Sprintf("GIT_SSH_COMMAND=ssh -o UserKnownHostsFile=%s/known_hosts -o StrictHostKeyChecking=accept-new -i %s/demo_key -o IdentitiesOnly=yes -o BatchMode=yes", data, data)}
	git(clients, sshEnv, "clone", "-q", fmt.Sprintf("ssh://demo@127.0.0.1:%d/demo", ports[0]), "ssh")
	token, err := os.ReadFile(filepath.Join(data, "token"))
	if err != nil {
		t.Fatal(err)
	}
	w := filepath.Join(clients, "ssh")
	git(w, nil, "-c", "user.name=t", "-c", "user.email=t@localhost", "commit", "-q", "--allow-empty", "-m", "pushed by the test")
	git(w, nil, "push", "-q", fmt.Sprintf("http://demo:%s@127.0.0.1:%d/demo", strings.TrimSpace(string(token)), ports[2]), "HEAD:main")
	fsck(t, filepath.Join(data, "demo.git"))
}
