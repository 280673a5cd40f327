//go:build linux

package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gotd/internal/daemon/config"
	"gotd/internal/daemon/ipc"
	"gotd/internal/daemon/logs"
	"gotd/internal/daemon/msg"
	"gotd/internal/daemon/users"
)

// TestMain runs a role when GOTD_TEST_ROLE names one: the test binary
// is then a gotd child, with its channel to the parent on descriptor 3;
// with GOTD_TEST_MAIN set, it is gotd run by an operator.
func TestMain(m *testing.M) {
	// The test binary is gotd itself when GOTD_TEST_MAIN is set.
	if os.Getenv("GOTD_TEST_MAIN") != "" {
		main()
		os.Exit(0)
	}
	if role := os.Getenv("GOTD_TEST_ROLE"); role != "" {
		users.PasswdFile, users.GroupFile = os.Getenv("GOTD_TEST_PASSWD"), os.Getenv("GOTD_TEST_GROUP")
		if err := runRole(role, logs.Options{Foreground: true, Verbosity: 2}); err != nil {
			fmt.Fprintln(os.Stderr, "role failed:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestAuthDatabaseReplaced replaces the user and group databases, as
// useradd does (a new file renamed over the old), after auth has
// confined itself and before it reads them: auth still answers (issue
// 19: it opened them by path inside its sandbox, which refused the new
// file, and clients were told "authentication failed").
func TestAuthDatabaseReplaced(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the child runs as nobody: needs root")
	}
	dir, err := os.MkdirTemp("", "gotd-roles-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	// The test binary, where the child's user can execute it.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "gotd.test")
	copyFile(t, self, bin, 0o755)
	passwd, group := filepath.Join(dir, "passwd"), filepath.Join(dir, "group")
	users := "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
	groups := "root:x:0:\nwheel:x:10:root\nnogroup:x:65534:\n"
	os.WriteFile(passwd, []byte(users), 0o644)
	os.WriteFile(group, []byte(groups), 0o644)

	// The client's connection: its peer is this process.
	client, peer, err := msg.Pair()
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	defer peer.Close()
	cmd, parentEnd, out, done := startRole(t, bin, "auth", 20*time.Second, "GOTD_TEST_PASSWD="+passwd, "GOTD_TEST_GROUP="+group)

	// Once its seccomp filter is on, auth has confined itself.
	deadline := time.Now().Add(10 * time.Second)
	for !confined(cmd.Process.Pid) {
		if time.Now().After(deadline) {
			t.Fatalf("auth did not confine itself:\n%s", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, f := range []struct{ path, data string }{{passwd, users}, {group, groups}} {
		os.WriteFile(f.path+".new", []byte(f.data), 0o644)
		if err := os.Rename(f.path+".new", f.path); err != nil {
			t.Fatal(err)
		}
	}

	req := &ipc.AuthRequest{UID: 0, Repo: "r", Rules: []ipc.Rule{{Ident: "root"}}}
	if err := ipc.Send(parentEnd, req, peer.File()); err != nil {
		t.Fatal(err)
	}
	var res ipc.AuthResult
	_, err = ipc.Recv(parentEnd, &res, false)
	status := <-done
	if err != nil {
		t.Fatalf("no answer from auth: %v (exit: %v)\n%s", err, status, out.String())
	}
	if wantUser := "root"; res.User != wantUser || config.Access(res.Access) != config.Read {
		t.Errorf("got user %q access %d; want %q access %d\n%s", res.User, res.Access, wantUser, config.Read, out.String())
	}
}

// confined tells whether pid has a seccomp filter (proc_pid_status(5)).
func confined(pid int) bool {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	return err == nil && strings.Contains(string(status), "\nSeccomp:\t2\n")
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestUpkeepRole runs the upkeep role as gotd's parent would, on a
// repository with an unreachable loose object past the grace period
// and a push in flight (a quarantine directory), for which upkeep
// waits before it removes anything: meanwhile it must run at nice 19
// under its seccomp filter. Once the push is gone it removes the
// object and reports it.
func TestUpkeepRole(t *testing.T) {
	dir, bin := roleDir(t)
	git := roleGit(t)
	bare, work := filepath.Join(dir, "r.git"), filepath.Join(dir, "w")
	git("init", "-q", "--bare", bare)
	git("init", "-q", work)
	os.WriteFile(filepath.Join(work, "f"), []byte("f\n"), 0o644)
	git("-C", work, "add", "f")
	git("-C", work, "commit", "-q", "-m", "f")
	git("-C", work, "push", "-q", bare, "HEAD:refs/heads/main")
	junk := git("--git-dir", bare, "hash-object", "-w", "-t", "blob", "--literally", filepath.Join(work, ".git", "HEAD"))
	month := time.Now().Add(-30 * 24 * time.Hour)
	if err := os.Chtimes(filepath.Join(bare, "objects", junk[:2], junk[2:]), month, month); err != nil {
		t.Fatal(err)
	}
	// A C Git receive-pack's quarantine, as upkeep sees one in use.
	inFlight := filepath.Join(bare, "objects", "incoming-test")
	os.Mkdir(inFlight, 0o755)
	if out, err := exec.Command("chown", "-R", "nobody", bare).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v\n%s", err, out)
	}

	cmd, parentEnd, out, done := startRole(t, bin, "upkeep", 40*time.Second)
	if err := ipc.Send(parentEnd, &ipc.UpkeepStart{Path: bare, Name: "r", Grace: 14 * 24 * 3600, Full: true}, nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !confined(cmd.Process.Pid) || nice(cmd.Process.Pid) != 19 {
		if time.Now().After(deadline) {
			t.Fatalf("upkeep did not confine itself at nice 19 (nice %d):\n%s", nice(cmd.Process.Pid), out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	os.Remove(inFlight)
	var res ipc.UpkeepDone
	_, err := ipc.Recv(parentEnd, &res, false)
	status := <-done
	if err != nil {
		t.Fatalf("no answer from upkeep: %v (exit: %v)\n%s", err, status, out.String())
	}
	if res.Status != ipc.UpkeepOK || res.Pruned != 1 {
		t.Errorf("got status %d, %d pruned (%q); want OK, 1 pruned\n%s", res.Status, res.Pruned, res.Message, out.String())
	}
	if _, err := os.Stat(filepath.Join(bare, "objects", junk[:2], junk[2:])); err == nil {
		t.Errorf("the unreachable object %s is still there", junk)
	}
	// The commit-graph, written inside the sandbox, which C Git
	// accepts.
	if _, err := os.Stat(filepath.Join(bare, "objects", "info", "commit-graphs", "commit-graph-chain")); err != nil {
		t.Errorf("no commit-graph after upkeep: %v\n%s", err, out.String())
	}
	git("--git-dir", bare, "commit-graph", "verify")
}

// nice returns the nice value of pid (proc_pid_stat(5), field 19), or
// -100 when it cannot be read.
func nice(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -100
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return -100
	}
	f := strings.Fields(string(b[i+1:]))
	// After the command: state is field 3, nice field 19.
	if len(f) < 17 {
		return -100
	}
	var n int
	fmt.Sscan(f[16], &n)
	return n
}

// roleDir skips unless the test runs as root with git installed, and
// makes a directory every user can enter holding a copy of the test
// binary, for a role run as nobody; it is removed at the test's end.
func roleDir(t *testing.T) (dir, bin string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the child runs as nobody: needs root")
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	dir, err := os.MkdirTemp("", "gotd-roles-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin = filepath.Join(dir, "gotd.test")
	copyFile(t, self, bin, 0o755)
	return dir, bin
}

// roleGit runs git with an author and committer set and returns its
// trimmed output, failing the test on error.
func roleGit(t *testing.T) func(args ...string) string {
	return func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=a", "GIT_AUTHOR_EMAIL=a@example.com", "GIT_COMMITTER_NAME=a", "GIT_COMMITTER_EMAIL=a@example.com")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
}

// startRole starts role from bin, the test binary, as gotd's parent would:
// as nobody (gotd's children never run as root), with its channel to
// the parent, whose end it returns, and env added to its environment.
// It returns the process, its output and its exit; it is killed after
// limit, and its channel closed when the test ends.
func startRole(t *testing.T, bin, role string, limit time.Duration, env ...string) (*exec.Cmd, *msg.Conn, *bytes.Buffer, chan error) {
	t.Helper()
	parentEnd, childEnd, err := msg.Pair()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { parentEnd.Close() })
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = append(append(os.Environ(), "GOTD_TEST_ROLE="+role), env...)
	cmd.ExtraFiles = []*os.File{childEnd.File()}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out := new(bytes.Buffer)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	childEnd.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	kill := time.AfterFunc(limit, func() { cmd.Process.Kill() })
	t.Cleanup(func() { kill.Stop() })
	return cmd, parentEnd, out, done
}
