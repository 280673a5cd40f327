package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

const testHostKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"

// TestMirror: mirror from with each of its options, and the port the
// fetch process may connect to.
func TestMirror(t *testing.T) {
	secrets := &Secrets{Auth: map[string]*AuthSecret{"up": {User: "u", Password: "p"}}}
	for _, tc := range []struct {
		line string
		want Mirror
		port uint16
	}{
		{`mirror from "git://example.org/a.git"`, Mirror{URL: "git://example.org/a.git", Every: DefaultMirrorEvery}, 9418},
		{`mirror from "git://127.0.0.1:4242/a" every 30s`, Mirror{URL: "git://127.0.0.1:4242/a", Every: 30 * time.Second}, 4242},
		{`mirror from "https://example.org/a.git" every 1h auth up`, Mirror{URL: "https://example.org/a.git", Every: time.Hour, Auth: "up", AuthUser: "u", AuthPassword: "p"}, 443},
		{`mirror from "http://example.org/a.git"`, Mirror{URL: "http://example.org/a.git", Every: DefaultMirrorEvery}, 80},
		{`mirror from "ssh://git@example.org:2222/a.git" key "/k/id" known hosts "/k/known"`, Mirror{URL: "ssh://git@example.org:2222/a.git", Every: DefaultMirrorEvery, SSHOptions: SSHOptions{KeyFile: "/k/id", KnownHosts: "/k/known"}}, 2222},
		{`mirror from "git@example.org:a.git" host key "` + testHostKey + `"`, Mirror{URL: "git@example.org:a.git", Every: DefaultMirrorEvery, SSHOptions: SSHOptions{HostKeys: []string{testHostKey}}}, 22},
		{`mirror from "/srv/upstream.git"`, Mirror{URL: "/srv/upstream.git", Every: DefaultMirrorEvery}, 0},
	} {
		c, err := Parse("m.conf", []byte("repository \"r\" {\n\tpath \"/r\"\n\t"+tc.line+"\n}\n"), Options{Secrets: secrets})
		if err != nil {
			t.Errorf("%s: %v", tc.line, err)
			continue
		}
		got := c.Repositories[0].Mirror
		tc.want.Line = 3
		if got == nil || got.URL != tc.want.URL || got.Every != tc.want.Every || got.Auth != tc.want.Auth || got.AuthUser != tc.want.AuthUser ||
			got.AuthPassword != tc.want.AuthPassword || got.KeyFile != tc.want.KeyFile || got.KnownHosts != tc.want.KnownHosts ||
			!slices.Equal(got.HostKeys, tc.want.HostKeys) || got.Line != 3 {
			t.Errorf("%s: got %+v; want %+v", tc.line, got, tc.want)
			continue
		}
		if p := got.Port(); p != tc.port {
			t.Errorf("%s: port %d; want %d", tc.line, p, tc.port)
		}
	}
}

// TestMirrorErrors: every malformed mirror line is refused with its
// line, credentials never in the URL, a host key never unpinned.
func TestMirrorErrors(t *testing.T) {
	secrets := &Secrets{Auth: map[string]*AuthSecret{"up": {User: "u", Password: "p"}}}
	for _, tc := range []struct{ line, want string }{
		{`mirror "git://h/a"`, "m.conf:3: syntax error: expected 'from'"},
		{`mirror from "ftp://h/a"`, "m.conf:3: invalid mirror URL"},
		{`mirror from "git://h"`, "m.conf:3: mirror URL needs a host and a path"},
		{`mirror from "https://u:secret@h/a"`, "m.conf:3: credentials in a mirror URL"},
		{`mirror from "ssh://u:secret@h/a" known hosts "/kh"`, "m.conf:3: credentials in a mirror URL"},
		{`mirror from "git://h/a" every 1s`, "m.conf:3: mirror interval shorter than 10s"},
		{`mirror from "git://h/a" auth up`, "m.conf:3: mirror auth is sent over https only"},
		{`mirror from "https://h/a" auth nope`, "m.conf:3: no auth secret 'nope' defined"},
		{`mirror from "ssh://h/a"`, "m.conf:3: an ssh mirror needs 'known hosts FILE' or 'host key KEY'"},
		{`mirror from "git://h/a" key "/k"`, "m.conf:3: mirror key, known hosts and host key are for ssh upstreams"},
		{`mirror from "ssh://h/a" key "k" known hosts "/kh"`, "m.conf:3: mirror key file must be an absolute path"},
		{`mirror from "ssh://h/a" host key "ssh-ed25519 AAAA"`, "m.conf:3: mirror host key:"},
		{`mirror from "git://h/a" sometimes`, "m.conf:3: syntax error: unexpected"},
		{"mirror from \"git://h/a\"\n\tmirror from \"git://h/b\"", "m.conf:4: mirror from given twice (first on line 3)"},
	} {
		_, err := Parse("m.conf", []byte("repository \"r\" {\n\tpath \"/r\"\n\t"+tc.line+"\n}\n"), Options{Secrets: secrets})
		var cerr *Error
		if !errors.As(err, &cerr) || len(cerr.Problems) == 0 {
			t.Errorf("%q: got error %v; want %q", tc.line, err, tc.want)
			continue
		}
		if got := cerr.Problems[0]; !strings.HasPrefix(got, tc.want) {
			t.Errorf("%q: got %q; want %q", tc.line, got, tc.want)
		}
	}
}
