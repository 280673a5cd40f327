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
