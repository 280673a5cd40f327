package gittest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// SSHD is an OpenSSH sshd on a loopback port that lets root in with one
// key, so that commands such as C Git's git-upload-pack and
// git-receive-pack run as they do for a Git client over SSH.
type SSHD struct {
	Addr    string // 127.0.0.1:port
	Key     string // the client's private key file (ed25519, no passphrase)
	HostKey string // the server's public host key file (ed25519)
	// HostKeyECDSA is the server's other public host key file: a
	// server with two keys, of which the client may know either.
	HostKeyECDSA string
	KnownHosts   string // a known_hosts file naming Addr with the host key
}

// URL returns the ssh:// URL of the repository at path on the server.
func (s *SSHD) URL(path string) string {
	return "ssh://root@" + s.Addr + path
}

// StartSSHD starts sshd with its own configuration and keys in a
// temporary directory, stopped when the test ends; acceptEnv lets
// GIT_PROTOCOL through (protocol version 2). It needs root and sshd,
// and skips the test without them.
func StartSSHD(t testing.TB, acceptEnv bool) *SSHD {
	t.Helper()
	return startSSHD(t, acceptEnv, "")
}

// StartGitShellSSHD is StartSSHD with every session's command run by
// git-shell, as a host that serves Git over SSH and nothing else does:
// only git-upload-pack, git-receive-pack and git-upload-archive run.
func StartGitShellSSHD(t testing.TB, acceptEnv bool) *SSHD {
	t.Helper()
	gs, err := exec.LookPath("git-shell")
	if err != nil {
		t.Skip("git-shell is not installed")
	}
	return startSSHD(t, acceptEnv, fmt.Sprintf("ForceCommand %s -c \"$SSH_ORIGINAL_COMMAND\"\n", gs))
}

func startSSHD(t testing.TB, acceptEnv bool, extra string) *SSHD {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs sshd")
	}
	sshd := "/usr/sbin/sshd"
	if _, err := os.Stat(sshd); err != nil {
		t.Skip("sshd is not installed")
	}
	dir := t.TempDir()
	gen := func(path string, typ ...string) {
		args := append([]string{"-q", "-t", "ed25519", "-N", "", "-f", path}, typ...)
		if out, err := exec.Command("ssh-keygen", args...).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v\n%s", err, out)
		}
	}
	s := &SSHD{Key: filepath.Join(dir, "key"), HostKey: filepath.Join(dir, "hostkey.pub"), HostKeyECDSA: filepath.Join(dir, "hostkey_ecdsa.pub"), KnownHosts: filepath.Join(dir, "known_hosts")}
	gen(s.Key)
	gen(filepath.Join(dir, "hostkey"))
	gen(filepath.Join(dir, "hostkey_ecdsa"), "-t", "ecdsa")
	pub, err := os.ReadFile(s.Key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(dir, "keys"), 0o700)
	os.WriteFile(filepath.Join(dir, "keys", "root"), pub, 0o600)
	hpub, err := os.ReadFile(s.HostKey)
	if err != nil {
		t.Fatal(err)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s.Addr = fmt.Sprintf("127.0.0.1:%d", port)
	// known_hosts names a host on another port as "[host]:port".
	os.WriteFile(s.KnownHosts, fmt.Appendf(nil, "[127.0.0.1]:%d %s", port, hpub), 0o644)
	env := ""
	if acceptEnv {
		env = "AcceptEnv GIT_PROTOCOL\n"
	}
	conf := filepath.Join(dir, "sshd_config")
	os.WriteFile(conf, fmt.Appendf(nil, `Port %d
ListenAddress 127.0.0.1
HostKey %s/hostkey
HostKey %s/hostkey_ecdsa
PidFile %s/sshd.pid
AuthorizedKeysFile %s/keys/%%u
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitTTY no
DisableForwarding yes
%s%sLogLevel ERROR
`, port, dir, dir, dir, dir, env, extra), 0o600)
	os.MkdirAll("/run/sshd", 0o755)
	cmd := exec.Command(sshd, "-D", "-e", "-f", conf)
	log := &syncBuffer{}
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("sshd log:\n%s", log.String())
		}
	})
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", s.Addr)
		if err == nil {
			c.Close()
			break
		}
		if i == 100 {
			t.Fatalf("sshd does not listen: %s", log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return s
}

// syncBuffer is a bytes.Buffer safe for a process's writes while the
// test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
