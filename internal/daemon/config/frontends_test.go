package config

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

const edKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDlI8YxJv+NQicVjrUlhHo0AsIAbIALZT+EGp+ClHYYS flan@laptop"

// bcryptHash is bcrypt("secret") at cost 4.
const bcryptHash = "$2a$04$HDxVclLxMl0grVrsOuA6rO6jD9iYLPoJUQnVdsw48qu3rNPV0s9GS"

const frontendExample = `listen on "/var/run/gotd.sock"
listen ssh on 127.0.0.1 port 2222
listen ssh on "::1" port 2222
listen git on * port 9418
listen http on "*" port 80
listen http on 192.0.2.1 port 443 tls certificate "/etc/ssl/gotd.crt" key "/etc/ssl/private/gotd.key"
ssh hostkey "/var/lib/gotd/key"
connection {
	handshake timeout 10s
	body limit 64M
	memory limit 1G
	limit user flan 8
	limit user anonymous 100
}
account flan {
	group developers
	group ":porters"
	key "` + edKey + `"
}
account "ci-bot" {
}
repository "src" {
	path "/var/git/src.git"
	permit rw :developers
	permit ro anonymous
}
`

func TestFrontends(t *testing.T) {
	sec, err := ParseSecrets("secrets", []byte("password flan '"+bcryptHash+"'\ntoken flan sha256:"+strings.Repeat("ab", 32)+
		"\ntoken ghost sha256:"+strings.Repeat("cd", 32)+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse("fe.conf", []byte(frontendExample), Options{Secrets: sec, UserExists: func(string) bool { return false }})
	if err != nil {
		t.Fatal(err)
	}
	wantSSH := []Listen{{Address: "127.0.0.1", Port: 2222, Line: 2}, {Address: "::1", Port: 2222, Line: 3}}
	wantGit := []Listen{{Port: 9418, Line: 4}}
	wantHTTP := []Listen{{Port: 80, Line: 5}, {Address: "192.0.2.1", Port: 443, Certificate: "/etc/ssl/gotd.crt", Key: "/etc/ssl/private/gotd.key", Line: 6}}
	if !reflect.DeepEqual(c.SSH, wantSSH) || !reflect.DeepEqual(c.Git, wantGit) || !reflect.DeepEqual(c.HTTP, wantHTTP) {
		t.Errorf("listeners:\n%+v\n%+v\n%+v", c.SSH, c.Git, c.HTTP)
	}
	if c.SSH[1].Addr() != "[::1]:2222" || c.Git[0].Addr() != ":9418" {
		t.Errorf("addresses %s %s", c.SSH[1].Addr(), c.Git[0].Addr())
	}
	if c.SSHHostKey != "/var/lib/gotd/key" || c.HandshakeTimeout != 10*time.Second || c.BodyLimit != 64<<20 || c.MemoryLimit != 1<<30 {
		t.Errorf("settings %s %v %d %d", c.SSHHostKey, c.HandshakeTimeout, c.BodyLimit, c.MemoryLimit)
	}
	if d, _ := Parse("d.conf", []byte("repository \"r\" {\n\tpath \"/r\"\n}\n"), Options{}); d == nil || d.MemoryLimit != DefaultMemoryLimit {
		t.Errorf("default memory limit: %+v", d)
	}
	flan := c.FindAccount("flan")
	want := &Account{Name: "flan", Groups: []string{"developers", "porters"}, Keys: []string{edKey}, Line: 15,
		Password: bcryptHash, Tokens: []string{"sha256:" + strings.Repeat("ab", 32)}}
	if !reflect.DeepEqual(flan, want) {
		t.Errorf("account:\n%+v\nwant\n%+v", flan, want)
	}
	if c.FindAccount("ci-bot") == nil || c.FindAccount("nobody") != nil {
		t.Error("FindAccount")
	}
	if c.UserLimits["flan"] != 8 || c.UserLimits["anonymous"] != 100 {
		t.Errorf("limits %v", c.UserLimits)
	}
	// The warning names the secrets file and its line, not the
	// configuration (issue 20).
	if !slices.Contains(c.Warnings, "secrets:3: token for unknown account ghost") {
		t.Errorf("warnings %q; want one for secrets:3", c.Warnings)
	}
	// The rules see an account by name and groups, never by number.
	r := c.Repositories[0]
	if a := r.Access(flan.Identity()); a != ReadWrite {
		t.Errorf("flan: %v", a)
	}
	byNumber := &Repository{Rules: []Rule{{Write: true, Ident: "-1"}}}
	if a := byNumber.Access(c.FindAccount("ci-bot").Identity()); a != NoAccess {
		t.Errorf("account matched by number: %v", a)
	}

	// Defaults, and an OpenBSD file parses as before.
	c, err = Parse("ex.conf", []byte(example), Options{Secrets: secrets(t)})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.SSH)+len(c.Git)+len(c.HTTP)+len(c.Accounts) != 0 || c.SSHHostKey != DefaultHostKey ||
		c.HandshakeTimeout != DefaultHandshakeTimeout || c.BodyLimit != DefaultBodyLimit {
		t.Errorf("defaults: %+v", c)
	}
}

func TestFrontendErrors(t *testing.T) {
	src := `listen ssh on 127.0.0.1 port 70000
listen git on 127.0.0.1 port 9418
listen http on 127.0.0.1 port 9418
listen git on 127.0.0.1 port 9419 tls certificate "/c" key "/k"
listen http on 127.0.0.1 port 443 tls certificate "c.pem" key "/k"
account "bad name" {
}
account 1234 {
}
account anonymous {
}
account flan {
	key "ssh-ed25519 AAAAnot-a-key"
}
account flan {
}
connection body limit 12X
connection memory limit 16M
connection limit user nosuchuser 2
repository "r" {
	path "/r"
}
`
	_, err := Parse("fe.conf", []byte(src), Options{UserExists: func(string) bool { return false }})
	var cerr *Error
	if !errors.As(err, &cerr) {
		t.Fatalf("error %v", err)
	}
	want := []string{
		"fe.conf:1: invalid port 70000",
		"fe.conf:3: duplicate listener 127.0.0.1:9418",
		"fe.conf:4: tls is only for http listeners",
		"fe.conf:5: certificate must be an absolute path: c.pem",
		"fe.conf:6: invalid account name: bad name",
		"fe.conf:8: account name cannot be a number: 1234",
		"fe.conf:10: account name 'anonymous' is reserved for unauthenticated clients",
		"fe.conf:13: invalid public key for account flan",
		"fe.conf:15: duplicate account 'flan'",
		"fe.conf:17: invalid size: 12X",
		"fe.conf:18: memory limit 16777216 below the minimum of 32M",
		"fe.conf:19: user nosuchuser not found",
	}
	if !reflect.DeepEqual(cerr.Problems, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(cerr.Problems, "\n"), strings.Join(want, "\n"))
	}

	for _, bad := range []string{
		"password flan plain\n",
		"password flan '$2a$04$short'\n",
		"password flan '" + bcryptHash + "'\npassword flan '" + bcryptHash + "'\n",
		"token flan sha256:" + strings.Repeat("AB", 32) + "\n",
		"token flan md5:00\n",
	} {
		if _, err := ParseSecrets("s", []byte(bad)); err == nil {
			t.Errorf("secrets accepted: %q", bad)
		}
	}
}

func TestMixedCosts(t *testing.T) {
	hash := func(cost int) string {
		h, err := bcrypt.GenerateFromPassword([]byte("pw"), cost)
		if err != nil {
			t.Fatal(err)
		}
		return string(h)
	}
	four, five := hash(bcrypt.MinCost), hash(bcrypt.MinCost+1)
	for _, c := range []struct {
		accounts []*Account
		want     string
	}{
		{nil, ""},
		{[]*Account{{Name: "a", Password: four}, {Name: "b"}, {Name: "c", Password: four}}, ""},
		{[]*Account{{Name: "a", Password: five}, {Name: "b", Password: four}}, "of b (cost 4)"},
	} {
		got := mixedCosts(c.accounts)
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("got %q; want %q", got, c.want)
		}
	}
}

// TestHostKeys checks that "ssh hostkey" may be given once per key
// file, and that without it the keys are the defaults: ed25519 and
// ECDSA (issue 20: JSch cannot connect to an ed25519-only server).
func TestHostKeys(t *testing.T) {
	const repo = "repository \"r\" {\n\tpath \"/r\"\n}\n"
	for _, c := range []struct {
		name, conf string
		want       []string
		err        string
	}{
		{"default", repo, DefaultHostKeys, ""},
		{"one", "ssh hostkey \"/k/ed\"\n" + repo, []string{"/k/ed"}, ""},
		{"several", "ssh hostkey \"/k/ed\"\nssh hostkey \"/k/ecdsa\"\nssh hostkey \"/k/rsa\"\n" + repo, []string{"/k/ed", "/k/ecdsa", "/k/rsa"}, ""},
		{"twice", "ssh hostkey \"/k/ed\"\nssh hostkey \"/k/ed\"\n" + repo, nil, "t.conf:2: ssh hostkey /k/ed: given twice"},
	} {
		cfg, err := Parse("t.conf", []byte(c.conf), Options{})
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: got error %v; want %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if !reflect.DeepEqual(cfg.SSHHostKeys, c.want) || cfg.SSHHostKey != c.want[0] && c.name != "default" {
			t.Errorf("%s: got %q (first %q); want %q", c.name, cfg.SSHHostKeys, cfg.SSHHostKey, c.want)
		}
	}
}

// TestAccountName: the names an account may have, as the regular
// expression ^[A-Za-z0-9._-]{1,64}$ that accountName replaced.
func TestAccountName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"flan", true}, {"a", true}, {"A.b_c-9", true}, {strings.Repeat("x", 64), true},
		{"", false}, {strings.Repeat("x", 65), false}, {"bad name", false}, {"a/b", false},
		{"é", false}, {"a\x00", false}, {"a\n", false}, {"a:b", false}, {"a@b", false},
	} {
		if got := accountName(tc.name); got != tc.ok {
			t.Errorf("accountName(%q) = %v; want %v", tc.name, got, tc.ok)
		}
	}
}
