package web

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestMarkControls(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain <b>text</b>\n\tand tabs", "plain <b>text</b>\n\tand tabs"},
		{"a\u202Eb", `a<span class="ctl">⟨U+202E⟩</span>b`},
		{`<a title="x` + "\u2066" + `y">z` + "\x07" + `</a>`, `<a title="x⟨U+2066⟩y">z<span class="ctl">⟨U+0007⟩</span></a>`},
		{"<title>r\u200Fx</title>\u0085", `<title>r⟨U+200F⟩x</title><span class="ctl">⟨U+0085⟩</span>`},
		{"\u061C\x7f\x1b", `<span class="ctl">⟨U+061C⟩</span><span class="ctl">⟨U+007F⟩</span><span class="ctl">⟨U+001B⟩</span>`},
		// Not controls: other characters of the same lead bytes.
		{"é€–—\u2070\u2065", "é€–—\u2070\u2065"},
	} {
		if got := string(markControls([]byte(tc.in))); got != tc.want {
			t.Errorf("markControls(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
}

func TestHasBidi(t *testing.T) {
	for r := rune(0); r < 0x3000; r++ {
		s := "x" + string(r) + "y"
		if got, want := hasBidi(s), isBidi(r); got != want {
			t.Errorf("hasBidi(%U) = %v; want %v", r, got, want)
		}
		if got, want := hasBidi([]byte(s)), isBidi(r); got != want {
			t.Errorf("hasBidi([]byte(%U)) = %v; want %v", r, got, want)
		}
		if got, want := hasControl([]byte(s)), isControl(r); got != want {
			t.Errorf("hasControl(%U) = %v; want %v", r, got, want)
		}
	}
}

// bidiRepo makes a repository whose file name, branch, author and
// message hold bidi and control characters, with a file of source
// whose line hides code behind a right-to-left override (Trojan
// Source's example).
func bidiRepo(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	work := filepath.Join(dir, "work")
	os.MkdirAll(work, 0o755)
	git(t, work, "init", "-q", "-b", "main")
	os.WriteFile(filepath.Join(work, "access.txt"), []byte("line one\nif access_level != \"user\u202E \u2066// Check if admin\u2069 \u2066\" {\nline three\n"), 0o644)
	os.WriteFile(filepath.Join(work, "evil\u202Etxt.exe"), []byte("x\n"), 0o644)
	os.WriteFile(filepath.Join(work, "bell\x07\x1b[31m"), []byte("y\n"), 0o644)
	git(t, work, "add", ".")
	git(t, work, "commit", "-q", "--author=Eve\u202E evE <e@example.com>", "--cleanup=verbatim", "-m", "fix \u2067 reorder\x1b[2J\u0085 end")
	git(t, work, "branch", "ma\u2066in")
	git(t, work, "tag", "-a", "-m", "tag \u202D message", "v\u202E1")
	bare := filepath.Join(dir, "repo.git")
	git(t, dir, "clone", "-q", "--bare", work, bare)
	return bare
}

// TestControlPages serves every page of bidiRepo: no page holds a
// control character (but tab and newlines), each shows its marks, and
// the file's line with the override is marked with a warning.
func TestControlPages(t *testing.T) {
	bare := bidiRepo(t)
	s := testSite(t, bare)
	id := git(t, bare, "rev-parse", "main")
	file := "access.txt"
	for _, tc := range []struct {
		url   string
		marks []string
	}{
		{"/repo/", []string{"⟨U+202E⟩", "⟨U+2066⟩"}},
		{"/repo/log", []string{"⟨U+2067⟩", "⟨U+001B⟩", "⟨U+0085⟩"}},
		{"/repo/commit/" + id, []string{"evil⟨U+202E⟩txt.exe", "bell⟨U+0007⟩⟨U+001B⟩", "Eve⟨U+202E⟩ evE", `<span class="bidi"`, `class="warn"`}},
		{"/repo/tree/main", []string{"evil⟨U+202E⟩txt.exe", "bell⟨U+0007⟩"}},
		{"/repo/blob/main/" + file, []string{`<a id="L2" href="#L2" class="bidi">2</a>`, `<a id="L1" href="#L1">1</a>`, "user⟨U+202E⟩ ⟨U+2066⟩// Check", `class="warn"`}},
		{"/repo/blame/main/" + file, []string{`<tr id="L2" class="bidi">`, "⟨U+2069⟩", `class="warn"`}},
		{"/repo/blob/main/" + url.PathEscape("evil\u202Etxt.exe"), []string{"<title>repo: evil⟨U+202E⟩txt.exe</title>"}},
		{"/repo/branches", []string{"ma⟨U+2066⟩in"}},
		{"/repo/tags", []string{"v⟨U+202E⟩1"}},
		{"/repo/tag/" + url.PathEscape("v\u202E1"), []string{"<title>repo: tag v⟨U+202E⟩1</title>", "tag ⟨U+202D⟩ message"}},
		{"/repo/atom", []string{"⟨U+2067⟩", "⟨U+001B⟩", "Eve⟨U+202E⟩ evE"}},
		{"/repo/tags.atom", []string{"v⟨U+202E⟩1", "⟨U+202D⟩"}},
	} {
		res, body := get(t, s, tc.url)
		if res.StatusCode != 200 {
			t.Errorf("GET %s: status %d", tc.url, res.StatusCode)
			continue
		}
		for i, r := range body {
			if r == utf8.RuneError || isControl(r) {
				t.Errorf("GET %s: %U at %d: %q", tc.url, r, i, body[max(0, i-40):min(len(body), i+40)])
				break
			}
		}
		plain := strings.NewReplacer(`<span class="ctl">`, "", "</span>", "").Replace(body)
		for _, m := range tc.marks {
			if !strings.Contains(plain, m) {
				t.Errorf("GET %s: no %q in\n%s", tc.url, m, body)
			}
		}
	}
}
