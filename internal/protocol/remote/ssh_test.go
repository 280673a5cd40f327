package remote

import (
	"context"
	"crypto/ed25519"
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

// sshServer is gittest's sshd with its host key parsed.
type sshServer struct {
	*gittest.SSHD
	hostKey ssh.PublicKey
}

func startSSHD(t *testing.T, acceptEnv bool) *sshServer {
	t.Helper()
	d := gittest.StartSSHD(t, acceptEnv)
	b, err := os.ReadFile(d.HostKey)
	if err != nil {
		t.Fatal(err)
	}
	hk, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return &sshServer{SSHD: d, hostKey: hk}
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
			tr, err := dial(context.Background(), srv.URL(up), uploadPack, 10*time.Second, false, &SSH{KnownHosts: srv.KnownHosts, KeyFile: srv.Key})
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

			// The server has two host keys: whichever the client
			// knows is the one asked for.
			b, _ := os.ReadFile(srv.HostKeyECDSA)
			ecdsaKey, _, _, _, err := ssh.ParseAuthorizedKey(b)
			if err != nil {
				t.Fatal(err)
			}
			ecdsaKnown := filepath.Join(t.TempDir(), "known_hosts")
			os.WriteFile(ecdsaKnown, []byte(knownhosts.Line([]string{knownhosts.Normalize(srv.Addr)}, ecdsaKey)+"\n"), 0o644)
			for name, opts := range map[string]*SSH{
				"known_hosts":       {KnownHosts: srv.KnownHosts, KeyFile: srv.Key},
				"known_hosts ecdsa": {KnownHosts: ecdsaKnown, KeyFile: srv.Key},
				"pinned key":        {HostKeys: []ssh.PublicKey{srv.hostKey}, KeyFile: srv.Key},
				"pinned ecdsa key":  {HostKeys: []ssh.PublicKey{ecdsaKey}, KeyFile: srv.Key},
			} {
				dir := filepath.Join(t.TempDir(), "mirror.git")
				r, err := repo.Init(dir, repo.InitOptions{})
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				res, err := Fetch(context.Background(), FetchOptions{URL: srv.URL(up), Repo: r, Prune: true, SSH: opts, Timeout: time.Minute})
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
			opts := &SSH{KnownHosts: srv.KnownHosts, KeyFile: srv.Key}
			if _, err := Fetch(context.Background(), FetchOptions{URL: srv.URL(up), Repo: r, Prune: true, SSH: opts}); err != nil {
				t.Fatal(err)
			}
			work := filepath.Join(t.TempDir(), "work")
			gittest.Git(t, "", "clone", "-q", up, work)
			os.WriteFile(filepath.Join(work, "new.txt"), []byte("new\n"), 0o644)
			gittest.Git(t, work, "add", "new.txt")
			gittest.Git(t, work, "commit", "-q", "-m", "new")
			gittest.Git(t, work, "push", "-q", "origin", "main", "HEAD:refs/heads/added")
			res, err := Fetch(context.Background(), FetchOptions{URL: srv.URL(up), Repo: r, Prune: true, SSH: opts})
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
			sres, err := Send(context.Background(), SendOptions{URL: srv.URL(target), Repo: r, SSH: opts})
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
	os.WriteFile(wrongKnown, []byte(knownhosts.Line([]string{knownhosts.Normalize(srv.Addr)}, wrong)+"\n"), 0o644)
	unknown := filepath.Join(t.TempDir(), "known_hosts_other")
	os.WriteFile(unknown, []byte(knownhosts.Line([]string{"[127.0.0.1]:1"}, srv.hostKey)+"\n"), 0o644)

	// A path with no repository: git-upload-pack's own words.
	r, err := repo.Init(filepath.Join(t.TempDir(), "m.git"), repo.InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, err = Fetch(context.Background(), FetchOptions{URL: srv.URL("/nonexistent/r.git"), Repo: r, SSH: &SSH{KnownHosts: srv.KnownHosts, KeyFile: srv.Key}, Timeout: 20 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "does not appear to be a git repository") {
		t.Errorf("fetch of a missing repository: got %v; want git-upload-pack's message", err)
	}

	for _, c := range []struct {
		name string
		opts *SSH
		want string
	}{
		{"pinned key differs", &SSH{HostKeys: []ssh.PublicKey{wrong}, KeyFile: srv.Key}, "not the pinned key"},
		{"known_hosts differs", &SSH{KnownHosts: wrongKnown, KeyFile: srv.Key}, "does not match " + wrongKnown + " line 1"},
		{"not in known_hosts", &SSH{KnownHosts: unknown, KeyFile: srv.Key}, "is not in " + unknown},
		{"nothing pinned", &SSH{KeyFile: srv.Key}, "no known_hosts file or host key configured"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "mirror.git")
			r, err := repo.Init(dir, repo.InitOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			before := snapshot(t, dir)
			_, err = Fetch(context.Background(), FetchOptions{URL: srv.URL(up), Repo: r, SSH: c.opts, Timeout: 20 * time.Second})
			if !errors.Is(err, ErrHostKey) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v; want ErrHostKey holding %q", err, c.want)
			}
			if after := snapshot(t, dir); after != before {
				t.Errorf("the mirror changed:\n%s\nwant\n%s", after, before)
			}
			_, err = Send(context.Background(), SendOptions{URL: srv.URL(up), Repo: r, SSH: c.opts, Timeout: 20 * time.Second})
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

// TestSSHSilentServer: a server that accepts the connection and never
// answers is given up on after the I/O timeout, not waited for.
func TestSSHSilentServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	key := filepath.Join(t.TempDir(), "key")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
		t.Skipf("ssh-keygen: %v\n%s", err, out)
	}
	b, _ := os.ReadFile(key + ".pub")
	pub, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.Init(filepath.Join(t.TempDir(), "m.git"), repo.InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	start := time.Now()
	_, err = Fetch(context.Background(), FetchOptions{URL: "ssh://git@" + l.Addr().String() + "/r.git", Repo: r,
		SSH: &SSH{HostKeys: []ssh.PublicKey{pub}, KeyFile: key}, IOTimeout: 500 * time.Millisecond})
	if err == nil || time.Since(start) > 10*time.Second {
		t.Errorf("got %v after %v; want an error within the I/O timeout", err, time.Since(start))
	}
}

// TestSSHStalledCommand: a server that starts the command and then
// sends nothing is given up on after the I/O timeout, well before the
// fetch's own Timeout.
func TestSSHStalledCommand(t *testing.T) {
	_, hostPriv, _ := ed25519.GenerateKey(nil)
	hostSigner, err := ssh.NewSignerFromKey(hostPriv)
	if err != nil {
		t.Fatal(err)
	}
	_, clientPriv, _ := ed25519.GenerateKey(nil)
	clientSigner, err := ssh.NewSignerFromKey(clientPriv)
	if err != nil {
		t.Fatal(err)
	}
	conf := &ssh.ServerConfig{PublicKeyCallback: func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error) { return nil, nil }}
	conf.AddHostKey(hostSigner)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, chans, reqs, err := ssh.NewServerConn(c, conf)
		if err != nil {
			return
		}
		go ssh.DiscardRequests(reqs)
		for nc := range chans {
			ch, creqs, err := nc.Accept()
			if err != nil {
				return
			}
			defer ch.Close()
			go func() {
				for r := range creqs {
					r.Reply(r.Type == "exec", nil) // started; then silence
				}
			}()
		}
	}()
	r, err := repo.Init(filepath.Join(t.TempDir(), "m.git"), repo.InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	start := time.Now()
	_, err = Fetch(context.Background(), FetchOptions{URL: "ssh://git@" + l.Addr().String() + "/r.git", Repo: r,
		SSH: &SSH{HostKeys: []ssh.PublicKey{hostSigner.PublicKey()}, Signer: clientSigner}, IOTimeout: 500 * time.Millisecond, Timeout: 30 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "nothing received for 500ms") || time.Since(start) > 10*time.Second {
		t.Errorf("got %v after %v; want an error within the I/O timeout", err, time.Since(start))
	}
}
