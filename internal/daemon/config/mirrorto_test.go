package config

import (
	"reflect"
	"strings"
	"testing"
)

// TestMirrorTo: "mirror to" lines with their credentials, and "mirror
// spool".
func TestMirrorTo(t *testing.T) {
	src := `mirror spool "/var/spool/gotd-mirrors"
repository "a" {
	path "/a"
	mirror to "git://example.com/a.git"
	mirror to "https://example.com/a.git" auth hub
	mirror to "git@example.com:a.git" key "/etc/gotd/key" known hosts "/etc/gotd/known_hosts"
	mirror to "ssh://example.com:2222/a.git" key "/etc/gotd/key" host key "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHYyBvR6aeyqPCeWAZJW4gOFDw5ABDs/Q5ozGKw4VItb"
}
repository "b" {
	path "/b"
}
`
	secrets, err := ParseSecrets("s", []byte("auth hub user mirror password 'p w'\n"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse("m.conf", []byte(src), Options{Secrets: secrets})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.MirrorSpoolDir(), "/var/spool/gotd-mirrors"; got != want {
		t.Errorf("spool: got %s; want %s", got, want)
	}
	want := []MirrorTo{
		{URL: "git://example.com/a.git", Line: 4},
		{URL: "https://example.com/a.git", Line: 5, Auth: "hub", AuthUser: "mirror", AuthPassword: "p w"},
		{URL: "git@example.com:a.git", Line: 6, SSHOptions: SSHOptions{KeyFile: "/etc/gotd/key", KnownHosts: "/etc/gotd/known_hosts"}},
		{URL: "ssh://example.com:2222/a.git", Line: 7, SSHOptions: SSHOptions{KeyFile: "/etc/gotd/key",
			HostKeys: []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHYyBvR6aeyqPCeWAZJW4gOFDw5ABDs/Q5ozGKw4VItb"}}},
	}
	if got := c.Repositories[0].MirrorTo; !reflect.DeepEqual(got, want) {
		t.Errorf("mirror to:\ngot  %+v\nwant %+v", got, want)
	}
	if got := c.Repositories[1].MirrorTo; got != nil {
		t.Errorf("b: got %+v; want no mirror", got)
	}
	c, err = Parse("m.conf", []byte("repository \"a\" {\n\tpath \"/a\"\n}\n"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.MirrorSpoolDir(); got != DefaultMirrorSpool {
		t.Errorf("default spool: got %s; want %s", got, DefaultMirrorSpool)
	}
}

// TestMirrorToErrors: every malformed "mirror to" line is refused with
// its line and reason.
func TestMirrorToErrors(t *testing.T) {
	secrets, err := ParseSecrets("s", []byte("auth hub user u password p\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ line, want string }{
		{`mirror to "/srv/git/a.git"`, "not \"/srv/git/a.git\""},
		{`mirror to "file:///srv/a.git"`, "invalid mirror URL"},
		{`mirror to "https://u:p@example.com/a.git"`, "credentials in a mirror URL"},
		{`mirror to "ssh://u:p@example.com/a.git" key "/k" known hosts "/kh"`, "credentials in a mirror URL"},
		{`mirror to "git://example.com/"`, "needs a host and a path"},
		{`mirror to "git://example.com/a.git?x"`, "needs a host and a path, and nothing after them"},
		{`mirror to "http://example.com/a.git" auth hub`, "without 'insecure'"},
		{`mirror to "https://example.com/a.git" auth nope`, "no auth secret 'nope'"},
		{`mirror to "git://example.com/a.git" auth hub`, "auth is for http"},
		{`mirror to "git://example.com/a.git" key "/k"`, "are for ssh targets"},
		{`mirror to "ssh://example.com/a.git" key "/k"`, "needs 'known hosts' or 'host key'"},
		{`mirror to "ssh://example.com/a.git" known hosts "/kh"`, "needs a 'key'"},
		{`mirror to "ssh://example.com/a.git" key "k" known hosts "/kh"`, "must be an absolute path"},
		{`mirror to "ssh://example.com/a.git" key "/k" host key "ssh-ed25519 garbage"`, "host key"},
		{`mirror to "git://example.com/a.git" every 10m`, "unexpected"},
		{"mirror to \"git://example.com/a.git\"\n\tmirror to \"git://example.com/a.git\"", "duplicate mirror to"},
		{`mirror to "git://example.com/` + strings.Repeat("a", 2100) + `"`, "longer than 2048"},
		{strings.Repeat("mirror to \"git://example.com/a\"\n", 0) + manyMirrors(17), "more than 16 mirror to lines"},
	} {
		src := "repository \"a\" {\n\tpath \"/a\"\n\t" + tc.line + "\n}\n"
		_, err := Parse("m.conf", []byte(src), Options{Secrets: secrets})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%.60s: got %v; want an error with %q", tc.line, err, tc.want)
		}
	}
}

func manyMirrors(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString("mirror to \"git://example.com/")
		b.WriteString(strings.Repeat("a", i+1))
		b.WriteString("\"\n")
	}
	return b.String()
}

// TestMirrorNotReserved: "mirror" stays a word a user, group or macro
// may be named, as before push mirrors.
func TestMirrorNotReserved(t *testing.T) {
	src := "mirror = \"backup\"\nrepository \"a\" {\n\tpath \"/a\"\n\tpermit rw mirror\n\tpermit ro $mirror\n}\n"
	c, err := Parse("m.conf", []byte(src), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Repositories[0].Rules; len(got) != 2 || got[0].Ident != "mirror" || got[1].Ident != "backup" {
		t.Errorf("rules: got %+v; want mirror and backup", got)
	}
}
