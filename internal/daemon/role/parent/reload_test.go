package parent

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"gotd/internal/daemon/config"
	"gotd/internal/daemon/ipc"
)

// fakeSource serves a reload's files from memory (written to private
// temporary files as they are opened; a path it lacks is unreadable)
// and binds nothing: the addresses in busy fail as a taken port does,
// the others get /dev/null.
type fakeSource struct {
	t      *testing.T
	dir    string
	data   map[string]string // by path; /etc/gotd.conf is the configuration
	busy   map[string]bool
	opened []*os.File
}

func (s *fakeSource) files() (ReloadFiles, error) {
	f, err := s.open("/etc/gotd.conf")
	return ReloadFiles{Config: f, ConfigPath: "/etc/gotd.conf"}, err
}

func (s *fakeSource) open(path string) (*os.File, error) {
	data, ok := s.data[path]
	if !ok {
		return nil, fmt.Errorf("open %s: %w", path, os.ErrPermission)
	}
	f, err := os.CreateTemp(s.dir, "file")
	if err != nil {
		s.t.Fatal(err)
	}
	f.WriteString(data)
	s.opened = append(s.opened, f)
	return f, nil
}

func (s *fakeSource) bind(addr string) (*os.File, error) {
	if s.busy[addr] {
		return nil, errors.New("address already in use")
	}
	f, err := os.Open(os.DevNull)
	if err != nil {
		s.t.Fatal(err)
	}
	return f, nil
}

func (s *fakeSource) close() {
	for _, f := range s.opened {
		f.Close()
	}
	s.opened = nil
}

// testConf is a configuration with the three front-ends; gitPort
// varies.
func testConf(listenOn string, gitPort int) string {
	return fmt.Sprintf(`listen on %q
listen ssh on 127.0.0.1 port 2222
listen git on 127.0.0.1 port %d
listen http on 127.0.0.1 port 8443 tls certificate "/etc/ssl/gotd.crt" key "/etc/ssl/gotd.key"
ssh hostkey "/k/ed25519"
ssh hostkey "/k/ecdsa"
repository "r" {
	path "/r.git"
}
`, listenOn, gitPort)
}

// testPEMs makes a private key for each host key type and a
// self-signed certificate and its key, PEM-encoded.
func testPEMs(t *testing.T) (ed, ec, cert, certKey string) {
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	ecPriv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for i, k := range []any{edPriv, ecPriv} {
		b, err := ssh.MarshalPrivateKey(k, "")
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			ed = string(pem.EncodeToMemory(b))
		} else {
			ec = string(pem.EncodeToMemory(b))
		}
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gotd"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &ecPriv.PublicKey, ecPriv)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalPKCS8PrivateKey(ecPriv)
	return ed, ec, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}))
}

// TestPrepareReload checks what a reload works out from the files it
// reads: the changes it reports, what it refuses by name, and which
// front-ends it starts anew (issue 20).
func TestPrepareReload(t *testing.T) {
	ed, ec, cert, certKey := testPEMs(t)
	_, ec2, cert2, certKey2 := testPEMs(t)
	base := map[string]string{
		"/etc/gotd.conf": testConf("/run/gotd.sock", 9418),
		"/k/ed25519":     ed, "/k/ecdsa": ec,
		"/etc/ssl/gotd.crt": cert, "/etc/ssl/gotd.key": certKey,
	}
	d := &daemon{opts: Options{Reload: func(rf ReloadFiles) (*config.Config, error) {
		data, err := config.ReadAll(rf.Config, config.MaxFile)
		if err != nil {
			return nil, err
		}
		return config.Parse(rf.ConfigPath, data, config.Options{})
	}}}
	with := func(changes map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for k, v := range changes {
			if v == "" {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		return m
	}
	for _, c := range []struct {
		name     string
		files    map[string]string
		busy     string
		changes  []string
		failures []string
		replace  []string // roles started anew
		noGit    bool     // no git front-end after the reload
	}{
		{name: "unchanged", files: base},
		{name: "port moved", files: with(map[string]string{"/etc/gotd.conf": testConf("/run/gotd.sock", 9419)}),
			changes: []string{"listen git on 127.0.0.1 port 9419: added", "listen git on 127.0.0.1 port 9418: removed, closed once its clients are done"},
			replace: []string{RoleGitD}},
		{name: "port taken", files: with(map[string]string{"/etc/gotd.conf": testConf("/run/gotd.sock", 9419)}), busy: "127.0.0.1:9419",
			failures: []string{"listen git on 127.0.0.1 port 9419: cannot bind: address already in use", "listen git: listeners left as they were"}},
		{name: "certificate replaced", files: with(map[string]string{"/etc/ssl/gotd.crt": cert2, "/etc/ssl/gotd.key": certKey2}),
			changes: []string{"listen http on 127.0.0.1 port 8443: certificate read anew, changed"}, replace: []string{RoleHTTPD}},
		{name: "certificate unreadable", files: with(map[string]string{"/etc/ssl/gotd.key": ""}),
			failures: []string{"listen http on 127.0.0.1 port 8443: certificate: open /etc/ssl/gotd.key: permission denied: the one read before is served"}},
		{name: "certificate and another key", files: with(map[string]string{"/etc/ssl/gotd.key": certKey2}),
			failures: []string{"listen http on 127.0.0.1 port 8443: certificate: /etc/ssl/gotd.crt, /etc/ssl/gotd.key: tls: private key does not match public key: the one read before is served"}},
		{name: "host key replaced", files: with(map[string]string{"/k/ecdsa": ec2}),
			changes: []string{"ssh host keys: read anew, changed"}, replace: []string{RoleSSHD}},
		{name: "two keys of a type", files: with(map[string]string{"/k/ecdsa": ed}),
			failures: []string{"ssh hostkey /k/ecdsa: a ssh-ed25519 key, as /k/ed25519 is: one key of each type: the keys read before are served"}},
		{name: "repository changed", files: with(map[string]string{"/etc/gotd.conf": strings.Replace(testConf("/run/gotd.sock", 9418), "\tpath \"/r.git\"\n", "\tpath \"/r.git\"\n\tpermit ro anonymous\n", 1)}),
			changes: []string{`repository "r": changed`}},
		{name: "listen on", files: with(map[string]string{"/etc/gotd.conf": testConf("/run/other.sock", 9418)}),
			failures: []string{"listen on /run/other.sock: changed, needs a restart"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := &fakeSource{t: t, dir: t.TempDir(), data: base}
			defer src.close()
			// The running state: the base files, read as at start.
			rf, _ := src.files()
			cfg, err := d.opts.Reload(rf)
			if err != nil {
				t.Fatal(err)
			}
			keys, err := HostKeys(cfg, src.open)
			if err != nil {
				t.Fatal(err)
			}
			tc, err := TLSCredential(cfg.HTTP[0], 0, src.open)
			if err != nil {
				t.Fatal(err)
			}
			held := func() *os.File { f, _ := os.Open(os.DevNull); return f }
			b := &reloadBase{cfg: cfg, fes: map[string]Frontend{
				RoleSSHD:  {Role: RoleSSHD, Listeners: []*os.File{held()}, Listens: cfg.SSH, Credentials: keys},
				RoleGitD:  {Role: RoleGitD, Listeners: []*os.File{held()}, Listens: cfg.Git},
				RoleHTTPD: {Role: RoleHTTPD, Listeners: []*os.File{held()}, Listens: cfg.HTTP, Credentials: []ipc.Credential{tc}},
			}}
			src.data = c.files
			src.busy = map[string]bool{c.busy: true}
			p, err := d.prepare(src, b)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(p.changes, c.changes) {
				t.Errorf("changes:\n%s\nwant\n%s", strings.Join(p.changes, "\n"), strings.Join(c.changes, "\n"))
			}
			if !slices.Equal(p.failures, c.failures) {
				t.Errorf("failures:\n%s\nwant\n%s", strings.Join(p.failures, "\n"), strings.Join(c.failures, "\n"))
			}
			var replace []string
			for _, r := range frontendRoles {
				if p.replace[r.role] {
					replace = append(replace, r.role)
				}
			}
			if !slices.Equal(replace, c.replace) {
				t.Errorf("started anew: got %q; want %q", replace, c.replace)
			}
			if (p.fes[RoleGitD] == nil) != c.noGit {
				t.Errorf("git front-end: got %v; want none: %v", p.fes[RoleGitD], c.noGit)
			}
			if p.cfg.ListenOn != "/run/gotd.sock" {
				t.Errorf("listen on: got %s; want the running one", p.cfg.ListenOn)
			}
		})
	}
}
