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
		"repo_read":     {Role: role, ReadDirs: []string{repoDir}},
		"session_write": {Role: role, ReadDirs: []string{repoDir}, WriteDirs: []string{repoDir}},
		"auth":          {Role: role, ReadFiles: []string{"/etc/passwd", "/etc/group"}},
		"listen":        {Role: role},
		"frontend":      {Role: role, Pairs: true},
		"notify":        {Role: role, Sockets: true, ConnectTCP: []uint16{p}},
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
	// must be denied.
	want := map[string][]string{
		"repo_read":     {"read-repo", "build-pack"},
		"session_write": {"read-repo", "write-repo", "build-pack"},
		"auth":          {"read-passwd"},
		"listen":        {},
		"frontend":      {"socketpair"},
		"notify":        {"connect-allowed", "socketpair"},
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
