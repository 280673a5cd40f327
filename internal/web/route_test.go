package web

import (
	"strings"
	"testing"
)

// repos are the readable repositories of the route tests.
func repos(name string) string {
	for _, r := range []string{"test", "group/project", "a.git"} {
		if name == r || name == r+".git" || name+".git" == r {
			return r
		}
	}
	return ""
}

func TestParseRoute(t *testing.T) {
	for _, tc := range []struct {
		path string
		want route
		ok   bool
	}{
		{"/", route{index: true}, true},
		{"/-/style.css", route{style: true}, true},
		{"/-/login", route{login: true}, true},
		{"/test", route{repo: "test", action: actSummary}, true},
		{"/test/", route{repo: "test", action: actSummary}, true},
		{"/test.git/", route{repo: "test", action: actSummary}, true},
		{"/a/", route{repo: "a.git", action: actSummary}, true},
		{"/group/project/log", route{repo: "group/project", action: actLog}, true},
		{"/group/project/log/feature%2Fx/dir/file.c", route{repo: "group/project", action: actLog, rev: "feature/x", path: "dir/file.c"}, true},
		{"/test/tree/main/", route{repo: "test", action: actTree, rev: "main"}, true},
		{"/test/tree/main/a%20b/c", route{repo: "test", action: actTree, rev: "main", path: "a b/c"}, true},
		{"/test/blob/main/README", route{repo: "test", action: actBlob, rev: "main", path: "README"}, true},
		{"/test/raw/v1.0/x%3Cy%3E", route{repo: "test", action: actRaw, rev: "v1.0", path: "x<y>"}, true},
		{"/test/commit/0123456789abcdef0123456789abcdef01234567", route{repo: "test", action: actCommit, rev: "0123456789abcdef0123456789abcdef01234567"}, true},
		{"/test/tag/v1.0", route{repo: "test", action: actTag, rev: "v1.0"}, true},
		{"/test/tags", route{repo: "test", action: actTags}, true},
		{"/test/branches", route{repo: "test", action: actBranches}, true},
		{"/test/atom", route{repo: "test", action: actAtom}, true},
		{"/test/atom/main", route{repo: "test", action: actAtom, rev: "main"}, true},
		{"/test/tags.atom", route{repo: "test", action: actTagsAtom}, true},
		{"/test/snapshot/v1.0.tar.gz", route{repo: "test", action: actSnapshot, rev: "v1.0", format: "tar.gz"}, true},
		{"/test/snapshot/feature%2Fx.zip", route{repo: "test", action: actSnapshot, rev: "feature/x", format: "zip"}, true},
		{"/test/blame/main/README", route{repo: "test", action: actBlame, rev: "main", path: "README"}, true},

		{"", route{}, false},
		{"test", route{}, false},
		{"/nope/", route{}, false},
		{"/group/", route{}, false},                  // a prefix of a name is no repository
		{"/group%2Fproject/", route{}, false},        // a name's "/" is not escaped
		{"/test/unknown", route{}, false},            // no such page
		{"/test/blob/main", route{}, false},          // a blob needs a path
		{"/test/blob/main/", route{}, false},         // an empty name
		{"/test/blob/main/a//b", route{}, false},     // an empty name
		{"/test/blob/main/a%2Fb", route{}, false},    // "/" inside a name
		{"/test/blob/main/../x", route{}, false},     // dot-dot
		{"/test/blob/main/%2E%2E/x", route{}, false}, // escaped dot-dot
		{"/test/tree/main/a%00b", route{}, false},    // NUL
		{"/test/tree/%zz", route{}, false},           // bad escape
		{"/test/commit", route{}, false},             // no revision
		{"/test/commit/a/b", route{}, false},         // a path after a commit
		{"/test/tags/x", route{}, false},
		{"/test/snapshot/main.tar", route{}, false}, // no such format
		{"/test/snapshot/.zip", route{}, false},
		{"/" + strings.Repeat("a/", maxSegments+1), route{}, false},
		{"/test/tree/main/" + strings.Repeat("a", maxURLPath), route{}, false},
	} {
		got, ok := parseRoute(tc.path, repos)
		if ok != tc.ok || ok && got != tc.want {
			t.Errorf("parseRoute(%q) = %+v, %v; want %+v, %v", tc.path, got, ok, tc.want, tc.ok)
		}
	}
}

// TestLinksRoundTrip checks that the links built for names of every
// kind parse back to those names.
func TestLinksRoundTrip(t *testing.T) {
	for _, rev := range []string{"main", "feature/x", `"><svg/onload=alert(1)>`, "v1.0", "a%2Fb", "?q=1#frag", "ü"} {
		for _, p := range []string{"README", "dir/a b.txt", `"><img src=x>.txt`, "javascript:alert(1)", "%2e%2e", "a?b#c", "x;y"} {
			u := pageURL("group/project", actBlob, rev, p)
			got, ok := parseRoute(u, repos)
			want := route{repo: "group/project", action: actBlob, rev: rev, path: p}
			if !ok || got != want {
				t.Errorf("%s: got %+v, %v; want %+v", u, got, ok, want)
			}
			if !strings.HasPrefix(u, "/") || strings.ContainsAny(u, "\"'<> ?#") {
				t.Errorf("%s: a link with characters it should escape", u)
			}
		}
		s := snapshotURL("test", rev, "zip")
		if got, ok := parseRoute(s, repos); !ok || got.rev != rev || got.format != "zip" {
			t.Errorf("%s: got %+v, %v", s, got, ok)
		}
	}
}

// FuzzRoutes checks that parseRoute accepts only paths whose parts are
// names a page can use, and that the link built from a route parses
// back to it.
func FuzzRoutes(f *testing.F) {
	for _, s := range []string{"/", "/test/", "/group/project/log/feature%2Fx/dir/file.c", "/test/blob/main/a%20b",
		"/test/snapshot/v1.0.tar.gz", "/test/tree/main/", "/test/raw/%2E%2E/x", "/a.git/commit/0123", "/test/tag/%3Cscript%3E",
		"/test/blob/main/a%00b", "/test//log"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		rt, ok := parseRoute(p, repos)
		if !ok || rt.index || rt.style || rt.login {
			return
		}
		if repos(rt.repo) != rt.repo {
			t.Fatalf("%q: repository %q is not one of the readable ones", p, rt.repo)
		}
		for i, seg := range strings.Split(rt.path, "/") {
			if rt.path == "" {
				break
			}
			if seg == "" || seg == "." || seg == ".." || strings.IndexByte(seg, 0) >= 0 {
				t.Fatalf("%q: path segment %d is %q", p, i, seg)
			}
		}
		if strings.IndexByte(rt.rev, 0) >= 0 || rt.rev == "." || rt.rev == ".." {
			t.Fatalf("%q: revision %q", p, rt.rev)
		}
		switch rt.action {
		case actBlob, actRaw, actTree, actLog:
			if rt.rev == "" {
				return
			}
			u := pageURL(rt.repo, rt.action, rt.rev, rt.path)
			back, ok := parseRoute(u, repos)
			if !ok || back != rt {
				t.Fatalf("%q: %+v links as %q, which parses as %+v, %v", p, rt, u, back, ok)
			}
		}
	})
}
