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

	parentEnd, childEnd, err := msg.Pair()
	if err != nil {
		t.Fatal(err)
	}
	defer parentEnd.Close()
	// The client's connection: its peer is this process.
	client, peer, err := msg.Pair()
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	defer peer.Close()

	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = append(os.Environ(), "GOTD_TEST_ROLE=auth", "GOTD_TEST_PASSWD="+passwd, "GOTD_TEST_GROUP="+group)
	cmd.ExtraFiles = []*os.File{childEnd.File()}
	// gotd's children never run as root.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	childEnd.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	kill := time.AfterFunc(20*time.Second, func() { cmd.Process.Kill() })
	defer kill.Stop()

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
