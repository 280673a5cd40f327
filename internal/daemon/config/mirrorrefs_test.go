package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// TestMirrorRefs: "refs PATTERN..." of mirror from sets the namespaces
// followed, branches and tags when absent; a pattern that is not
// refs/NAMESPACE/* is refused with the line.
func TestMirrorRefs(t *testing.T) {
	for _, tc := range []struct {
		line string
		want []string
	}{
		{`mirror from "git://h/a"`, []string{"refs/heads/", "refs/tags/"}},
		{`mirror from "git://h/a" refs "refs/heads/*" "refs/tags/*" "refs/notes/*"`, []string{"refs/heads/", "refs/tags/", "refs/notes/"}},
		{`mirror from "git://h/a" refs "refs/heads/release/*" every 1h`, []string{"refs/heads/release/"}},
		{`mirror from "git://h/a" every 1h refs refs/notes/* refs/pull/*`, []string{"refs/notes/", "refs/pull/"}},
		{`mirror from "git://h/a" refs "refs/*"`, []string{"refs/"}},
	} {
		c, err := Parse("m.conf", []byte("repository \"r\" {\n\tpath \"/r\"\n\t"+tc.line+"\n}\n"), Options{})
		if err != nil {
			t.Errorf("%s: %v", tc.line, err)
			continue
		}
		if got := c.Repositories[0].Mirror.MirrorNamespaces(); !slices.Equal(got, tc.want) {
			t.Errorf("%s: namespaces %q; want %q", tc.line, got, tc.want)
		}
	}
	for _, tc := range []struct{ line, want string }{
		{`mirror from "git://h/a" refs`, "m.conf:3: syntax error: expected a reference pattern"},
		{`mirror from "git://h/a" refs "refs/heads/main"`, `m.conf:3: mirror refs: "refs/heads/main" is not a pattern`},
		{`mirror from "git://h/a" refs "heads/*"`, `m.conf:3: mirror refs: "heads/*" is not a pattern`},
		{`mirror from "git://h/a" refs "refs/a*/*"`, `m.conf:3: mirror refs: "refs/a*/*" is not a pattern`},
		{`mirror from "git://h/a" refs "refs/a..b/*"`, `m.conf:3: mirror refs: "refs/a..b/*" is not a pattern`},
	} {
		_, err := Parse("m.conf", []byte("repository \"r\" {\n\tpath \"/r\"\n\t"+tc.line+"\n}\n"), Options{})
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
