package remote

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"gotd/internal/git/oid"
	"gotd/internal/git/repo"
	"gotd/internal/gittest"
)

// sshServer is an OpenSSH sshd on a loopback port that lets root in
// with one key and runs C Git's git-upload-pack and git-receive-pack.
type sshServer struct {
	addr    string
	hostKey ssh.PublicKey
	key     string // the client's private key file
	known   string // a known_hosts file naming addr with hostKey
}

// startSSHD starts sshd with its own configuration in a temporary
// directory; acceptEnv lets GIT_PROTOCOL through (protocol version 2).
// It needs root and sshd, and skips the test without them.
func startSSHD(t *testing.T, acceptEnv bool) *sshServer {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs sshd")
	}
	sshd := "/usr/sbin/sshd"
	if _, err := os.Stat(sshd); err != nil {
		t.Skip("sshd is not installed")
	}
	dir := t.TempDir()
	gen := func(path string) {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v\n%s", err, out)
		}
	}
	s := &sshServer{key: filepath.Join(dir, "key"), known: filepath.Join(dir, "known_hosts")}
	gen(s.key)
	gen(filepath.Join(dir, "hostkey"))
	pub, _ := os.ReadFile(s.key + ".pub")
	os.Mkdir(filepath.Join(dir, "keys"), 0o700)
	os.WriteFile(filepath.Join(dir, "keys", "root"), pub, 0o600)
	hpub, _ := os.ReadFile(filepath.Join(dir, "hostkey.pub"))
	hk, _, _, _, err := ssh.ParseAuthorizedKey(hpub)
	if err != nil {
		t.Fatal(err)
	}
	s.hostKey = hk

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s.addr = fmt.Sprintf("127.0.0.1:%d", port)
	os.WriteFile(s.known, []byte(knownhosts.Line([]string{knownhosts.Normalize(s.addr)}, hk)+"\n"), 0o644)
	env := ""
	if acceptEnv {
		env = "AcceptEnv GIT_PROTOCOL\n"
	}
	conf := filepath.Join(dir, "sshd_config")
	os.WriteFile(conf, []byte(fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s/hostkey
PidFile %s/sshd.pid
AuthorizedKeysFile %s/keys/%%u
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitTTY no
DisableForwarding yes
%sLogLevel ERROR
`, port, dir, dir, dir, env)), 0o600)
	os.MkdirAll("/run/sshd", 0o755)
	cmd := exec.Command(sshd, "-D", "-e", "-f", conf)
	var log lockedLog
	cmd.Stderr = &log
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
		c, err := net.Dial("tcp", s.addr)
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

type lockedLog struct{ limitedBuffer }

// url is the ssh:// URL of the repository at path.
func (s *sshServer) url(path string) string {
	return "ssh://root@" + s.addr + path
}

// TestSSHRoundTrip fetches from and sends to C Git over OpenSSH: with
// GIT_PROTOCOL accepted the fetch speaks version 2, without it version
// 0; the host key pinned by a known_hosts file or by the key itself;
// the mirror's references equal the upstream's, and after the upstream
// moves a second fetch follows; Send makes an empty target equal to
// the source; every repository passes git fsck. The paths hold a
// quote and a space, which the remote command must quote as C Git does.
func TestSSHRoundTrip(t *testing.T) {
	for _, acceptEnv := range []bool{true, false} {
		t.Run(fmt.Sprintf("AcceptEnv=%v", acceptEnv), func(t *testing.T) {
			srv := startSSHD(t, acceptEnv)
			root := filepath.Join(t.TempDir(), "it's a dir")
			up := filepath.Join(root, "up.git")
			gittest.Git(t, "", "-c", "init.defaultBranch=main", "init", "-q", "--bare", up)
			gittest.Generate(t, up, gittest.History{Commits: 12, Branches: 2, Files: 5})

			// The version the upstream answers in.
			tr, err := dial(context.Background(), srv.url(up), uploadPack, 10*time.Second, false, &SSH{KnownHosts: srv.known, KeyFile: srv.key})
			if err != nil {
				t.Fatal(err)
			}
			f := &fetcher{opts: FetchOptions{MaxRefs: 100, Take: func(string) bool { return true }}, t: tr, format: oid.SHA1}
			adv, _ := tr.advertisement(context.Background())
			if _, _, err := f.readAdvertisement(adv); err != nil {
				t.Fatal(err)
			}
			tr.close()
			if got, want := f.v0, !acceptEnv; got != want {
				t.Errorf("protocol version 0: got %v; want %v", got, want)
			}

			for name, opts := range map[string]*SSH{
				"known_hosts": {KnownHosts: srv.known, KeyFile: srv.key},
				"pinned key":  {HostKeys: []ssh.PublicKey{srv.hostKey}, KeyFile: srv.key},
			} {
				dir := filepath.Join(t.TempDir(), "mirror.git")
				r, err := repo.Init(dir, repo.InitOptions{})
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				res, err := Fetch(context.Background(), FetchOptions{URL: srv.url(up), Repo: r, Prune: true, SSH: opts, Timeout: time.Minute})
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if got, want := mirrored(t, dir), mirrored(t, up); got != want {
					t.Fatalf("%s: mirror's references\n%s\nwant\n%s", name, got, want)
				}
				if res.Head != "refs/heads/main" || res.Pack == "" {
					t.Errorf("%s: result %+v; want HEAD refs/heads/main and a pack", name, res)
				}
				gittest.Git(t, dir, "fsck", "--full", "--strict", "--no-dangling")
			}

			// The upstream moves; a mirror follows.
			dir := filepath.Join(t.TempDir(), "m.git")
			r, err := repo.Init(dir, repo.InitOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			opts := &SSH{KnownHosts: srv.known, KeyFile: srv.key}
			if _, err := Fetch(context.Background(), FetchOptions{URL: srv.url(up), Repo: r, Prune: true, SSH: opts}); err != nil {
				t.Fatal(err)
			}
			work := filepath.Join(t.TempDir(), "work")
			gittest.Git(t, "", "clone", "-q", up, work)
			os.WriteFile(filepath.Join(work, "new.txt"), []byte("new\n"), 0o644)
			gittest.Git(t, work, "add", "new.txt")
			gittest.Git(t, work, "commit", "-q", "-m", "new")
			gittest.Git(t, work, "push", "-q", "origin", "main", "HEAD:refs/heads/added")
			res, err := Fetch(context.Background(), FetchOptions{URL: srv.url(up), Repo: r, Prune: true, SSH: opts})
			if err != nil {
				t.Fatal(err)
			}
			if got, want := mirrored(t, dir), mirrored(t, up); got != want || len(res.Updates) != 2 {
				t.Fatalf("after the upstream moved: %d updates, references\n%s\nwant 2 and\n%s", len(res.Updates), got, want)
			}
			gittest.Git(t, dir, "fsck", "--full", "--strict", "--no-dangling")

			// Send to an empty target over ssh.
			target := filepath.Join(root, "target.git")
			gittest.Git(t, "", "-c", "init.defaultBranch=main", "init", "-q", "--bare", target)
			gittest.Git(t, target, "config", "receive.fsckObjects", "true")
			r.Rescan()
			sres, err := Send(context.Background(), SendOptions{URL: srv.url(target), Repo: r, SSH: opts})
			if err != nil {
				t.Fatal(err)
			}
			if f := sres.Failed(); len(f) > 0 || len(sres.Updates) == 0 {
				t.Fatalf("send: %+v", sres.Updates)
			}
			if got, want := mirrored(t, target), mirrored(t, up); got != want {
				t.Fatalf("target's references\n%s\nwant\n%s", got, want)
			}
			gittest.Git(t, target, "fsck", "--full", "--strict", "--no-dangling")
		})
	}
}

// TestSSHHostKeyRefused: a server whose host key is not the pinned one,
// or is absent from known_hosts, is refused with ErrHostKey before
// anything is sent, and the repository is left as it was.
func TestSSHHostKeyRefused(t *testing.T) {
	srv := startSSHD(t, true)
	up := filepath.Join(t.TempDir(), "up.git")
	gittest.Git(t, "", "-c", "init.defaultBranch=main", "init", "-q", "--bare", up)
	gittest.Generate(t, up, gittest.History{Commits: 3, Branches: 1, Files: 2})

	other := filepath.Join(t.TempDir(), "other")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	opub, _ := os.ReadFile(other + ".pub")
	wrong, _, _, _, err := ssh.ParseAuthorizedKey(opub)
	if err != nil {
		t.Fatal(err)
	}
	wrongKnown := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(wrongKnown, []byte(knownhosts.Line([]string{knownhosts.Normalize(srv.addr)}, wrong)+"\n"), 0o644)
	unknown := filepath.Join(t.TempDir(), "known_hosts_other")
	os.WriteFile(unknown, []byte(knownhosts.Line([]string{"[127.0.0.1]:1"}, srv.hostKey)+"\n"), 0o644)

	for _, c := range []struct {
		name string
		opts *SSH
		want string
	}{
		{"pinned key differs", &SSH{HostKeys: []ssh.PublicKey{wrong}, KeyFile: srv.key}, "not the pinned key"},
		{"known_hosts differs", &SSH{KnownHosts: wrongKnown, KeyFile: srv.key}, "does not match " + wrongKnown + " line 1"},
		{"not in known_hosts", &SSH{KnownHosts: unknown, KeyFile: srv.key}, "is not in " + unknown},
		{"nothing pinned", &SSH{KeyFile: srv.key}, "no known_hosts file or host key configured"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "mirror.git")
			r, err := repo.Init(dir, repo.InitOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			before := snapshot(t, dir)
			_, err = Fetch(context.Background(), FetchOptions{URL: srv.url(up), Repo: r, SSH: c.opts, Timeout: 20 * time.Second})
			if !errors.Is(err, ErrHostKey) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v; want ErrHostKey holding %q", err, c.want)
			}
			if after := snapshot(t, dir); after != before {
				t.Errorf("the mirror changed:\n%s\nwant\n%s", after, before)
			}
			_, err = Send(context.Background(), SendOptions{URL: srv.url(up), Repo: r, SSH: c.opts, Timeout: 20 * time.Second})
			if !errors.Is(err, ErrHostKey) {
				t.Errorf("send: got %v; want ErrHostKey", err)
			}
		})
	}
}

// TestParseSSH reads ssh:// and scp-like URLs as C Git does, and
// leaves local paths and other schemes alone.
func TestParseSSH(t *testing.T) {
	for _, c := range []struct {
		in   string
		want sshTarget
		ok   bool
		bad  bool
	}{
		{"ssh://git@example.org/r.git", sshTarget{"git", "example.org:22", "/r.git"}, true, false},
		{"ssh://git@example.org:2222/a/r.git", sshTarget{"git", "example.org:2222", "/a/r.git"}, true, false},
		{"ssh://git@[::1]:2222/r.git", sshTarget{"git", "[::1]:2222", "/r.git"}, true, false},
		{"ssh://git@example.org/~u/r.git", sshTarget{"git", "example.org:22", "~u/r.git"}, true, false},
		{"git@example.org:r.git", sshTarget{"git", "example.org:22", "r.git"}, true, false},
		{"git@example.org:/srv/r.git", sshTarget{"git", "example.org:22", "/srv/r.git"}, true, false},
		{"ssh://-oProxyCommand=x/r", sshTarget{}, true, true},
		{"ssh://git@example.org", sshTarget{}, true, true},
		{"./a:b", sshTarget{}, false, false},
		{"/srv/a:b", sshTarget{}, false, false},
		{"rsync://h/x", sshTarget{}, false, false},
	} {
		got, ok, err := parseSSH(c.in)
		if ok != c.ok || (err != nil) != c.bad || (!c.bad && c.ok && got != c.want) {
			t.Errorf("parseSSH(%q) = %+v, %v, %v; want %+v, %v, error %v", c.in, got, ok, err, c.want, c.ok, c.bad)
		}
	}
	for in, want := range map[string]string{
		"/srv/r.git":   `'/srv/r.git'`,
		"/it's/r!.git": `'/it'\''s/r'\!'.git'`,
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s; want %s", in, got, want)
		}
	}
}
