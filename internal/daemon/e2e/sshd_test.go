// Package e2e runs gotd end to end as people deploy it: a real OpenSSH
// sshd on a loopback port, system accounts whose login shell is gotsh,
// gotd started as root and dropping to its configured user, and the
// real git client cloning, fetching and pushing through it all. It
// needs root (accounts, sshd); without it, or without sshd, the tests
// skip, unless GOTD_REQUIRE_E2E=1 makes them fail.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gotd/internal/gittest"
)

// Accounts the tests create, and remove when done.
const (
	daemonUser = "gotd-e2e-d"
	rwUser     = "gotd-e2e-rw"
	roUser     = "gotd-e2e-ro"
	noneUser   = "gotd-e2e-no"
	anonUser   = "anonymous"
)

type env struct {
	t        *testing.T
	dir      string
	bin      string
	conf     string
	socket   string
	sshPort  int
	key      string
	daemon   *exec.Cmd
	daemonUI int // uid of daemonUser
	log      *bytes.Buffer
}

func skipOrFail(t *testing.T, why string) {
	if os.Getenv("GOTD_REQUIRE_E2E") != "" {
		t.Fatal(why)
	}
	t.Skip(why)
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// setup builds the programs, creates the accounts, and starts gotd and
// sshd.
func setup(t *testing.T) *env {
	if os.Geteuid() != 0 {
		skipOrFail(t, "needs root: creates accounts and runs sshd")
	}
	sshd, err := exec.LookPath("sshd")
	if err != nil {
		sshd = "/usr/sbin/sshd"
		if _, err := os.Stat(sshd); err != nil {
			skipOrFail(t, "sshd is not installed")
		}
	}
	dir, err := os.MkdirTemp("", "gotd-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755) // the accounts must reach gotsh, the daemon its repositories
	e := &env{t: t, dir: dir, bin: filepath.Join(dir, "bin"), socket: filepath.Join(dir, "gotd.sock"), log: &bytes.Buffer{}}

	build := exec.Command("go", "build", "-o", e.bin+"/", "gotd/cmd/gotd", "gotd/cmd/gotsh", "gotd/cmd/gotctl")
	build.Env = append(os.Environ(), "CGO_ENABLED=0") // as the Makefile builds them
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	os.Chmod(e.bin, 0o755)

	for _, u := range []string{daemonUser, rwUser, roUser, noneUser, anonUser} {
		if exec.Command("id", u).Run() == nil {
			if u == anonUser {
				continue // an existing account of that name serves as well
			}
			exec.Command("userdel", u).Run()
		}
		shell := filepath.Join(e.bin, "gotsh")
		if u == daemonUser {
			shell = "/usr/sbin/nologin"
		}
		run(t, "useradd", "-M", "-d", dir, "-s", shell, u)
		// "*": no password, but not locked, so sshd allows keys.
		run(t, "usermod", "-p", "*", u)
		u := u
		t.Cleanup(func() { exec.Command("userdel", u).Run() })
	}
	uid, _ := strconv.Atoi(strings.TrimSpace(run(t, "id", "-u", daemonUser)))
	e.daemonUI = uid

	// Keys: one client key every account accepts.
	e.key = filepath.Join(dir, "key")
	run(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", e.key)
	run(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, "hostkey"))
	pub, _ := os.ReadFile(e.key + ".pub")
	os.Mkdir(filepath.Join(dir, "keys"), 0o755)
	for _, u := range []string{rwUser, roUser, noneUser, anonUser} {
		os.WriteFile(filepath.Join(dir, "keys", u), pub, 0o644)
	}

	e.sshPort = freePort(t)
	sshdConf := filepath.Join(dir, "sshd_config")
	os.WriteFile(sshdConf, []byte(fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s/hostkey
PidFile %s/sshd.pid
AuthorizedKeysFile %s/keys/%%u
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitTTY no
DisableForwarding yes
AcceptEnv GIT_PROTOCOL
SetEnv GOTD_UNIX_SOCKET=%s
LogLevel ERROR
`, e.sshPort, dir, dir, dir, e.socket)), 0o644)
	os.MkdirAll("/run/sshd", 0o755)
	sshdCmd := exec.Command(sshd, "-D", "-e", "-f", sshdConf)
	sshdCmd.Stderr = &lockedBuffer{b: e.log}
	if err := sshdCmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sshdCmd.Process.Kill(); sshdCmd.Wait() })

	for _, name := range []string{"test", "prot", "other"} {
		p := filepath.Join(dir, name+".git")
		run(t, "git", "init", "-q", "--bare", "-b", "main", p)
	}
	e.conf = filepath.Join(dir, "gotd.conf")
	e.writeConf("")
	e.startDaemon()
	waitPort(t, e.sshPort)
	return e
}

// rwGroup is the name of rwUser's primary group.
func rwGroup(t *testing.T) string {
	return strings.TrimSpace(run(t, "id", "-gn", rwUser))
}

// writeConf writes gotd.conf, with extra rules for "other".
func (e *env) writeConf(otherRules string) {
	conf := fmt.Sprintf(`# written by the end-to-end test
dir = "%s"
listen on "%s"
user %s
connection {
	request timeout 1h
	limit user %s 16
}
repository "test" {
	path "%s/test.git"
	permit rw %s
	permit ro %s
	permit ro anonymous
}
repository "prot" {
	path "%s/prot.git"
	permit rw %s
	protect {
		branch "main"
		branch namespace "refs/heads/release/"
		tag namespace "refs/tags/"
	}
	# The user's own group (useradd's), as auth finds it.
	push deny create namespace "refs/heads/blocked/" :%s
}
repository "other" {
	path "%s/other.git"
	permit rw %s
	%s
}
`, e.dir, e.socket, daemonUser, rwUser, e.dir, rwUser, roUser, e.dir, rwUser, rwGroup(e.t), e.dir, rwUser, otherRules)
	if err := os.WriteFile(e.conf, []byte(conf), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) startDaemon() {
	t := e.t
	// The repositories belong to the daemon's user.
	run(t, "chown", "-R", daemonUser, filepath.Join(e.dir, "test.git"), filepath.Join(e.dir, "prot.git"), filepath.Join(e.dir, "other.git"))
	if out, err := exec.Command(filepath.Join(e.bin, "gotd"), "-n", "-f", e.conf).CombinedOutput(); err != nil {
		t.Fatalf("gotd -n: %v\n%s", err, out)
	}
	e.daemon = exec.Command(filepath.Join(e.bin, "gotd"), "-d", "-v", "-f", e.conf)
	e.daemon.Stderr = &lockedBuffer{b: e.log}
	if err := e.daemon.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.daemon.Process.Kill()
		e.daemon.Wait()
		if t.Failed() {
			t.Logf("daemon and sshd log:\n%s", e.logText())
		}
	})
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(e.socket); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("gotd did not create its socket:\n%s", e.logText())
}

var logMu sync.Mutex

func (e *env) logText() string {
	logMu.Lock()
	defer logMu.Unlock()
	return e.log.String()
}

type lockedBuffer struct{ b *bytes.Buffer }

func (l *lockedBuffer) Write(p []byte) (int, error) {
	logMu.Lock()
	defer logMu.Unlock()
	return l.b.Write(p)
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitPort(t *testing.T, port int) {
	for i := 0; i < 100; i++ {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("sshd did not start")
}

// url is the clone URL of repo for user.
func (e *env) url(user, repo string) string {
	return fmt.Sprintf("ssh://%s@127.0.0.1:%d/%s", user, e.sshPort, repo)
}

// git runs git with ssh set up; it returns the combined output and
// the error.
func (e *env) git(dir string, args ...string) (string, error) {
	return e.gitWith(dir, "", args...)
}

// gitTimeout bounds every git run of the tests, held ones included.
const gitTimeout = 2 * time.Minute

// holdScript is ssh with its input held back until the file named by
// the first argument exists. The feeder is stopped when ssh ends, so
// that a server hanging up on a held client ends the client too.
const holdScript = `#!/bin/sh
hold=$1
shift
fifo=$(mktemp -u)
mkfifo "$fifo"
# A background job's standard input is /dev/null: git's goes by fd 3.
exec 3<&0
( while [ ! -e "$hold" ]; do sleep 0.05; done; exec cat <&3 ) > "$fifo" &
feeder=$!
%s "$@" < "$fifo" 3<&-
status=$?
kill $feeder 2>/dev/null
rm -f "$fifo"
exit $status
`

// gitWith runs git; with hold, what git sends the server waits until
// the file hold exists (a client held mid-request).
func (e *env) gitWith(dir, hold string, args ...string) (string, error) {
	ssh := fmt.Sprintf("ssh -i %s -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR -o SendEnv=GIT_PROTOCOL", e.key)
	if hold != "" {
		script := filepath.Join(e.dir, "ssh-hold")
		if err := os.WriteFile(script, []byte(fmt.Sprintf(holdScript, ssh)), 0o755); err != nil {
			return "", err
		}
		ssh = script + " " + hold
	}
	ctx, cancel := context.WithTimeout(context.Background(), gitTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.WaitDelay = 5 * time.Second // a wrapper left holding git's pipes
	cmd.Dir = dir
	// GIT_SSH_VARIANT: the wrapper takes ssh's options (-p, -o SendEnv).
	cmd.Env = append(gittest.Env(e.t), "GIT_SSH_COMMAND="+ssh, "GIT_SSH_VARIANT=ssh")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// gitHeldAtPack runs git with what the server sends held back, once
// the pack has begun, until the file hold exists: a client that stops
// reading in the middle of a pack. The test binary itself stands
// between git and ssh (holdPack).
func (e *env) gitHeldAtPack(dir, hold string, args ...string) (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), gitTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.WaitDelay = 5 * time.Second
	cmd.Dir = dir
	ssh := fmt.Sprintf("%s -i %s -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR", exe, e.key)
	cmd.Env = append(gittest.Env(e.t), "GIT_SSH_COMMAND="+ssh, "GIT_SSH_VARIANT=ssh", holdPackEnv+"="+hold)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// holdPackEnv names the file holdPack waits for.
const holdPackEnv = "GOTD_E2E_HOLD_PACK"

func TestMain(m *testing.M) {
	if hold := os.Getenv(holdPackEnv); hold != "" {
		os.Exit(holdPack(hold, os.Args[1:]))
	}
	os.Exit(m.Run())
}

// holdPack runs ssh with args, passing its output on until the pack's
// signature has gone by, then nothing more until the file hold exists
// (two minutes at most), then the rest.
func holdPack(hold string, args []string) int {
	cmd := exec.Command("ssh", args...)
	cmd.Stdin, cmd.Stderr = os.Stdin, os.Stderr
	out, err := cmd.StdoutPipe()
	if err == nil {
		err = cmd.Start()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "holdPack:", err)
		return 1
	}
	buf := make([]byte, 4096)
	var seen []byte
	for !bytes.Contains(seen, []byte("PACK")) {
		n, err := out.Read(buf)
		os.Stdout.Write(buf[:n])
		seen = append(seen[max(0, len(seen)-3):], buf[:n]...)
		if err != nil {
			break
		}
	}
	for i := 0; i < 2400; i++ {
		if _, err := os.Stat(hold); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	io.Copy(os.Stdout, out)
	if err := cmd.Wait(); err != nil {
		return 1
	}
	return 0
}

func (e *env) mustGit(dir string, args ...string) string {
	e.t.Helper()
	out, err := e.git(dir, args...)
	if err != nil {
		e.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return out
}

func (e *env) fsck(repo string) {
	e.t.Helper()
	out, err := exec.Command("git", "-c", "safe.directory=*", "-C", filepath.Join(e.dir, repo+".git"), "fsck", "--full", "--strict").CombinedOutput()
	if err != nil {
		e.t.Fatalf("fsck %s: %v\n%s", repo, err, out)
	}
}

func (e *env) gotctl(args ...string) (string, error) {
	out, err := exec.Command(filepath.Join(e.bin, "gotctl"), append([]string{"-f", e.socket}, args...)...).CombinedOutput()
	return string(out), err
}

// proc is a process of the daemon, as ps sees it.
type proc struct{ pid, uid int }

// processes lists the daemon's processes by role, from the names the
// parent gives them ("gotd: role").
func processes(t *testing.T, parent int) map[string][]proc {
	m := map[string][]proc{}
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		argv0, _, _ := strings.Cut(string(cmdline), "\x00")
		role, ok := strings.CutPrefix(argv0, "gotd: ")
		if !ok {
			continue
		}
		status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		ppid, uid := -1, -1
		for _, line := range strings.Split(string(status), "\n") {
			f := strings.Fields(line)
			switch {
			case len(f) > 1 && f[0] == "Uid:":
				uid, _ = strconv.Atoi(f[1])
			case len(f) > 1 && f[0] == "PPid:":
				ppid, _ = strconv.Atoi(f[1])
			}
		}
		// Only this test's daemon: other tests may run one too.
		if ppid == parent {
			m[role] = append(m[role], proc{pid: pid, uid: uid})
		}
	}
	return m
}

// waitFor polls cond for up to ten seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 200; i++ {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// runShell runs a shell command line and returns its combined output.
func runShell(line string) (string, error) {
	out, err := exec.Command("sh", "-c", line).CombinedOutput()
	return string(out), err
}
