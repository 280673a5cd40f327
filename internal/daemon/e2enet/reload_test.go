package e2enet

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReloadSecrets replaces the writer's token in the secrets file,
// which only root may read, and reloads with gotctl: the new token
// clones and pushes over HTTP, the old one is refused (issue 20: the
// parent, no longer root, kept the secrets it read at start). A SIGHUP,
// which reloads with the parent's own privileges, fails and says so
// when the file is root's.
func TestReloadSecrets(t *testing.T) {
	var o options
	if os.Geteuid() == 0 {
		// nobody may use gotctl, but not read the secrets file.
		o.extraTop = "control group nogroup"
	}
	s := start(t, o)
	const newToken = "gotd-test-token-after-reload"
	dir := s.clientDir("reload-secrets")
	if out, err := s.git(dir, nil, "ls-remote", s.httpURL(rwAccount+":"+newToken, "private")); err == nil {
		t.Fatalf("a token not yet in the secrets file accepted:\n%s", out)
	}
	s.mustGit(dir, nil, "ls-remote", s.httpURL(rwAccount+":"+token, "private"))

	old, err := os.ReadFile(s.secrets)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(newToken))
	oldSum := sha256.Sum256([]byte(token))
	replaced := strings.Replace(string(old), hex.EncodeToString(oldSum[:]), hex.EncodeToString(sum[:]), 1)
	if replaced == string(old) {
		t.Fatal("the test's token is not in the secrets file")
	}
	write(t, s.secrets, replaced, 0o600)
	if os.Geteuid() == 0 {
		// A caller who cannot read the secrets file cannot reload: it
		// says so, and nothing changes.
		cmd := exec.Command(filepath.Join(s.bin, "gotctl"), "-f", s.socket, "reload")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "permission denied: run gotctl as root") {
			t.Errorf("gotctl reload run by nobody: %v; want permission denied\n%s", err, out)
		}
		if out, err := s.git(dir, nil, "ls-remote", s.httpURL(rwAccount+":"+newToken, "private")); err == nil {
			t.Errorf("the new token accepted after a reload that failed:\n%s", out)
		}
	}
	out, err := s.gotctl("reload")
	if err != nil {
		t.Fatalf("gotctl reload: %v\n%s", err, out)
	}
	if !strings.Contains(out, "account writer: password or tokens changed") {
		t.Errorf("gotctl reload does not say the writer's tokens changed:\n%s", out)
	}

	// The new token clones and pushes; the old one is refused.
	s.mustGit(dir, nil, "clone", "-q", s.httpURL(rwAccount+":"+newToken, "private"), "w")
	w := filepath.Join(dir, "w")
	write(t, filepath.Join(w, "reloaded.txt"), "pushed with the new token\n", 0o644)
	s.mustGit(w, nil, "add", "reloaded.txt")
	s.mustGit(w, nil, "commit", "-q", "-m", "after the reload")
	s.mustGit(w, nil, "push", "-q", s.httpURL(rwAccount+":"+newToken, "private"), "HEAD:refs/heads/reloaded")
	for _, args := range [][]string{
		{"ls-remote", s.httpURL(rwAccount+":"+token, "private")},
		{"push", "-q", s.httpURL(rwAccount+":"+token, "private"), "HEAD:refs/heads/revoked"},
	} {
		if out, err := s.git(w, nil, args...); err == nil || !strings.Contains(out, "Authentication failed") {
			t.Errorf("git %s with the revoked token: %v; want Authentication failed\n%s", args[0], err, out)
		}
	}
	if got := refs(t, filepath.Join(s.dir, "private.git")); strings.Contains(got, "revoked") || !strings.Contains(got, "refs/heads/reloaded") {
		t.Errorf("private.git's references:\n%s", got)
	}
	fsck(t, filepath.Join(s.dir, "private.git"))

	if os.Geteuid() != 0 {
		return
	}
	// SIGHUP: the daemon's user may not read the secrets file.
	s.daemon.Process.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(s.log.String(), "permission denied: run gotctl reload as root") {
		if time.Now().After(deadline) {
			t.Fatalf("no failure logged for a SIGHUP that cannot read the secrets file")
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.mustGit(dir, nil, "ls-remote", s.httpURL(rwAccount+":"+newToken, "private"))
}

// TestReloadCertificate replaces the HTTPS certificate and its key and
// reloads: the new certificate is served, and a clone over HTTPS that
// trusts only it succeeds; the replaced httpd process ends.
func TestReloadCertificate(t *testing.T) {
	t.Parallel() // long and not timed: runs beside the other such tests, after the timed ones
	s := start(t, options{})
	before := servedCertificate(t, s.httpsPort)
	if !bytes.Equal(before, fileCertificate(t, s.certFile)) {
		t.Fatal("the served certificate is not the configured one")
	}
	oldHTTPD := s.waitRole("httpd", 0)
	s.newCertificate()
	want := fileCertificate(t, s.certFile)
	if bytes.Equal(before, want) {
		t.Fatal("the new certificate is the old one")
	}
	out, err := s.gotctl("reload")
	if err != nil {
		t.Fatalf("gotctl reload: %v\n%s", err, out)
	}
	if name := fmt.Sprintf("listen http on 127.0.0.1 port %d: certificate read anew, changed", s.httpsPort); !strings.Contains(out, name) {
		t.Errorf("gotctl reload does not say %q:\n%s", name, out)
	}
	if got := servedCertificate(t, s.httpsPort); !bytes.Equal(got, want) {
		t.Fatal("after the reload the old certificate is served")
	}
	dir := s.clientDir("reload-cert")
	s.mustGit(dir, nil, "clone", "-q", "--bare", s.httpsURL(rwAccount+":"+token, "test"), "r.git")
	fsck(t, filepath.Join(dir, "r.git"))
	// The old process closed its listeners and, without clients, ended.
	s.waitRole("httpd", oldHTTPD)
}

// servedCertificate returns the certificate the server on port serves.
func servedCertificate(t *testing.T, port int) []byte {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Raw
}

// fileCertificate returns the certificate in a PEM file.
func fileCertificate(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	return block.Bytes
}

// TestReloadListen moves the git:// listener to another port: the new
// port serves after gotctl reload and the old one is closed, a client
// connected to it before is served to its end by the old process. A
// listener whose port is taken, and a changed unix socket, are refused
// by name, and gotctl exits non-zero.
func TestReloadListen(t *testing.T) {
	s := start(t, options{})
	conf, err := os.ReadFile(s.conf)
	if err != nil {
		t.Fatal(err)
	}
	oldLine := fmt.Sprintf("listen git on 127.0.0.1 port %d", s.gitPort)
	newPort := freePort(t)
	newLine := fmt.Sprintf("listen git on 127.0.0.1 port %d", newPort)
	if !strings.Contains(string(conf), oldLine) {
		t.Fatalf("no %q in the configuration", oldLine)
	}
	// A client of the old port, in the middle of its request: served
	// to its end by the old git:// process after the reload.
	oldGitd := s.waitRole("gitd", 0)
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.gitPort), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(gitTimeout))
	req := "git-upload-pack /test\x00host=127.0.0.1\x00"
	fmt.Fprintf(c, "%04x%s", len(req)+4, req)
	adv := make([]byte, 4+40)
	if _, err := io.ReadFull(c, adv); err != nil {
		t.Fatalf("reference advertisement: %v", err)
	}

	write(t, s.conf, strings.Replace(string(conf), oldLine, newLine, 1), 0o644)
	out, err := s.gotctl("reload")
	if err != nil {
		t.Fatalf("gotctl reload: %v\n%s", err, out)
	}
	for _, want := range []string{newLine + ": added", oldLine + ": removed"} {
		if !strings.Contains(out, want) {
			t.Errorf("gotctl reload does not say %q:\n%s", want, out)
		}
	}
	// The client goes on: it asks for nothing, and the server ends the
	// conversation; then the old process ends.
	if syscall.Kill(oldGitd, 0) != nil {
		t.Error("the old git:// process ended before its client")
	}
	io.WriteString(c, "0000")
	if rest, err := io.ReadAll(c); err != nil || !bytes.HasSuffix(rest, []byte("0000")) {
		t.Errorf("the client of the removed port: %v, advertisement ends %q", err, rest[max(0, len(rest)-8):])
	}
	s.waitRole("gitd", oldGitd)
	dir := s.clientDir("reload-listen")
	s.mustGit(dir, nil, "clone", "-q", "--bare", fmt.Sprintf("git://127.0.0.1:%d/test", newPort), "r.git")
	fsck(t, filepath.Join(dir, "r.git"))
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.gitPort), time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("the removed port %d still accepts", s.gitPort)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A port another program holds, and a new unix socket.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	takenLine := fmt.Sprintf("listen git on 127.0.0.1 port %d", taken.Addr().(*net.TCPAddr).Port)
	conf, _ = os.ReadFile(s.conf)
	changed := strings.Replace(string(conf), newLine, newLine+"\n"+takenLine, 1)
	changed = strings.Replace(changed, fmt.Sprintf("listen on %q", s.socket), fmt.Sprintf("listen on %q", s.socket+".new"), 1)
	write(t, s.conf, changed, 0o644)
	out, err = s.gotctl("reload")
	if err == nil {
		t.Errorf("gotctl reload exits 0 with changes not applied:\n%s", out)
	}
	for _, want := range []string{
		"not applied: " + takenLine + ": cannot bind: address already in use",
		fmt.Sprintf("not applied: listen on %s: changed, needs a restart", s.socket+".new"),
		"not applied: listen git: listeners left as they were",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("gotctl reload does not say %q:\n%s", want, out)
		}
	}
	// The git listeners stay as they were: the new port still serves.
	s.mustGit(dir, nil, "ls-remote", fmt.Sprintf("git://127.0.0.1:%d/test", newPort))
}

// TestHostKeyTypes configures an ed25519, an ECDSA and an RSA host key
// (made at start): OpenSSH's client connects asking for each type
// alone, and finds the key of that type (JSch cannot use ed25519). A
// key replaced is served after gotctl reload, and a client connected
// before is relayed to its end by the old sshd.
func TestHostKeyTypes(t *testing.T) {
	t.Parallel() // long and not timed: runs beside the other such tests, after the timed ones
	dir0, err := os.MkdirTemp("", "gotd-hostkeys-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir0) })
	extra := fmt.Sprintf("ssh hostkey %q\nssh hostkey %q\n", filepath.Join(dir0, "ssh_host_ecdsa_key"), filepath.Join(dir0, "ssh_host_rsa_key"))
	s := start(t, options{extraTop: extra})
	var known []string
	for _, path := range []string{filepath.Join(s.dir, "ssh_host_ed25519_key"), filepath.Join(dir0, "ssh_host_ecdsa_key"), filepath.Join(dir0, "ssh_host_rsa_key")} {
		pub, err := os.ReadFile(path + ".pub")
		if err != nil {
			t.Fatalf("host key not made: %v", err)
		}
		known = append(known, fmt.Sprintf("[127.0.0.1]:%d %s", s.sshPort, strings.TrimSpace(string(pub))))
	}
	write(t, s.knownHosts, strings.Join(known, "\n")+"\n", 0o644)
	for _, c := range []struct{ alg, keyType string }{
		{"ssh-ed25519", "ssh-ed25519"},
		{"ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256"},
		{"rsa-sha2-512", "ssh-rsa"},
		{"rsa-sha2-256", "ssh-rsa"},
	} {
		if !strings.Contains(strings.Join(known, "\n"), " "+c.keyType+" ") {
			t.Fatalf("no %s key among\n%s", c.keyType, strings.Join(known, "\n"))
		}
		env := []string{"GIT_SSH_COMMAND=" + s.sshCommand(s.readerKey) + " -o HostKeyAlgorithms=" + c.alg}
		if out, err := s.git(s.dir, env, "ls-remote", s.sshURL(roAccount, "test")); err != nil {
			t.Errorf("ssh with host key algorithm %s: %v\n%s", c.alg, err, out)
		}
	}

	// A client in the middle of its request, whose connection the old
	// sshd relays: served to its end after the reload replaces sshd.
	oldSSHD := s.waitRole("sshd", 0)
	args := append(strings.Fields(s.sshCommand(s.readerKey)), "-p", fmt.Sprint(s.sshPort), "-o", "HostKeyAlgorithms=ssh-ed25519",
		roAccount+"@127.0.0.1", "git-upload-pack 'test'")
	ctx, cancel := context.WithTimeout(context.Background(), gitTimeout)
	defer cancel()
	held := exec.CommandContext(ctx, args[0], args[1:]...)
	stdin, _ := held.StdinPipe()
	stdout, _ := held.StdoutPipe()
	var stderr bytes.Buffer
	held.Stderr = &stderr
	if err := held.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(stdout, make([]byte, 4+40)); err != nil {
		t.Fatalf("reference advertisement over ssh: %v\n%s", err, stderr.String())
	}

	// The ECDSA key replaced: served after gotctl reload, and the old
	// one no longer.
	ecdsaKey := filepath.Join(dir0, "ssh_host_ecdsa_key")
	os.Remove(ecdsaKey)
	os.Remove(ecdsaKey + ".pub")
	run(t, "ssh-keygen", "-q", "-t", "ecdsa", "-N", "", "-f", ecdsaKey)
	out, err := s.gotctl("reload")
	if err != nil || !strings.Contains(out, "ssh host keys: read anew, changed") {
		t.Fatalf("gotctl reload: %v\n%s", err, out)
	}
	pub, err := os.ReadFile(ecdsaKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"GIT_SSH_COMMAND=" + s.sshCommand(s.readerKey) + " -o HostKeyAlgorithms=ecdsa-sha2-nistp256"}
	if out, err := s.git(s.dir, env, "ls-remote", s.sshURL(roAccount, "test")); err == nil {
		t.Errorf("the replaced ECDSA host key still served:\n%s", out)
	}
	known[1] = fmt.Sprintf("[127.0.0.1]:%d %s", s.sshPort, strings.TrimSpace(string(pub)))
	write(t, s.knownHosts, strings.Join(known, "\n")+"\n", 0o644)
	s.mustGit(s.dir, env, "ls-remote", s.sshURL(roAccount, "test"))

	if syscall.Kill(oldSSHD, 0) != nil {
		t.Error("the old sshd ended before its client")
	}
	io.WriteString(stdin, "0000")
	stdin.Close()
	rest, err := io.ReadAll(stdout)
	if err != nil || !bytes.HasSuffix(rest, []byte("0000")) {
		t.Errorf("the held ssh client: %v, advertisement ends %q", err, rest[max(0, len(rest)-8):])
	}
	if err := held.Wait(); err != nil {
		t.Errorf("the held ssh client: %v\n%s", err, stderr.String())
	}
	s.waitRole("sshd", oldSSHD)
}
