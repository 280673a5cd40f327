//go:build linux

package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"gotd/internal/git/oid"
	"gotd/internal/git/repo"
	"gotd/internal/gittest"
	"gotd/internal/protocol/upload"
)

// TestMain runs the sandboxed side of the tests: with GOTD_SANDBOX_ROLE
// set, the test binary applies that role's policy to itself, tries what
// the role may and may not do, and prints one line per attempt.
func TestMain(m *testing.M) {
	if role := os.Getenv("GOTD_SANDBOX_ROLE"); role != "" {
		os.Exit(child(role, os.Getenv("GOTD_SANDBOX_REPO"), os.Getenv("GOTD_SANDBOX_PORT"), os.Getenv("GOTD_SANDBOX_OTHER_PORT")))
	}
	os.Exit(m.Run())
}

func child(role, repoDir, port, otherPort string) int {
	var p uint16
	fmt.Sscan(port, &p)
	policies := map[string]Policy{
		"session_read":  {Role: role, ReadDirs: []string{repoDir}},
		"session_write": {Role: role, ReadDirs: []string{repoDir}, WriteDirs: []string{repoDir}},
		"auth":          {Role: role}, // it opens the user databases first
		"listen":        {Role: role},
		"frontend":      {Role: role, Pairs: true},
		"notify":        {Role: role, Sockets: true, ConnectTCP: []uint16{p}},
		"metrics":       {Role: role, Accept: true},
	}
	// What the role is about to need, opened before the sandbox.
	var r *repo.Repo
	if repoDir != "" {
		var err error
		if r, err = repo.Open(repoDir, repo.Options{}); err != nil {
			fmt.Println("setup", err)
			return 1
		}
	}
	// A terminal, as the one an operator starts gotd -d from, and a
	// pipe for the one request every role may make.
	ptm, pts, err := openPTY()
	if err != nil {
		fmt.Println("setup", err)
		return 1
	}
	var pipe [2]int
	if err := unix.Pipe2(pipe[:], unix.O_CLOEXEC); err != nil {
		fmt.Println("setup", err)
		return 1
	}
	rep, err := Apply(policies[role])
	if err != nil {
		fmt.Println("apply", err)
		return 1
	}
	fmt.Printf("report fs=%v tcp=%v syscalls=%v\n", rep.Filesystem, rep.TCP, rep.Syscalls)
	try := func(name string, err error) {
		if err != nil {
			fmt.Printf("%s denied %v\n", name, err)
		} else {
			fmt.Printf("%s ok\n", name)
		}
	}
	readFile := func(p string) error { _, err := os.ReadFile(p); return err }
	try("read-outside", readFile("/etc/hostname"))
	try("read-passwd", readFile("/etc/passwd"))
	try("exec", exec.Command("/bin/true").Run())
	_, err = net.Dial("tcp", "127.0.0.1:"+port)
	try("connect-allowed", err)
	_, err = net.Dial("tcp", "127.0.0.1:"+otherPort)
	try("connect-other", err)
	_, err = net.Listen("tcp", "127.0.0.1:0")
	try("listen", err)
	_, err = net.Dial("unix", "/run/nonexistent.sock")
	try("unix-socket", err)
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err == nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
	}
	try("socketpair", err)
	// ioctl attempts count as denied only when seccomp refused them
	// (EPERM): TIOCLINUX on a pseudo-terminal fails anyway.
	ioctl := func(name string, fd int, req uint64, arg unsafe.Pointer) {
		_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(arg))
		if e == unix.EPERM {
			try(name, e)
		} else {
			try(name, nil)
		}
	}
	// A signal to another process of the same user (signal 0 only
	// asks whether it could be sent): the test process that started
	// this one, as a taken-over role would the parent.
	try("signal-other", unix.Kill(os.Getppid(), 0))
	try("signal-self", unix.Kill(os.Getpid(), 0))
	c := byte('\n') // a whole line: read at once in canonical mode
	ioctl("tiocsti", pts, unix.TIOCSTI, unsafe.Pointer(&c))
	// The kernel reads the request as 32 bits; the filter must not be
	// passed by bits above them.
	ioctl("tiocsti-high", pts, unix.TIOCSTI|1<<32, unsafe.Pointer(&c))
	sub := [2]byte{12} // TIOCL_GETSHIFTSTATE
	ioctl("tioclinux", pts, unix.TIOCLINUX, unsafe.Pointer(&sub[0]))
	var n int32
	ioctl("fionread", pipe[0], 0x541b, unsafe.Pointer(&n))
	// What TIOCSTI typed, if it could, is read on the terminal's side.
	unix.SetNonblock(pts, true)
	if k, _ := unix.Read(pts, make([]byte, 8)); k > 0 {
		fmt.Println("typed ok")
	}
	unix.Close(ptm)
	if repoDir != "" {
		try("read-repo", readFile(filepath.Join(repoDir, "HEAD")))
		try("write-repo", os.WriteFile(filepath.Join(repoDir, "sandbox-probe"), []byte("x"), 0o644))
		heads, err := r.Refs.Resolve("refs/heads/main")
		if err == nil {
			_, err = upload.WritePack(context.Background(), r, &upload.PackRequest{Wants: []oid.ID{heads.ID}, OfsDelta: true}, io.Discard, nil)
		}
		try("build-pack", err)
	}
	return 0
}

// openPTY opens a pseudo-terminal pair, not as a controlling terminal.
func openPTY() (ptm, pts int, err error) {
	ptm, err = unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, -1, err
	}
	if err := unix.IoctlSetPointerInt(ptm, unix.TIOCSPTLCK, 0); err != nil {
		return -1, -1, err
	}
	n, err := unix.IoctlGetInt(ptm, unix.TIOCGPTN)
	if err != nil {
		return -1, -1, err
	}
	pts, err = unix.Open(fmt.Sprintf("/dev/pts/%d", n), unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	return ptm, pts, err
}

// TestRoles runs each role's sandbox in a child process and checks what
// it was allowed and refused.
func TestRoles(t *testing.T) {
	if landlockABI() < 4 {
		t.Skip("the kernel lacks Landlock ABI 4")
	}
	src := gittest.InitBare(t, "sha1")
	gittest.Generate(t, src, gittest.History{Commits: 10, Files: 6})
	allowed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer allowed.Close()
	other, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	for _, ln := range []net.Listener{allowed, other} {
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	}
	port := fmt.Sprint(allowed.Addr().(*net.TCPAddr).Port)
	otherPort := fmt.Sprint(other.Addr().(*net.TCPAddr).Port)
	// Each role: the attempts that must succeed; every other attempt
	// must be denied. No role may type into a terminal (TIOCSTI) or
	// reach the console (TIOCLINUX): issue 19.
	want := map[string][]string{
		"session_read":  {"read-repo", "build-pack", "fionread", "signal-self"},
		"session_write": {"read-repo", "write-repo", "build-pack", "fionread", "signal-self"},
		"auth":          {"fionread", "signal-self"},
		"listen":        {"fionread", "signal-self"},
		"frontend":      {"socketpair", "fionread", "signal-self"},
		"notify":        {"connect-allowed", "socketpair", "fionread", "signal-self"},
		// Accepts on the sockets it holds; no file, no new socket.
		"metrics": {"fionread", "signal-self"},
	}
	for role, oks := range want {
		t.Run(role, func(t *testing.T) {
			dir := ""
			if strings.HasPrefix(role, "repo") || strings.HasPrefix(role, "session") {
				dir = src
			}
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "GOTD_SANDBOX_ROLE="+role, "GOTD_SANDBOX_REPO="+dir,
				"GOTD_SANDBOX_PORT="+port, "GOTD_SANDBOX_OTHER_PORT="+otherPort)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Run(); err != nil {
				t.Fatalf("child: %v\n%s", err, out.String())
			}
			if !strings.Contains(out.String(), "report fs=true tcp=true syscalls=true") {
				t.Errorf("not fully confined:\n%s", out.String())
			}
			okSet := map[string]bool{}
			for _, o := range oks {
				okSet[o] = true
			}
			for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
				f := strings.Fields(line)
				if len(f) < 2 || f[0] == "report" {
					continue
				}
				if got := f[1] == "ok"; got != okSet[f[0]] {
					t.Errorf("%s: %s", role, line)
				}
				delete(okSet, f[0])
			}
			for o := range okSet {
				t.Errorf("%s: %s was not attempted", role, o)
			}
		})
	}
}
