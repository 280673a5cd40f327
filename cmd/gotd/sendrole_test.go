//go:build linux

package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"gotd/internal/daemon/ipc"
)

// TestSendRole runs the send role as gotd's parent would, as nobody:
// against a target that accepts the connection and says nothing it
// confines itself (seccomp) before it reads a byte of the target, and
// reports the failure once the target hangs up; against C Git's git
// daemon it pushes the repository's branch (the first send: every
// branch, no lease) and reports it with the value the target now
// holds.
func TestSendRole(t *testing.T) {
	dir, bin := roleDir(t)
	git := roleGit(t)
	bare, work, target := filepath.Join(dir, "r.git"), filepath.Join(dir, "w"), filepath.Join(dir, "targets", "t.git")
	git("init", "-q", "--bare", bare)
	git("init", "-q", "--bare", target)
	git("init", "-q", work)
	os.WriteFile(filepath.Join(work, "f"), []byte("f\n"), 0o644)
	git("-C", work, "add", "f")
	git("-C", work, "commit", "-q", "-m", "f")
	git("-C", work, "push", "-q", bare, "HEAD:refs/heads/main")
	head := git("--git-dir", bare, "rev-parse", "refs/heads/main")
	if out, err := exec.Command("chown", "-R", "nobody", bare).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v\n%s", err, out)
	}

	// runSend starts the role, hands it a first send to url, and
	// returns its report; during calls while it runs.
	runSend := func(url string, during func(pid int)) ([]ipc.SendRef, *ipc.SendDone, string) {
		t.Helper()
		cmd, parentEnd, out, done := startRole(t, bin, "send", 60*time.Second)
		defer parentEnd.Close()
		for _, m := range []ipc.Message{
			&ipc.SendStart{Path: bare, Name: "r", URL: url, All: true, NoLease: true, Timeout: 30},
			&ipc.SendRefs{Refs: []ipc.SendRef{{Name: "refs/heads/main", Queued: true}}},
			&ipc.SendGo{},
		} {
			if err := ipc.Send(parentEnd, m, nil); err != nil {
				t.Fatal(err)
			}
		}
		if during != nil {
			during(cmd.Process.Pid)
		}
		var refs []ipc.SendRef
		var res *ipc.SendDone
		for res == nil {
			raw, err := parentEnd.Recv()
			if err != nil {
				t.Fatalf("no answer from send: %v (exit: %v)\n%s", err, <-done, out.String())
			}
			switch raw.Type {
			case ipc.TypeSendRefs:
				var m ipc.SendRefs
				if _, err := ipc.Check(raw, &m, false); err != nil {
					t.Fatal(err)
				}
				refs = append(refs, m.Refs...)
			default:
				res = &ipc.SendDone{}
				if _, err := ipc.Check(raw, res, false); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := <-done; err != nil {
			t.Errorf("send exited with %v\n%s", err, out.String())
		}
		return refs, res, out.String()
	}

	// A silent target: the role is confined while it waits.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	conns := make(chan net.Conn, 1)
	go func() {
		if c, err := l.Accept(); err == nil {
			conns <- c
		}
	}()
	_, res, out := runSend(fmt.Sprintf("git://%s/t.git", l.Addr()), func(pid int) {
		var c net.Conn
		select {
		case c = <-conns:
		case <-time.After(30 * time.Second):
			t.Fatal("the send process did not connect")
		}
		if !confined(pid) {
			t.Errorf("the send process reached the target unconfined")
		}
		c.Close()
	})
	if res.Status != ipc.SendFailed || res.Message == "" {
		t.Errorf("silent target: got %+v; want a failure that says why\n%s", res, out)
	}

	// C Git's git daemon.
	port := func() int {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}()
	daemon := exec.Command("git", "daemon", "--export-all", "--enable=receive-pack", "--reuseaddr", "--listen=127.0.0.1",
		fmt.Sprintf("--port=%d", port), "--base-path="+filepath.Dir(target), filepath.Dir(target))
	daemon.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { syscall.Kill(-daemon.Process.Pid, syscall.SIGKILL); daemon.Wait() }()
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			break
		}
		if i == 200 {
			t.Fatal("git daemon does not listen")
		}
		time.Sleep(25 * time.Millisecond)
	}
	refs, res, out := runSend(fmt.Sprintf("git://127.0.0.1:%d/t.git", port), nil)
	if res.Status != ipc.SendOK || len(refs) != 1 || refs[0].Name != "refs/heads/main" || fmt.Sprintf("%x", refs[0].ID) != head || refs[0].Status != "" {
		t.Errorf("git daemon: got %+v, %+v; want main at %s\n%s", res, refs, head, out)
	}
	if got := git("--git-dir", target, "rev-parse", "refs/heads/main"); got != head {
		t.Errorf("the target's main: got %s; want %s", got, head)
	}
	git("--git-dir", target, "fsck", "--full", "--strict")
}
