package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gotd/internal/daemon/webhook"
)

// A file in the style of OpenBSD gotd.conf(5)'s examples, which must
// parse unchanged.
const example = `# Run as the default user _gotd
user _gotd
listen on "/var/run/gotd.sock"

# This repository can be accessed via ssh://user@example.com/src
repository "src" {
	path "/var/git/src.git"
	permit rw flan_hacker
	permit rw :developers
	permit ro anonymous

	protect branch "main"
	protect tag namespace "refs/tags/"
}

# This repository can be accessed via
# ssh://user@example.com/openbsd/ports
repository "openbsd/ports" {
	path "/var/git/openbsd/ports.git"
	permit rw :porters
	permit ro anonymous
	deny flan_hacker

	protect {
		branch "main"
		tag namespace "refs/tags/"
		branch namespace "refs/heads/rel/"
	}

	notify {
		branch "main"
		reference namespace "refs/tags/"
		email to openbsd-ports-changes@example.com
		email from gotd@example.com to "ports@example.com" reply to "ports@example.com" relay "mail.example.com" port 2525
		url "https://ci.example.com/hook" auth ci hmac ci
	}
}

# Use a larger request timeout value:
connection request timeout 2h
notify spool "/var/spool/gotd"
notify timeout 10s

# Some users are granted a higher concurrent connection limit:
connection {
	limit user "flan_hacker" 16
	limit user "anonymous" 32
}
`

func secrets(t *testing.T) *Secrets {
	s, err := ParseSecrets("secrets", []byte("# comment\nauth ci user \"bot\" password 's3 cret'\nhmac ci abc\\ def\n\n"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestParseExample(t *testing.T) {
	c, err := Parse("gotd.conf", []byte(example), Options{Secrets: secrets(t)})
	if err != nil {
		t.Fatal(err)
	}
	if c.User != "_gotd" || c.ListenOn != "/var/run/gotd.sock" || c.RequestTimeout != 2*time.Hour {
		t.Errorf("globals: %+v", c)
	}
	if c.UserLimit("flan_hacker", 1000) != 16 || c.UserLimit("anonymous", 1) != 32 || c.UserLimit("other", 1001) != DefaultUserLimit {
		t.Errorf("limits: %v", c.UserLimits)
	}
	if len(c.Repositories) != 2 {
		t.Fatalf("%d repositories", len(c.Repositories))
	}
	ports := c.FindRepository("openbsd/ports.git")
	if ports == nil || ports.Path != "/var/git/openbsd/ports.git" || c.FindRepository("/src") == nil || c.FindRepository("nope") != nil {
		t.Fatalf("FindRepository: %+v", ports)
	}
	wantProtect := Protect{Branches: []string{"refs/heads/main"}, TagNamespaces: []string{"refs/tags/"}, BranchNamespaces: []string{"refs/heads/rel/"}}
	if !reflect.DeepEqual(ports.Protect, wantProtect) {
		t.Errorf("protect: %+v", ports.Protect)
	}
	n := ports.Notify
	if !reflect.DeepEqual(n.Branches, []string{"refs/heads/main"}) || !reflect.DeepEqual(n.Namespaces, []string{"refs/tags/"}) ||
		len(n.Emails) != 2 || n.Emails[1] != (Email{From: "gotd@example.com", To: "ports@example.com", ReplyTo: "ports@example.com", Relay: "mail.example.com", Port: "2525"}) ||
		len(n.URLs) != 1 || n.URLs[0] != (URL{URL: "https://ci.example.com/hook", Auth: "ci", HMAC: "ci", AuthUser: "bot", AuthPassword: "s3 cret", HMACKey: "abc def"}) {
		t.Errorf("notify: %+v", n)
	}
	if c.NotifySpool != "/var/spool/gotd" || c.NotifyTimeout != 10*time.Second || !c.NotifyTargets() {
		t.Errorf("notify settings: %q %v %v", c.NotifySpool, c.NotifyTimeout, c.NotifyTargets())
	}
	for ref, want := range map[string]bool{"refs/heads/main": true, "refs/heads/mainline": false, "refs/tags/v1": true, "refs/notes/x": false} {
		if n.Wants(ref) != want {
			t.Errorf("Wants(%s) = %v", ref, !want)
		}
	}
	if all := (&Notify{}); !all.Wants("refs/notes/x") || all.HasTargets() {
		t.Errorf("a notify block without filters or targets")
	}
	// The paths do not exist here: warnings, not errors.
	if len(c.Warnings) != 2 {
		t.Errorf("warnings: %q", c.Warnings)
	}
}

func TestAccess(t *testing.T) {
	c, err := Parse("gotd.conf", []byte(example), Options{Secrets: secrets(t)})
	if err != nil {
		t.Fatal(err)
	}
	src, ports := c.FindRepository("src"), c.FindRepository("openbsd/ports")
	flan := Identity{User: "flan_hacker", UID: 1000, Groups: []string{"porters"}}
	dev := Identity{User: "dev", UID: 1001, GIDs: []int{50}, Groups: []string{"developers"}}
	nobody := Identity{User: "nobody", UID: 1002}
	anon := Identity{Anonymous: true}
	for _, tc := range []struct {
		r    *Repository
		id   Identity
		want Access
	}{
		{src, flan, ReadWrite}, {src, dev, ReadWrite}, {src, nobody, NoAccess}, {src, anon, Read},
		// Last matching rule wins: flan is a porter but denied after.
		{ports, flan, Denied}, {ports, dev, NoAccess}, {ports, anon, Read},
		{ports, Identity{User: "x", UID: 7, Groups: []string{"porters"}}, ReadWrite},
	} {
		if got := tc.r.Access(tc.id); got != tc.want {
			t.Errorf("%s: %+v: access %v, want %v", tc.r.Name, tc.id, got, tc.want)
		}
	}
	byGID, _ := Parse("x", []byte("repository r {\npath \"/r\"\npermit ro \":50\"\npermit rw 1001\n}\n"), Options{})
	r := byGID.Repositories[0]
	if r.Access(Identity{User: "a", UID: 9, GIDs: []int{50}}) != Read || r.Access(dev) != ReadWrite {
		t.Error("numeric uid or gid rules do not match")
	}
}

func TestMacros(t *testing.T) {
	src := `sock = "/run/gotd.sock"
who = flan
max = 8
listen on $sock
repository "r" {
	path "/r"
	permit rw $who
}
connection limit user $who $max
unused = 1
`
	c, err := Parse("m.conf", []byte(src), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c.ListenOn != "/run/gotd.sock" || c.Repositories[0].Rules[0].Ident != "flan" || c.UserLimits["flan"] != 8 {
		t.Errorf("macros not expanded: %+v %+v", c, c.Repositories[0])
	}
	if !strings.Contains(strings.Join(c.Warnings, "\n"), "m.conf:10: macro 'unused' not used") {
		t.Errorf("warnings: %q", c.Warnings)
	}
}

func TestErrors(t *testing.T) {
	src := `listen on relative.sock
user root
connection request timeout 0
connection limit user flan 5000
repository "a" {
	path "/a"
	permit maybe flan
	frobnicate
	protect tag namespace "refs/tags"
	protect branch namespace "refs/tags/"
	notify {
		url "ftp://x/y"
		url "http://h/p" auth x
		email to a@example.com
		email to a@example.com
		url "https://h/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	}
}
repository "a" {
	path "/b"
}
repository "nopath" {
}
$undefined
`
	_, err := Parse("bad.conf", []byte(src), Options{Secrets: &Secrets{}, UserExists: func(string) bool { return true }})
	var cerr *Error
	if !errors.As(err, &cerr) {
		t.Fatalf("error %v", err)
	}
	want := []string{
		"bad.conf:1: listen on must be an absolute path: relative.sock",
		"bad.conf:2: cannot run gotd as the superuser",
		"bad.conf:3: invalid timeout: 0",
		"bad.conf:4: connection limit 5000 for user flan out of range 1-1024",
		"bad.conf:7: syntax error: expected 'ro' or 'rw', found 'maybe'",
		"bad.conf:8: syntax error: unexpected 'frobnicate' in repository options",
		"bad.conf:10: duplicate protected namespace refs/tags/",
		"bad.conf:12: invalid notification URL (http:// or https:// only): ftp://x/y",
		"bad.conf:13: refusing to send credentials over plain http without 'insecure': http://h/p",
		"bad.conf:13: no auth secret 'x' defined",
		"bad.conf:15: duplicate email notification recipient a@example.com",
		"bad.conf:16: notification URL longer than 2048 bytes",
		"bad.conf:24: macro 'undefined' not defined",
		"bad.conf:19: duplicate repository 'a'",
		"bad.conf:22: repository \"nopath\": no path provided",
	}
	if !reflect.DeepEqual(cerr.Problems, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(cerr.Problems, "\n"), strings.Join(want, "\n"))
	}
	if _, err := Parse("ns.conf", []byte("repository r {\npath \"/r\"\nprotect branch namespace heads/\n}\n"), Options{}); err == nil ||
		err.Error() != "ns.conf:3: reference namespace must begin with \"refs/\": heads/" {
		t.Errorf("namespace error: %v", err)
	}
	for u, want := range map[string]string{
		"https://bob:pw@h/p": "credentials in a notification URL: give them in the secrets file with 'auth': h",
		"https://h/p q":      "invalid notification URL: https://h/p q",
		"https://h/%zz":      "invalid notification URL: https://h/%zz",
		"https://h/p\x01":    "invalid notification URL: https://h/p\x01",
	} {
		src := "repository r {\npath \"/r\"\nnotify {\nurl \"" + u + "\"\n}\n}\n"
		if _, err := Parse("u.conf", []byte(src), Options{}); err == nil || err.Error() != "u.conf:4: "+want {
			t.Errorf("url %q: %v; want %s", u, err, want)
		}
	}
	if _, err := Parse("empty.conf", []byte("# nothing\n"), Options{}); err == nil || !strings.Contains(err.Error(), "no repository defined") {
		t.Errorf("empty file: %v", err)
	}
}

func TestParseFile(t *testing.T) {
	dir := t.TempDir()
	repoDir := filepath.Join(dir, "r.git")
	os.Mkdir(repoDir, 0o755)
	path := filepath.Join(dir, "gotd.conf")
	os.WriteFile(path, []byte("repository r {\n\tpath \""+repoDir+"\"\n}\n"), 0o644)
	c, err := ParseFile(path, Options{})
	if err != nil || len(c.Warnings) != 0 {
		t.Fatalf("%v %q", err, c.Warnings)
	}
	link := filepath.Join(dir, "link.conf")
	os.Symlink(path, link)
	if _, err := ParseFile(link, Options{}); err == nil {
		t.Error("a symbolic link was accepted")
	}
}

func TestSecrets(t *testing.T) {
	s := secrets(t)
	if *s.Auth["ci"] != (AuthSecret{User: "bot", Password: "s3 cret"}) || s.HMAC["ci"] != "abc def" {
		t.Errorf("%+v %+v", s.Auth["ci"], s.HMAC)
	}
	_, err := ParseSecrets("s", []byte("hmac a b\nhmac a c\nauth x user y\nauth 'open\n"))
	if err == nil || err.Error() != "s:2: duplicate hmac entry a\ns:3: syntax error\ns:4: unterminated quoted string" {
		t.Errorf("error: %v", err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "secrets")
	os.WriteFile(path, []byte("hmac a b\n"), 0o644)
	if _, err := ParseSecretsFile(path, true); err == nil && os.Getuid() != 0 {
		t.Error("a file not owned by root was accepted")
	}
	if os.Getuid() == 0 {
		if _, err := ParseSecretsFile(path, true); err == nil {
			t.Error("a world-readable secrets file was accepted")
		}
		os.Chmod(path, 0o600)
		if _, err := ParseSecretsFile(path, true); err != nil {
			t.Error(err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(example))
	f.Add([]byte("a = \"b\"\nlisten on $a\nrepository \"x\" { path \"/x\"\n}\n"))
	f.Add([]byte(frontendExample))
	f.Add([]byte("connection {\nrequest timeout 5s\nrequest deadline 2h\nminimum rate 4K per 10s\n}\n"))
	f.Add([]byte("repository \"r\" {\npath \"/r\"\ndescription \"a <b> c\"\n}\n"))
	f.Add([]byte("repository \"r\" {\npath \"/r\"\nhide namespace refs/x\npush {\ndeny create namespace \"refs/tags/\" :a b 7\n" +
		"max blob size 1K except c\ndeny binary\ndeny merge branch main except :m\nmax pack size 2G\nmax objects 9\nmin free space 3M\nmax object size 1G\n}\n}\n"))
	f.Add([]byte("connection {\nlimit pending 9\nlimit pending user 2\nlimit pending address 3\nshutdown timeout 1m\n}\nrepository r {\npath \"/r\"\n}\n"))
	f.Add([]byte("repository r {\npath \"/r\"\nnotify {\nurl \"https://h/b/${repo}?r=${ref}\" method PUT body json '{\"t\": \"${subject}\", \"n\": ${commits}}'\n" +
		"url \"http://h/g/${branch}\" method GET\nurl \"http://h/f\" body form \"a=${ref}&b=1\"\n}\n}\n"))
	f.Add([]byte("upkeep {\npacks 8\nloose objects 50\ninterval 10m\ngrace 7d\n}\nrepository r {\npath \"/r\"\nupkeep off\n}\n"))
	f.Add([]byte("mirror spool \"/s\"\nrepository r {\npath \"/r\"\nmirror to \"git@h:r.git\" key \"/k\" known hosts \"/kh\"\nmirror to \"https://h/r\" auth a\n}\n"))
	f.Add([]byte("repository r {\npath \"/r\"\nmirror from \"ssh://git@h:2222/r.git\" every 30m key \"/k\" known hosts \"/kh\"\n}\n" +
		"repository s {\npath \"/s\"\nmirror from \"git@h:s.git\" host key \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\"\n}\n" +
		"repository t {\npath \"/t\"\nmirror from \"https://h/t.git\" auth a\n}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.conf", data, Options{Secrets: &Secrets{}})
		if err != nil {
			var cerr *Error
			if !errors.As(err, &cerr) || len(cerr.Problems) == 0 {
				t.Fatalf("error %v has no problems listed", err)
			}
			return
		}
		if len(c.Repositories) == 0 || c.RequestTimeout <= 0 || !filepath.IsAbs(c.ListenOn) || c.ShutdownTimeout <= 0 {
			t.Fatalf("accepted an invalid configuration: %+v", c)
		}
		for _, r := range c.Repositories {
			// What the fetch process is handed.
			if m := r.Mirror; m != nil && (m.Every < MinMirrorEvery || m.URL == "" || len(m.URL) > maxMirrorURL ||
				strings.ContainsAny(m.URL, " \n\x00\"") || len(m.HostKeys) > maxHostKeys || m.Auth != "" && !strings.HasPrefix(m.URL, "https://")) {
				t.Fatalf("accepted mirror %+v", m)
			}
			for _, u := range r.Notify.URLs {
				// What the notify process parses again.
				k, ok := webhook.BodyKind(u.BodyKind)
				if _, err := webhook.Parse(webhook.URL, u.URL); err != nil || u.BodyKind != "" && !ok {
					t.Fatalf("accepted url target %+v: %v", u, err)
				}
				if _, err := webhook.Parse(k, u.Body); u.BodyKind != "" && err != nil {
					t.Fatalf("accepted url target %+v: %v", u, err)
				}
			}
		}
		for _, n := range []int{c.PendingTotal, c.PendingPerUser, c.PendingPerAddress} {
			if n < 1 || n > MaxPending {
				t.Fatalf("pending limit %d out of range", n)
			}
		}
		for _, ls := range [][]Listen{c.SSH, c.Git, c.HTTP} {
			for _, l := range ls {
				if l.Port < 1 || l.Port > 65535 {
					t.Fatalf("listener %+v", l)
				}
			}
		}
		for _, r := range c.Repositories {
			ps := &r.Push
			if ps.MaxBlobSize < 0 || ps.MaxPackSize < 0 || ps.MaxObjects < 0 || ps.MaxObjects > 1<<32-1 || ps.MinFree < 0 || ps.MaxObjectSize < 0 || r.startSize() > maxStartLists {
				t.Fatalf("push policy %+v", ps)
			}
			for _, ns := range r.Hidden {
				if !strings.HasPrefix(ns, "refs/") || !strings.HasSuffix(ns, "/") || ns == "refs/" || ns == "refs/heads/" {
					t.Fatalf("hidden namespace %q", ns)
				}
			}
		}
		if c.HandshakeTimeout <= 0 || c.BodyLimit <= 0 {
			t.Fatalf("settings %v %d", c.HandshakeTimeout, c.BodyLimit)
		}
		for _, r := range c.Repositories {
			if r.Path == "" || !filepath.IsAbs(r.Path) {
				t.Fatalf("repository %q with path %q", r.Name, r.Path)
			}
		}
	})
}

func TestPushPolicy(t *testing.T) {
	src := `repository "r" {
	path "/r"
	permit rw :developers
	hide namespace "refs/internal"
	hide namespace "refs/tags/secret/"
	push {
		deny create namespace "refs/tags/"
		permit create namespace "refs/tags/" :maintainers root
		deny delete namespace "refs/heads/"
		deny delete namespace "refs/heads/" except alice
		max blob size 10M except :artists
		deny binary except :artists alice
		deny merge branch main except :maintainers
		deny merge namespace "refs/heads/release/"
		rebase branch main except :maintainers
		rebase namespace "refs/heads/team/"
		max rebase commits 20
		max pack size 1G
		max objects 100000
		min free space 512M
		max object size 300M
	}
	push max blob size 20M
}
`
	c, err := Parse("p.conf", []byte(src), Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := c.Repositories[0]
	if !reflect.DeepEqual(r.Hidden, []string{"refs/internal/", "refs/tags/secret/"}) {
		t.Errorf("hidden: %q", r.Hidden)
	}
	p := &r.Push
	want := Push{
		Refs: []RefRule{{Deny: true, Namespace: "refs/tags/"}, {Namespace: "refs/tags/", Idents: []string{":maintainers", "root"}},
			{Deny: true, Delete: true, Namespace: "refs/heads/"}, {Deny: true, Delete: true, Namespace: "refs/heads/", Except: []string{"alice"}}},
		MaxBlobSize: 20 << 20, BlobExempt: nil, DenyBinary: true, BinaryExempt: []string{":artists", "alice"},
		Merges:      []MergeRule{{Ref: "refs/heads/main", Exempt: []string{":maintainers"}}, {Ref: "refs/heads/release/"}},
		Rebases:     []MergeRule{{Ref: "refs/heads/main", Exempt: []string{":maintainers"}}, {Ref: "refs/heads/team/"}},
		MaxRebase:   20,
		MaxPackSize: 1 << 30, MaxObjects: 100000, MinFree: 512 << 20, MaxObjectSize: 300 << 20,
	}
	if !reflect.DeepEqual(*p, want) {
		t.Errorf("push:\n%+v\nwant:\n%+v", *p, want)
	}

	if !p.NamesGroups() || (&Push{Refs: []RefRule{{Namespace: "refs/tags/", Idents: []string{"alice"}, Except: []string{"7"}}}}).NamesGroups() {
		t.Error("NamesGroups: groups are named by the first, not by the second")
	}

	// Resolved for a pusher: the rules naming others are left out,
	// exemptions applied.
	alice := Identity{User: "alice", UID: 1000, Groups: []string{"developers"}}
	got := p.For(alice)
	if len(got.Refs) != 2 || got.Refs[0].Namespace != "refs/tags/" || !got.Refs[0].Deny || !got.Refs[1].Delete ||
		got.MaxBlobSize != 20<<20 || got.DenyBinary || !reflect.DeepEqual(got.NoMerges, []string{"refs/heads/main", "refs/heads/release/"}) ||
		!got.Rebases("refs/heads/main") || !got.Rebases("refs/heads/team/x") || got.Rebases("refs/heads/other") || got.MaxRebase != 20 {
		t.Errorf("for alice: %+v", got)
	}
	boss := Identity{User: "boss", UID: 1001, Groups: []string{"maintainers", "artists"}}
	got = p.For(boss)
	if len(got.Refs) != 4 || got.Refs[1].Deny || got.DenyBinary ||
		!reflect.DeepEqual(got.NoMerges, []string{"refs/heads/release/"}) || got.Rebases("refs/heads/main") || !got.Rebases("refs/heads/team/y") {
		t.Errorf("for boss: %+v", got)
	}

	bad := `repository "r" {
	path "/r"
	hide namespace "refs/heads/"
	hide namespace "refs/x/"
	hide namespace "refs/x"
	push {
		deny create "refs/tags/"
		max blob size 10Q
		max objects many
		deny merge tag "v1"
		min free 1G
		deny binary except
		max object size 0
		frobnicate
		rebase namespace "refs/tags/"
		max rebase commits 0
	}
}
`
	_, err = Parse("bad.conf", []byte(bad), Options{})
	var cerr *Error
	if !errors.As(err, &cerr) {
		t.Fatalf("error %v", err)
	}
	wantErrs := []string{
		"bad.conf:3: cannot hide refs/heads/",
		"bad.conf:5: duplicate hidden namespace refs/x/",
		"bad.conf:7: syntax error: expected 'namespace', found \"refs/tags/\"",
		"bad.conf:8: invalid size: 10Q",
		"bad.conf:9: invalid object count: 'many'",
		"bad.conf:10: syntax error: expected 'branch' or 'namespace', found 'tag'",
		"bad.conf:11: syntax error: expected 'space', found '1G'",
		"bad.conf:12: syntax error: expected a user or :group after 'except'",
		"bad.conf:13: invalid size: 0",
		"bad.conf:14: syntax error: unexpected 'frobnicate' in push options",
		"bad.conf:15: rebase applies to branches: refs/tags/ is not under refs/heads/",
		"bad.conf:16: rebase commit count '0' out of range 1-10000",
	}
	if !reflect.DeepEqual(cerr.Problems, wantErrs) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(cerr.Problems, "\n"), strings.Join(wantErrs, "\n"))
	}
}

// TestManualExamples parses the configurations of gotd.conf(5)'s
// EXAMPLES section, with the secrets it shows.
func TestManualExamples(t *testing.T) {
	page, err := os.ReadFile("../../../cmd/gotd/gotd.conf.5")
	if err != nil {
		t.Fatal(err)
	}
	_, examples, ok := strings.Cut(string(page), "\n.Sh EXAMPLES\n")
	if !ok {
		t.Fatal("no EXAMPLES section")
	}
	var blocks []string
	for _, part := range strings.Split(examples, ".Bd -literal -offset indent\n")[1:] {
		block, _, _ := strings.Cut(part, ".Ed\n")
		blocks = append(blocks, block)
	}
	if len(blocks) != 4 {
		t.Fatalf("%d literal blocks in EXAMPLES; want 4 (two configurations and their secrets)", len(blocks))
	}
	for i := 0; i < len(blocks); i += 2 {
		sec, err := ParseSecrets("secrets", []byte(blocks[i+1]))
		if err != nil {
			t.Fatalf("example %d secrets: %v", i/2+1, err)
		}
		if _, err := Parse("example", []byte(blocks[i]), Options{Secrets: sec}); err != nil {
			t.Errorf("example %d: %v", i/2+1, err)
		}
	}
}

// TestAdmission parses the connection options of admission and
// shutdown: their defaults, values, and values out of range.
func TestAdmission(t *testing.T) {
	const repo = "repository r {\npath \"/r\"\n}\n"
	c, err := Parse("d.conf", []byte(repo), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c.PendingTotal != DefaultPendingTotal || c.PendingPerUser != DefaultPendingPerUser ||
		c.PendingPerAddress != DefaultPendingPerAddress || c.ShutdownTimeout != DefaultShutdownTimeout {
		t.Errorf("defaults: got %d %d %d %v; want %d %d %d %v", c.PendingTotal, c.PendingPerUser, c.PendingPerAddress, c.ShutdownTimeout,
			DefaultPendingTotal, DefaultPendingPerUser, DefaultPendingPerAddress, DefaultShutdownTimeout)
	}
	src := "connection {\n\tlimit pending 100\n\tlimit pending user 5\n\tlimit pending address 7\n\tshutdown timeout 2m\n\tlimit user pending 3\n}\n" + repo
	c, err = Parse("a.conf", []byte(src), Options{UserExists: func(string) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	if c.PendingTotal != 100 || c.PendingPerUser != 5 || c.PendingPerAddress != 7 || c.ShutdownTimeout != 2*time.Minute || c.UserLimits["pending"] != 3 {
		t.Errorf("got %d %d %d %v %v; want 100 5 7 2m0s and user pending's limit 3", c.PendingTotal, c.PendingPerUser, c.PendingPerAddress, c.ShutdownTimeout, c.UserLimits)
	}
	for _, c := range []struct{ line, want string }{
		{"limit pending 0", "b.conf:2: pending connection limit 0 out of range 1-65536"},
		{"limit pending address 70000", "b.conf:2: pending connection limit per address 70000 out of range 1-65536"},
		{"limit pending user x", "b.conf:2: syntax error: expected a pending connection limit per user, found 'x'"},
		{"shutdown timeout 0", "b.conf:2: invalid timeout: 0"},
		{"shutdown 30", "b.conf:2: syntax error: expected 'timeout', found '30'"},
	} {
		_, err := Parse("b.conf", []byte("connection {\n"+c.line+"\n}\n"+repo), Options{})
		if err == nil || err.Error() != c.want {
			t.Errorf("%q: got %v; want %s", c.line, err, c.want)
		}
	}
}

// TestControlGroup: "control group" names the group allowed to use
// gotctl, which must exist; "user nobody" is warned of (issue 19).
func TestControlGroup(t *testing.T) {
	exists := func(name string) bool { return name == "wheel" || name == "10" }
	tests := []struct {
		src, group, err, warning string
	}{
		{"control group wheel\n", "wheel", "", ""},
		{"control group 10\n", "10", "", ""},
		{"control group \"staff\"\n", "", "c.conf:1: group staff not found", ""},
		{"control wheel\n", "", "c.conf:1: syntax error: expected 'group', found 'wheel'", ""},
		{"user nobody\n", "", "", "c.conf: user nobody is shared with other services: give gotd an account of its own"},
		{"user 65534\n", "", "", "c.conf: user 65534 is shared with other services: give gotd an account of its own"},
		{"user _gotd\n", "", "", ""},
	}
	for _, tt := range tests {
		src := tt.src + "repository \"r\" {\n\tpath \"/r\"\n}\n"
		c, err := Parse("c.conf", []byte(src), Options{GroupExists: exists})
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("%q: got error %v; want %s", tt.src, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.src, err)
			continue
		}
		if c.ControlGroup != tt.group {
			t.Errorf("%q: got control group %q; want %q", tt.src, c.ControlGroup, tt.group)
		}
		got := ""
		for _, w := range c.Warnings {
			if strings.Contains(w, "shared") {
				got = w
			}
		}
		if got != tt.warning {
			t.Errorf("%q: got warning %q; want %q", tt.src, got, tt.warning)
		}
	}
}

// TestOpenToOthers: gotd -n warns of a repository other local users can
// read though no rule lets anonymous read it (issue 19).
func TestOpenToOthers(t *testing.T) {
	top, err := os.MkdirTemp("", "gotd-config-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(top)
	repo := filepath.Join(top, "r.git")
	if err := os.MkdirAll(filepath.Join(repo, "objects"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		topMode, repoMode os.FileMode
		rules             string
		warn              bool
	}{
		{0o755, 0o755, "permit rw alice", true},
		{0o755, 0o755, "permit rw alice\n\tpermit ro anonymous", false},
		{0o755, 0o755, "permit ro anonymous\n\tdeny anonymous", true},
		{0o755, 0o750, "permit rw alice", false},
		{0o700, 0o755, "permit rw alice", false},
		{0o711, 0o711, "permit rw alice", true}, // search is enough to open a known name
	}
	for _, tt := range tests {
		os.Chmod(top, tt.topMode)
		os.Chmod(repo, tt.repoMode)
		src := fmt.Sprintf("repository \"r\" {\n\tpath %q\n\t%s\n}\n", repo, tt.rules)
		c, err := Parse("o.conf", []byte(src), Options{})
		if err != nil {
			t.Fatal(err)
		}
		got := false
		for _, w := range c.Warnings {
			got = got || strings.Contains(w, "other local users can read")
		}
		if got != tt.warn {
			t.Errorf("top %#o repo %#o %q: got warning %v; want %v (%q)", tt.topMode, tt.repoMode, tt.rules, got, tt.warn, c.Warnings)
		}
	}
}

// TestNotifyRequests parses url targets with a method, a URL template
// and a body template, and refuses bad ones with their line.
func TestNotifyRequests(t *testing.T) {
	conf := func(line string) string {
		return "repository r {\npath \"/r\"\nnotify {\n" + line + "\n}\n}\n"
	}
	c, err := Parse("t.conf", []byte(conf(`url "https://ci.example.com/build?branch=${branch}&sha=${new}" method POST body form "token=x&ref=${ref}"
url "https://chat.example.com/hook" body json '{"text": "${pusher} pushed to ${ref}: ${subject}", "n": ${commits}}'
url "https://h/ping/${repo}" method GET`)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := c.Repositories[0].Notify.URLs
	want := []URL{
		{URL: "https://ci.example.com/build?branch=${branch}&sha=${new}", Method: "POST", BodyKind: "form", Body: "token=x&ref=${ref}"},
		{URL: "https://chat.example.com/hook", BodyKind: "json", Body: `{"text": "${pusher} pushed to ${ref}: ${subject}", "n": ${commits}}`},
		{URL: "https://h/ping/${repo}", Method: "GET"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	for line, want := range map[string]string{
		`url "https://h/x/${nope}"`:                           "notification url template: unknown placeholder ${nope}",
		`url "https://${repo}.example.com/x"`:                 "notification url template: placeholder in the URL's host",
		`url "https://h/x/$ref"`:                              `notification url template: a "$" must begin a placeholder ${name} or be written "$$"`,
		`url "https://h/x" method FETCH`:                      "notification method: unknown HTTP method (GET, POST, PUT, PATCH, DELETE)",
		`url "https://h/x" method GET body text "hi"`:         "notification method: a GET request has no body",
		`url "https://h/x" body yaml "a: 1"`:                  `unknown notification body kind "yaml" (json, form or text)`,
		`url "https://h/x" body json '{"a": ${ref}'`:          "notification body: json template: not a JSON document",
		`url "https://h/x" body json '{"a": "${subject}}'`:    "notification body: json template: not a JSON document",
		`url "https://h/x" body text "${pusher} at ${time}"`:  "notification body: text template: unknown placeholder ${time}",
		`url "https://h/x" body form "a=%zz&b=${ref}"`:        "notification body: form template: not form fields (name=value&...)",
		`url "https://h/x#${ref}"`:                            "notification url template: placeholder in the URL's fragment, which is not sent",
		`url "https://h/x" method POST auth ci body text "x"`: "notification credentials need a secrets file",
	} {
		_, err := Parse("t.conf", []byte(conf(line)), Options{})
		var cerr *Error
		if !errors.As(err, &cerr) || len(cerr.Problems) != 1 || !strings.HasPrefix(cerr.Problems[0], "t.conf:4: "+want) {
			t.Errorf("%s: got %v; want t.conf:4: %s", line, err, want)
		}
	}
}

// TestRequestTemplateExamples parses the examples of Request templates
// in gotd.conf(5) and expands the chat message as the page shows it.
func TestRequestTemplateExamples(t *testing.T) {
	page, err := os.ReadFile("../../../cmd/gotd/gotd.conf.5")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(page), "\n.Ss Request templates\n")
	section, _, _ = strings.Cut(section, "\n.Sh ")
	section += "\n"
	var blocks []string
	for _, part := range strings.Split(section, ".Bd -literal -offset indent\n")[1:] {
		block, _, _ := strings.Cut(part, ".Ed\n")
		blocks = append(blocks, strings.ReplaceAll(block, `\e`, `\`))
	}
	if len(blocks) != 3 {
		t.Fatalf("%d literal blocks; want 3 (configuration, secrets, message)", len(blocks))
	}
	sec, err := ParseSecrets("secrets", []byte(blocks[1]))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse("example", []byte(blocks[0]), Options{Secrets: sec})
	if err != nil {
		t.Fatal(err)
	}
	urls := c.Repositories[0].Notify.URLs
	if len(urls) != 2 || urls[1].BodyKind != "json" {
		t.Fatalf("targets %+v", urls)
	}
	chat, err := webhook.Parse(webhook.JSON, urls[1].Body)
	if err != nil {
		t.Fatal(err)
	}
	got, err := chat.Expand(&webhook.Values{Repo: "project", Ref: "refs/heads/main", Pusher: "alice", Commits: 2, Subject: "Add notes"})
	if err != nil || got+"\n" != blocks[2] {
		t.Errorf("chat message %q, %v; the page shows %q", got, err, blocks[2])
	}
}

// TestDescription checks the repository's "description" line: one line
// of UTF-8, given once.
func TestDescription(t *testing.T) {
	c, err := Parse("d.conf", []byte("repository \"r\" {\n\tpath \"/r\"\n\tdescription \"A <small> repository\"\n}\n"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Repositories[0].Description; got != "A <small> repository" {
		t.Errorf("description %q", got)
	}
	for _, bad := range []string{
		`description ""`,
		`description "a" ` + "\n\tdescription \"b\"",
		`description "` + strings.Repeat("x", MaxDescription+1) + `"`,
		"description \"bad \xff byte\"",
		"description \"a\tb\"",
	} {
		src := "repository \"r\" {\n\tpath \"/r\"\n\t" + bad + "\n}\n"
		if _, err := Parse("d.conf", []byte(src), Options{}); err == nil || !strings.Contains(err.Error(), "d.conf:") {
			t.Errorf("%q: got %v, want an error with its line", bad, err)
		}
	}
}
