// Package e2enet runs gotd's network front-ends end to end: gotd is
// built and started with the built-in SSH server, git:// and smart HTTP
// on loopback ports, and real clients (C Git, and independent ones)
// clone, fetch and push through them. No system accounts are needed:
// run by an ordinary user, every process runs as that user; run as
// root, gotd drops to "nobody", which owns the test's repositories.
package e2enet

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"gotd/internal/engine/upkeep"
	"gotd/internal/gittest"
)

// Accounts and credentials of the test configuration.
const (
	rwAccount   = "writer" // permit rw on every repository
	roAccount   = "reader" // permit ro on "test"
	password    = "correct horse battery staple"
	token       = "gotd-test-token-0123456789"
	rootDaemon  = "nobody" // the daemon's user when the test runs as root
	gitTimeout  = 2 * time.Minute
	bodyLimitKB = 512 // HTTP body limit of the test configuration
)

// server is a running gotd with all three front-ends.
type server struct {
	t                          testing.TB
	dir, bin, conf, socket     string
	sshPort, gitPort, httpPort int
	httpsPort                  int
	// keys: the writer's and the reader's SSH private keys, and one no
	// account lists.
	writerKey, readerKey, strangerKey string
	knownHosts                        string
	certFile                          string
	secrets                           string
	daemon                            *exec.Cmd
	log                               *lockedBuffer
	terminal                          bool // the daemon has a controlling terminal
	debug                             bool
	quiet                             bool // no -v
}

// options vary the configuration.
type options struct {
	extraConn    string // lines for the connection block
	extraTop     string // top-level lines
	extraTest    string // lines for the "test" repository's block
	extraSecrets string // lines for the secrets file
	// terminal starts gotd as make run does from a shell: in a session
	// whose controlling terminal (a pseudo-terminal the test reads into
	// the log) is its standard streams.
	terminal bool
	// testBuild runs a gotd built with the gotdtest tag, whose
	// front-ends can be made to misbehave as if taken over.
	testBuild bool
	debug     bool // the daemon logs at debug level
	// privateBin runs copies of the programs from a directory only root
	// may enter, as from a checkout under /root (issue 20).
	privateBin bool
	// quiet runs the daemon at its default verbosity, without -v.
	quiet bool
}

var buildOnce struct {
	sync.Once
	dir string
	err error
	out []byte
}

// buildBinaries builds gotd, gotctl, gotadmin and gotsh once per test
// binary.
func buildBinaries(t testing.TB) string {
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gotd-e2enet-bin-")
		if err != nil {
			buildOnce.err = err
			return
		}
		os.Chmod(dir, 0o755)
		cmd := exec.Command("go", "build", "-o", dir+"/", "gotd/cmd/gotd", "gotd/cmd/gotctl", "gotd/cmd/gotadmin", "gotd/cmd/gotsh")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		buildOnce.out, buildOnce.err = cmd.CombinedOutput()
		buildOnce.dir = dir
	})
	if buildOnce.err != nil {
		t.Fatalf("build: %v\n%s", buildOnce.err, buildOnce.out)
	}
	return buildOnce.dir
}

var buildTestOnce struct {
	sync.Once
	dir string
	err error
	out []byte
}

// buildTestGotd builds gotd with the gotdtest tag, once per test
// binary, into a directory with links to the other programs.
func buildTestGotd(t testing.TB) string {
	bin := buildBinaries(t)
	buildTestOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gotd-e2enet-testbin-")
		if err != nil {
			buildTestOnce.err = err
			return
		}
		buildTestOnce.dir = dir
		os.Chmod(dir, 0o755)
		for _, p := range []string{"gotctl", "gotadmin", "gotsh"} {
			if err := os.Symlink(filepath.Join(bin, p), filepath.Join(dir, p)); err != nil {
				buildTestOnce.err = err
				return
			}
		}
		cmd := exec.Command("go", "build", "-tags", "gotdtest", "-o", dir+"/", "gotd/cmd/gotd")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		buildTestOnce.out, buildTestOnce.err = cmd.CombinedOutput()
	})
	if buildTestOnce.err != nil {
		t.Fatalf("build: %v\n%s", buildTestOnce.err, buildTestOnce.out)
	}
	return buildTestOnce.dir
}

// privateCopy copies the programs in bin into a directory under dir
// that only its owner may enter, and returns it.
func privateCopy(t testing.TB, dir, bin string) string {
	priv := filepath.Join(dir, "private-bin")
	if err := os.Mkdir(priv, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"gotd", "gotctl", "gotadmin", "gotsh"} {
		b, err := os.ReadFile(filepath.Join(bin, p))
		if err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(priv, p), string(b), 0o755)
	}
	return priv
}

// TestMain removes the built programs. Run with relayEnv set, the test
// binary is a relay between git and ssh instead (see relay).
func TestMain(m *testing.M) {
	if os.Getenv(relayEnv) != "" {
		os.Exit(relay())
	}
	code := m.Run()
	if buildOnce.dir != "" {
		os.RemoveAll(buildOnce.dir)
	}
	if buildTestOnce.dir != "" {
		os.RemoveAll(buildTestOnce.dir)
	}
	os.Exit(code)
}

// start builds gotd, creates repositories "test" (some history, anonymous
// read), "private" (accounts only) and "empty", and starts the daemon.
func start(t testing.TB, o options) *server {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	dir, err := os.MkdirTemp("", "gotd-e2enet-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	bin := buildBinaries(t)
	if o.testBuild {
		bin = buildTestGotd(t)
	}
	if o.privateBin {
		bin = privateCopy(t, dir, bin)
	}
	s := &server{t: t, dir: dir, bin: bin, socket: filepath.Join(dir, "gotd.sock"), log: &lockedBuffer{}, terminal: o.terminal, debug: o.debug,
		quiet: o.quiet}

	test := filepath.Join(dir, "test.git")
	run(t, "git", "init", "-q", "--bare", "-b", "main", test)
	gittest.Generate(t, test, gittest.History{Commits: 20, Files: 8})
	for _, name := range []string{"private", "empty"} {
		run(t, "git", "init", "-q", "--bare", "-b", "main", filepath.Join(dir, name+".git"))
	}
	run(t, "git", "--git-dir", test, "push", "-q", filepath.Join(dir, "private.git"), "main")

	s.writerKey = s.newKey("writer")
	s.readerKey = s.newKey("reader")
	s.strangerKey = s.newKey("stranger")
	s.knownHosts = filepath.Join(dir, "known_hosts")
	s.certFile = s.newCertificate()

	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(token))
	s.secrets = filepath.Join(dir, "gotd-secrets.conf")
	write(t, s.secrets, fmt.Sprintf("password %s '%s'\npassword %s '%s'\ntoken %s sha256:%s\n%s",
		rwAccount, hash, roAccount, hash, rwAccount, hex.EncodeToString(sum[:]), o.extraSecrets), 0o600)

	ports := freePorts(t, 4)
	s.sshPort, s.gitPort, s.httpPort, s.httpsPort = ports[0], ports[1], ports[2], ports[3]
	daemonUser := currentUser(t)
	if os.Geteuid() == 0 {
		daemonUser = rootDaemon
	}
	s.conf = filepath.Join(dir, "gotd.conf")
	write(t, s.conf, fmt.Sprintf(`# written by the network end-to-end tests
listen on "%s"
user %s
listen ssh on 127.0.0.1 port %d
listen git on 127.0.0.1 port %d
listen http on 127.0.0.1 port %d
listen http on 127.0.0.1 port %d tls certificate "%s/cert.pem" key "%s/cert.key"
ssh hostkey "%s/ssh_host_ed25519_key"
%s
connection {
	handshake timeout 2
	body limit %dK
	limit user anonymous 300
	limit user %s 64
%s
}
account %s {
	group developers
	key "%s"
}
account %s {
	key "%s"
}
repository "test" {
	path "%s/test.git"
	permit rw :developers
	permit ro %s
	permit ro anonymous
%s
}
repository "private" {
	path "%s/private.git"
	permit rw %s
}
repository "empty" {
	path "%s/empty.git"
	permit rw %s
	permit ro anonymous
}
`, s.socket, daemonUser, s.sshPort, s.gitPort, s.httpPort, s.httpsPort, dir, dir, dir, o.extraTop,
		bodyLimitKB, rwAccount, o.extraConn,
		rwAccount, s.publicKey(s.writerKey), roAccount, s.publicKey(s.readerKey),
		dir, roAccount, o.extraTest, dir, rwAccount, dir, rwAccount), 0o644)
	if os.Geteuid() == 0 {
		run(t, "chown", "-R", rootDaemon, filepath.Join(dir, "test.git"), filepath.Join(dir, "private.git"), filepath.Join(dir, "empty.git"))
	}
	if out, err := exec.Command(s.gotd(), "-n", "-f", s.conf, "-s", s.secrets).CombinedOutput(); err != nil {
		t.Fatalf("gotd -n: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if s.daemon != nil && s.daemon.Process != nil {
			s.daemon.Process.Kill()
			s.daemon.Wait()
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", s.log.String())
		}
	})
	s.launch()
	pub, err := os.ReadFile(filepath.Join(dir, "ssh_host_ed25519_key.pub"))
	if err != nil {
		t.Fatalf("host key: %v", err)
	}
	write(t, s.knownHosts, fmt.Sprintf("[127.0.0.1]:%d %s", s.sshPort, pub), 0o644)
	return s
}

// launch starts the daemon and waits for its ports.
func (s *server) launch() {
	args := []string{"-d", "-f", s.conf, "-s", s.secrets}
	if !s.quiet {
		args = append(args, "-v")
	}
	if s.debug {
		args = append(args, "-v")
	}
	started := strings.Count(s.log.String(), "gotd started")
	s.daemon = exec.Command(s.gotd(), args...)
	s.daemon.Stderr = s.log
	var ptm, pts *os.File
	if s.terminal {
		ptm, pts = openPTY(s.t)
		s.daemon.Stdin, s.daemon.Stdout, s.daemon.Stderr = pts, pts, pts
		s.daemon.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	}
	if err := s.daemon.Start(); err != nil {
		s.t.Fatal(err)
	}
	if s.terminal {
		pts.Close()
		// Until the daemon and every process holding the terminal are
		// gone (EIO).
		go func() {
			io.Copy(s.log, ptm)
			ptm.Close()
		}()
	}
	for _, p := range []int{s.sshPort, s.gitPort, s.httpPort, s.httpsPort} {
		waitPort(s.t, p, s.log)
	}
	// Its processes have started, and not only its ports: a test may
	// kill one.
	s.waitLog("gotd started", started)
}

// waitLog waits for the daemon's log to contain text more than n times.
func (s *server) waitLog(text string, n int) {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(s.log.String(), text) <= n {
		if time.Now().After(deadline) {
			s.t.Fatalf("no %q in the daemon's log:\n%s", text, s.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// restart stops the daemon with SIGTERM and starts it again.
func (s *server) restart() {
	s.t.Helper()
	s.daemon.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- s.daemon.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		s.daemon.Process.Kill()
		s.t.Fatalf("the daemon did not stop:\n%s", s.log.String())
	}
	s.launch()
}

// openPTY opens a pseudo-terminal: the master side, and the terminal.
func openPTY(t testing.TB) (ptm, pts *os.File) {
	t.Helper()
	m, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	ptm = os.NewFile(uintptr(m), "ptmx")
	if err := unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(m, unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	pts, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return ptm, pts
}

func (s *server) gotd() string { return filepath.Join(s.bin, "gotd") }

// URLs of a repository through each front-end.
func (s *server) sshURL(account, repo string) string {
	return fmt.Sprintf("ssh://%s@127.0.0.1:%d/%s", account, s.sshPort, repo)
}
func (s *server) gitURL(repo string) string {
	return fmt.Sprintf("git://127.0.0.1:%d/%s", s.gitPort, repo)
}
func (s *server) httpURL(userinfo, repo string) string {
	if userinfo != "" {
		userinfo += "@"
	}
	return fmt.Sprintf("http://%s127.0.0.1:%d/%s", userinfo, s.httpPort, repo)
}
func (s *server) httpsURL(userinfo, repo string) string {
	if userinfo != "" {
		userinfo += "@"
	}
	return fmt.Sprintf("https://%s127.0.0.1:%d/%s", userinfo, s.httpsPort, repo)
}

// sshCommand is GIT_SSH_COMMAND for a key.
func (s *server) sshCommand(key string) string {
	return fmt.Sprintf("ssh -i %s -o IdentitiesOnly=yes -o BatchMode=yes -o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes", key, s.knownHosts)
}

// git runs git in dir with env added, bounded in time; it returns the
// combined output and the error.
func (s *server) git(dir string, env []string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), gitTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = append(append(safeEnv(s.t), "GIT_TERMINAL_PROMPT=0", "GIT_SSL_CAINFO="+s.certFile), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// mustGit is git that must succeed.
func (s *server) mustGit(dir string, env []string, args ...string) string {
	s.t.Helper()
	out, err := s.git(dir, env, args...)
	if err != nil {
		s.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return out
}

// newKey makes an ed25519 key pair in the test directory.
func (s *server) newKey(name string) string {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		s.t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, name)
	if err != nil {
		s.t.Fatal(err)
	}
	path := filepath.Join(s.dir, name+".key")
	write(s.t, path, string(pem.EncodeToMemory(block)), 0o600)
	return path
}

// publicKey is the authorized_keys line of a private key file.
func (s *server) publicKey(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		s.t.Fatal(err)
	}
	k, err := ssh.ParsePrivateKey(b)
	if err != nil {
		s.t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k.PublicKey())))
}

// newCertificate makes a self-signed certificate for 127.0.0.1 in
// cert.pem and its key in cert.key, and returns the certificate's path.
func (s *server) newCertificate() string {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		s.t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(48 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		s.t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		s.t.Fatal(err)
	}
	cert := filepath.Join(s.dir, "cert.pem")
	write(s.t, cert, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), 0o644)
	write(s.t, filepath.Join(s.dir, "cert.key"), string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})), 0o600)
	return cert
}

// clientDir is a new empty directory for a client's work.
func (s *server) clientDir(name string) string {
	d := filepath.Join(s.dir, "clients", name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		s.t.Fatal(err)
	}
	return d
}

// fsck checks a repository with C Git.
//
// It holds the repository's upkeep lock meanwhile: a run the daemon
// starts after a push (or one under way) replaces packs and removes the
// old ones, which C Git's fsck, listing the packs first, then reports
// as packs whose index is gone. Upkeep started meanwhile fails with
// "another cleanup or repack is running", which the tests allow.
// Where upkeep never ran, there is no lock file, and none is made: it
// would be the test's, with the test's owner and mode, which
// TestRepositoryPermissions checks.
func fsck(t testing.TB, dir string) {
	t.Helper()
	if f, err := os.Open(filepath.Join(dir, upkeep.LockFile)); err == nil {
		defer f.Close()
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
			t.Fatalf("fsck %s: lock: %v", dir, err)
		}
	}
	run(t, "git", "-C", dir, "fsck", "--full", "--strict", "--no-progress")
}

// refs lists a repository's references.
func refs(t testing.TB, gitDir string) string {
	t.Helper()
	return run(t, "git", "--git-dir", gitDir, "for-each-ref", "--format=%(objectname) %(refname)")
}

func currentUser(t testing.TB) string {
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return u.Username
}

// safeEnv is git's environment for the tests: run as root, the
// repositories belong to the daemon's user, which git must accept.
func safeEnv(t testing.TB) []string {
	return append(gittest.Env(t), "GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=safe.directory", "GIT_CONFIG_VALUE_0=*")
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), gitTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = safeEnv(t)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

func write(t testing.TB, path, data string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
}

func freePort(t testing.TB) int { return freePorts(t, 1)[0] }

// freePorts returns n distinct free loopback ports: all are held until
// the last is found, so that the kernel cannot hand one out twice.
func freePorts(t testing.TB, n int) []int {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

func waitPort(t testing.TB, port int, log *lockedBuffer) {
	for i := 0; i < 200; i++ {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("nothing listens on port %d:\n%s", port, log.String())
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
