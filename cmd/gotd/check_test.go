//go:build linux

package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCheckConfig runs gotd -n on configurations that parse but would
// fail once the daemon runs, each reported with its file and the line
// of the directive concerned and a non-zero exit status (issue 20: gotd
// -n said OK to all of them), and on good ones, which pass.
func TestCheckConfig(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: gotd -n checks the daemon's user's access as root")
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	// Where the daemon's user may reach.
	dir, err := os.MkdirTemp("", "gotd-check-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// Repositories of every kind, made by C Git; those meant to be good
	// belong to the daemon's user.
	git := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("git", args...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	repo := func(name string) string { return filepath.Join(dir, name) }
	git("init", "-q", "--bare", repo("good.git"))
	git("init", "-q", "--bare", repo("rootowned.git"))
	git("init", "-q", repo("work"))
	git("init", "-q", "--bare", repo("v2.git"))
	git("--git-dir", repo("v2.git"), "config", "core.repositoryformatversion", "2")
	git("init", "-q", "--bare", repo("ext.git"))
	git("--git-dir", repo("ext.git"), "config", "core.repositoryformatversion", "1")
	git("--git-dir", repo("ext.git"), "config", "extensions.nosuchextension", "true")
	os.Mkdir(repo("plain"), 0o755)
	for _, r := range []string{"good.git", "work", "v2.git", "ext.git", "plain"} {
		if out, err := exec.Command("chown", "-R", "nobody", repo(r)).CombinedOutput(); err != nil {
			t.Fatalf("chown: %v\n%s", err, out)
		}
	}
	os.WriteFile(repo("afile"), nil, 0o644)
	cert, key := writeCertificate(t, dir, "good")
	otherCert, _ := writeCertificate(t, dir, "other")
	os.WriteFile(repo("badkey"), []byte("not a key\n"), 0o600)
	os.WriteFile(repo("secrets"), nil, 0o600)

	// conf is a configuration with one repository at path and the
	// lines of top, its line 2 the user.
	conf := func(user, top, path, rules string) string {
		return fmt.Sprintf("listen on %q\nuser %s\n%s\nrepository \"r\" {\n\tpath %q\n\t%s\n}\n",
			repo("gotd.sock"), user, top, path, rules)
	}
	ro := "permit ro anonymous"
	rw := "permit rw anonymous"
	notify := "notify {\n\t\turl \"http://127.0.0.1/hook\"\n\t}"
	for _, c := range []struct {
		name string
		conf string
		args []string
		want string // "" for a good configuration
	}{
		{"good", conf("nobody", "", repo("good.git"), rw), nil, ""},
		{"numeric uid limit", conf("nobody", "connection { limit user 1001 4 }", repo("good.git"), rw), nil, ""},
		{"numeric uid limit quoted", conf("nobody", `connection { limit user "1001" 4 }`, repo("good.git"), rw), nil, ""},
		{"read-only repository owned by root", conf("nobody", "", repo("rootowned.git"), ro), nil, ""},
		{"unknown user", conf("nosuchuser-gotd", "", repo("good.git"), ro), nil,
			"c.conf:2: user nosuchuser-gotd does not exist"},
		{"missing TLS files", conf("nobody", fmt.Sprintf("listen http on 127.0.0.1 port 1 tls certificate %q key %q", repo("none.pem"), repo("none.key")), repo("good.git"), ro), nil,
			"c.conf:3: listen http on 127.0.0.1:1: tls: open " + repo("none.pem") + ": no such file or directory"},
		{"TLS certificate and key not a pair", conf("nobody", fmt.Sprintf("listen http on 127.0.0.1 port 1 tls certificate %q key %q", otherCert, key), repo("good.git"), ro), nil,
			"c.conf:3: listen http on 127.0.0.1:1: tls: private key does not match public key"},
		{"good TLS", conf("nobody", fmt.Sprintf("listen http on 127.0.0.1 port 1 tls certificate %q key %q", cert, key), repo("good.git"), ro), nil, ""},
		{"bad host key", conf("nobody", fmt.Sprintf("listen ssh on 127.0.0.1 port 1\nssh hostkey %q", repo("badkey")), repo("good.git"), ro), nil,
			"c.conf:4: ssh hostkey: " + repo("badkey") + ": ssh: no key found"},
		{"host key directory cannot be made", conf("nobody", fmt.Sprintf("listen ssh on 127.0.0.1 port 1\nssh hostkey %q", repo("afile/keys/key")), repo("good.git"), ro), nil,
			"c.conf:4: ssh hostkey: cannot make " + repo("afile/keys") + ": " + repo("afile") + " is not a directory"},
		{"host key to be made", conf("nobody", fmt.Sprintf("listen ssh on 127.0.0.1 port 1\nssh hostkey %q", repo("keys/key")), repo("good.git"), ro), nil, ""},
		{"secrets file missing", conf("nobody", "", repo("good.git"), ro), []string{"-s", repo("nosecrets")}, "secrets file: stat " + repo("nosecrets") + ": no such file or directory"},
		{"secrets file there", conf("nobody", "", repo("good.git"), ro), []string{"-s", repo("secrets")}, ""},
		{"missing repository", conf("nobody", "", repo("none.git"), ro), nil,
			"c.conf:4: repository \"r\": " + repo("none.git") + " does not exist"},
		{"not a repository", conf("nobody", "", repo("plain"), ro), nil,
			"c.conf:4: repository \"r\": " + repo("plain") + " is not a Git repository"},
		{"work tree", conf("nobody", "", repo("work"), ro), nil,
			"c.conf:4: repository \"r\": " + repo("work") + " is a work tree, not a bare repository"},
		{"repository of a work tree", conf("nobody", "", repo("work/.git"), ro), nil,
			"c.conf:4: repository \"r\": " + repo("work/.git") + " is not a bare repository (core.bare is false)"},
		{"unsupported format version", conf("nobody", "", repo("v2.git"), ro), nil,
			"c.conf:4: repository \"r\": " + repo("v2.git") + ": unsupported repositoryformatversion \"2\""},
		{"unsupported extension", conf("nobody", "", repo("ext.git"), ro), nil,
			"c.conf:4: repository \"r\": " + repo("ext.git") + ": unsupported repository extension \"nosuchextension\""},
		{"not writable by the daemon's user", conf("nobody", "", repo("rootowned.git"), rw), nil,
			"c.conf:4: repository \"r\": the daemon's user nobody cannot write " + repo("rootowned.git") + ", though a rule allows pushes"},
		{"notify spool cannot be made", conf("nobody", fmt.Sprintf("notify spool %q", repo("afile/spool")), repo("good.git"), ro+"\n\t"+notify), nil,
			"c.conf:3: notify spool: cannot make " + repo("afile/spool") + ": " + repo("afile") + " is not a directory"},
		{"upkeep settings", conf("nobody", "upkeep {\n\tpacks 8\n\tgrace 7d\n}", repo("good.git"), rw+"\n\tupkeep off"), nil, ""},
		{"upkeep loose references", conf("nobody", "upkeep {\n\tloose references 100\n}", repo("good.git"), rw), nil, ""},
		{"upkeep loose references out of range", conf("nobody", "upkeep {\n\tloose references 0\n}", repo("good.git"), rw), nil,
			"c.conf:4: upkeep loose references threshold 0 out of range 1-16777216"},
		{"upkeep grace too short", conf("nobody", "upkeep {\n\tgrace 5m\n}", repo("good.git"), rw), nil,
			"c.conf:4: upkeep grace period shorter than 1h0m0s"},
		{"upkeep twice in a repository", conf("nobody", "", repo("good.git"), rw+"\n\tupkeep off\n\tupkeep on"), nil,
			"c.conf:8: upkeep given twice (first on line 7)"},
		{"good mirror", conf("nobody", "", repo("good.git"), ro+"\n\tmirror from \"git://127.0.0.1/up.git\" every 5m"), nil, ""},
		{"mirror not writable by the daemon's user", conf("nobody", "", repo("rootowned.git"), ro+"\n\tmirror from \"git://127.0.0.1/up.git\""), nil,
			"c.conf:7: repository \"r\": the daemon's user nobody cannot write " + repo("rootowned.git/objects") + ", which the mirror's syncs do"},
		{"mirror key missing", conf("nobody", "", repo("good.git"), ro+fmt.Sprintf("\n\tmirror from \"ssh://git@127.0.0.1/up.git\" key %q known hosts %q", repo("nokey"), repo("afile"))), nil,
			"c.conf:7: repository \"r\": mirror key: stat " + repo("nokey") + ": no such file or directory"},
		{"mirror key not a key", conf("nobody", "", repo("good.git"), ro+fmt.Sprintf("\n\tmirror from \"ssh://git@127.0.0.1/up.git\" key %q known hosts %q", repo("afile"), repo("afile"))), nil,
			"c.conf:7: repository \"r\": mirror key: " + repo("afile") + ": ssh: no key found"},
		{"mirror key unreadable by the daemon's user", conf("nobody", "", repo("good.git"), ro+fmt.Sprintf("\n\tmirror from \"ssh://git@127.0.0.1/up.git\" key %q known hosts %q", repo("badkey"), repo("afile"))), nil,
			"c.conf:7: repository \"r\": mirror key: the daemon's user nobody cannot read " + repo("badkey")},
		{"notify spool to be made", conf("nobody", fmt.Sprintf("notify spool %q", repo("var/spool")), repo("good.git"), ro+"\n\t"+notify), nil, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, "c.conf")
			if err := os.WriteFile(path, []byte(c.conf), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(self, append([]string{"-n", "-f", path}, c.args...)...)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "GOTD_TEST_MAIN=1")
			out, err := cmd.CombinedOutput()
			got := strings.ReplaceAll(string(out), path, "c.conf")
			switch {
			case c.want == "" && err != nil:
				t.Errorf("got %v:\n%s\nwant configuration OK", err, got)
			case c.want == "" && !strings.Contains(got, "configuration OK"):
				t.Errorf("got:\n%s\nwant configuration OK", got)
			case c.want != "" && err == nil:
				t.Errorf("got exit status 0:\n%s\nwant an error: %s", got, c.want)
			case c.want != "" && !strings.Contains(got, c.want):
				t.Errorf("got:\n%s\nwant: %s", got, c.want)
			}
		})
	}
}

// writeCertificate writes a self-signed certificate and its key under
// dir and returns their paths.
func writeCertificate(t *testing.T, dir, name string) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
	os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600)
	return cert, key
}
