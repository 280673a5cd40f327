package web

import (
	"fmt"
	"golang.org/x/net/html"
	"gotd/internal/gittest"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// git runs C Git in dir.
func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=A U Thor", "GIT_AUTHOR_EMAIL=a@example.com",
		"GIT_COMMITTER_NAME=C O Mitter", "GIT_COMMITTER_EMAIL=c@example.com",
		"GIT_AUTHOR_DATE=2024-01-02T03:04:05Z", "GIT_COMMITTER_DATE=2024-01-02T03:04:05Z", "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// testRepo makes a bare repository with a short history: two commits
// on main, a branch, a lightweight and an annotated tag, a binary
// file, a file in a directory.
func testRepo(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	work := filepath.Join(dir, "work")
	os.MkdirAll(filepath.Join(work, "dir"), 0o755)
	git(t, work, "init", "-q", "-b", "main")
	os.WriteFile(filepath.Join(work, "README"), []byte("Hello <b>readme</b>\n"), 0o644)
	os.WriteFile(filepath.Join(work, "dir", "a.txt"), []byte("one\ntwo\nthree\n"), 0o644)
	os.WriteFile(filepath.Join(work, "bin.dat"), []byte("\x00\x01\x02binary"), 0o644)
	git(t, work, "add", ".")
	git(t, work, "commit", "-q", "-m", "first commit")
	os.WriteFile(filepath.Join(work, "dir", "a.txt"), []byte("one\n2\nthree\nfour\n"), 0o644)
	git(t, work, "commit", "-q", "-am", "second commit\n\nWith a body.")
	git(t, work, "tag", "light")
	git(t, work, "tag", "-a", "-m", "annotated message", "v1.0")
	git(t, work, "branch", "feature/x")
	bare := filepath.Join(dir, "repo.git")
	git(t, dir, "clone", "-q", "--bare", work, bare)
	return bare
}

func testSite(t *testing.T, bare string) *Site {
	t.Helper()
	r, err := Open("repo", bare, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &Site{Repos: []*Repo{r}, Transports: []Transport{{Scheme: "http", Port: 8080}}, Log: slog.New(slog.NewTextHandler(os.Stderr, nil))}
	s.Init()
	return s
}

func get(t *testing.T, h http.Handler, url string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", url, nil))
	res := rec.Result()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func TestPagesSmoke(t *testing.T) {
	bare := testRepo(t)
	s := testSite(t, bare)
	for _, u := range []string{"/", "/repo/", "/repo/log", "/repo/log/main/dir", "/repo/tree", "/repo/tree/main/dir", "/repo/blob/main/dir/a.txt",
		"/repo/blame/main/dir/a.txt", "/repo/blame/main/bin.dat", "/repo/raw/main/dir/a.txt", "/repo/branches", "/repo/tags", "/repo/tag/v1.0", "/repo/atom", "/repo/tags.atom",
		"/repo/commit/main", "/repo/log/feature%2Fx", "/repo/snapshot/main.tar.gz", "/repo/snapshot/main.zip", "/-/style.css"} {
		res, body := get(t, s, u)
		if res.StatusCode != 200 {
			t.Errorf("GET %s: status %d\n%s", u, res.StatusCode, body)
		}
		if testing.Verbose() && strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
			t.Logf("%s:\n%s", u, body)
		}
	}
}

func TestGeneratedSummary(t *testing.T) {
	dir := t.TempDir()
	git(t, dir, "init", "-q", "--bare", "-b", "main", "g.git")
	gittest.Generate(t, filepath.Join(dir, "g.git"), gittest.History{Commits: 20, Files: 8})
	s := testSite(t, filepath.Join(dir, "g.git"))
	for _, u := range []string{"/repo/"} {
		res, body := get(t, s, u)
		if res.StatusCode != 200 {
			t.Errorf("GET %s: status %d\n%s", u, res.StatusCode, body)
		}
	}
}

// TestHeaders checks the headers of pages: the policy without script,
// nosniff, an ETag that answers 304, a year's cache for a URL that
// names a full commit id and revalidation for one that names a branch.
func TestHeaders(t *testing.T) {
	bare := testRepo(t)
	s := testSite(t, bare)
	id := git(t, bare, "rev-parse", "main")
	for _, tc := range []struct {
		url       string
		immutable bool
	}{
		{"/repo/commit/" + id, true},
		{"/repo/tree/" + id + "/dir", true},
		{"/repo/blob/" + id + "/dir/a.txt", true},
		{"/repo/log/" + id, true},
		{"/repo/commit/main", false},
		{"/repo/", false},
		{"/", false},
	} {
		res, _ := get(t, s, tc.url)
		h := res.Header
		if res.StatusCode != 200 {
			t.Fatalf("GET %s: status %d", tc.url, res.StatusCode)
		}
		if got := h.Get("Content-Security-Policy"); got != CSP {
			t.Errorf("GET %s: Content-Security-Policy %q", tc.url, got)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no nosniff", tc.url)
		}
		cc := h.Get("Cache-Control")
		if got := strings.Contains(cc, "immutable") && strings.Contains(cc, "max-age=31536000"); got != tc.immutable {
			t.Errorf("GET %s: Cache-Control %q; immutable %v, want %v", tc.url, cc, got, tc.immutable)
		}
		etag := h.Get("ETag")
		if etag == "" {
			t.Errorf("GET %s: no ETag", tc.url)
			continue
		}
		req := httptest.NewRequest("GET", tc.url, nil)
		req.Header.Set("If-None-Match", etag)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != 304 {
			t.Errorf("GET %s with its ETag: status %d, want 304", tc.url, rec.Code)
		}
	}
	res, body := get(t, s, "/repo/raw/main/bin.dat")
	if res.Header.Get("Content-Type") != "application/octet-stream" || !strings.HasPrefix(res.Header.Get("Content-Disposition"), "attachment") || body != "\x00\x01\x02binary" {
		t.Errorf("raw binary: type %q, disposition %q, body %q", res.Header.Get("Content-Type"), res.Header.Get("Content-Disposition"), body)
	}
	if res, _ := get(t, s, "/repo/raw/main/dir/a.txt"); res.Header.Get("Content-Type") != "text/plain; charset=utf-8" || res.Header.Get("Content-Security-Policy") != RawCSP {
		t.Errorf("raw text: type %q, policy %q", res.Header.Get("Content-Type"), res.Header.Get("Content-Security-Policy"))
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("POST", "/repo/", nil))
	if rec.Code != 405 {
		t.Errorf("POST: status %d, want 405", rec.Code)
	}
}

// TestHidden checks that hidden references and what only they reach
// are never shown.
func TestHidden(t *testing.T) {
	bare := testRepo(t)
	work := filepath.Join(filepath.Dir(bare), "work")
	os.WriteFile(filepath.Join(work, "secret.txt"), []byte("the secret\n"), 0o644)
	git(t, work, "add", ".")
	git(t, work, "commit", "-q", "-m", "secret commit")
	secret := git(t, work, "rev-parse", "HEAD")
	git(t, work, "push", "-q", bare, "HEAD:refs/internal/secret", "HEAD:refs/heads/hidden/b")
	r, err := Open("repo", bare, "", []string{"refs/internal/", "refs/heads/hidden/"})
	if err != nil {
		t.Fatal(err)
	}
	s := &Site{Repos: []*Repo{r}}
	s.Init()
	for _, u := range []string{"/repo/commit/" + secret, "/repo/tree/" + secret, "/repo/blob/" + secret + "/secret.txt", "/repo/raw/" + secret + "/secret.txt",
		"/repo/log/hidden%2Fb", "/repo/log/refs%2Finternal%2Fsecret", "/repo/snapshot/" + secret + ".zip", "/repo/atom/hidden%2Fb"} {
		if res, _ := get(t, s, u); res.StatusCode != 404 {
			t.Errorf("GET %s: status %d, want 404", u, res.StatusCode)
		}
	}
	for _, u := range []string{"/repo/", "/repo/branches", "/repo/tags", "/repo/log"} {
		_, body := get(t, s, u)
		if strings.Contains(body, "hidden") || strings.Contains(body, secret[:10]) {
			t.Errorf("GET %s shows a hidden reference or commit:\n%s", u, body)
		}
	}
	// The visible history is still there.
	if res, _ := get(t, s, "/repo/commit/"+git(t, bare, "rev-parse", "main")); res.StatusCode != 200 {
		t.Errorf("a visible commit: status %d", res.StatusCode)
	}
}

// TestHostileRender renders a commit whose message and author carry
// markup: they come out as text.
func TestHostileRender(t *testing.T) {
	bare := testRepo(t)
	work := filepath.Join(filepath.Dir(bare), "work")
	name := `"><img src=x onerror=alert(1)>.txt`
	os.WriteFile(filepath.Join(work, name), []byte("<script>alert(1)</script>\n"), 0o644)
	git(t, work, "add", ".")
	git(t, work, "commit", "-q", "-m", "<script>alert(1)</script>\n\n<a href=\"javascript:alert(1)\">x</a>")
	git(t, work, "push", "-q", bare, "HEAD:main")
	s := testSite(t, bare)
	for _, u := range []string{"/repo/commit/main", "/repo/", "/repo/log", "/repo/tree/main", "/repo/blob/main/" + url.PathEscape(name), "/repo/blame/main/" + url.PathEscape(name)} {
		res, body := get(t, s, u)
		if res.StatusCode != 200 {
			t.Fatalf("GET %s: status %d", u, res.StatusCode)
		}
		z := html.NewTokenizer(strings.NewReader(body))
		for tt := z.Next(); tt != html.ErrorToken; tt = z.Next() {
			if tt != html.StartTagToken && tt != html.SelfClosingTagToken {
				continue
			}
			tok := z.Token()
			if tok.Data == "script" || tok.Data == "img" {
				t.Errorf("GET %s: a %s element", u, tok.Data)
			}
			for _, a := range tok.Attr {
				if strings.HasPrefix(a.Key, "on") || strings.Contains(strings.ToLower(a.Val), "javascript:") && a.Key == "href" && !strings.HasPrefix(a.Val, "/") {
					t.Errorf("GET %s: attribute %s=%q", u, a.Key, a.Val)
				}
			}
		}
		if !strings.Contains(body, "&lt;") {
			t.Errorf("GET %s: the markup is not shown as text", u)
		}
	}
}

// TestBlamePage checks the blame page of dir/a.txt: the line the second
// commit changed and the one it added name it, the others the first
// commit, each run of lines naming its commit once.
func TestBlamePage(t *testing.T) {
	bare := testRepo(t)
	s := testSite(t, bare)
	first, second := git(t, bare, "rev-parse", "main~1"), git(t, bare, "rev-parse", "main")
	res, body := get(t, s, "/repo/blame/main/dir/a.txt")
	if res.StatusCode != 200 {
		t.Fatalf("status %d\n%s", res.StatusCode, body)
	}
	var got []string
	z := html.NewTokenizer(strings.NewReader(body))
	for tt := z.Next(); tt != html.ErrorToken; tt = z.Next() {
		if tok := z.Token(); tt == html.StartTagToken && tok.Data == "a" {
			for _, a := range tok.Attr {
				if a.Key == "href" && strings.HasPrefix(a.Val, "/repo/commit/") {
					got = append(got, strings.TrimPrefix(a.Val, "/repo/commit/"))
				}
			}
		}
	}
	// Lines: one (first), 2 (second), three (first), four (second).
	want := []string{first, second, first, second}
	if !slices.Equal(got, want) {
		t.Errorf("commits named by the blame page: got %v; want %v", got, want)
	}
	if _, body := get(t, s, "/repo/blame/main/bin.dat"); !strings.Contains(body, "Binary file.") {
		t.Errorf("blame of a binary file: %s", body)
	}
	if _, body := get(t, s, "/repo/blob/main/dir/a.txt"); !strings.Contains(body, `href="/repo/blame/main/dir/a.txt"`) {
		t.Errorf("the blob page has no blame link:\n%s", body)
	}
}

// TestLogMatchesGit checks log pages against git log: the commits of a
// branch newest first, page by page, and those that change a path.
func TestLogMatchesGit(t *testing.T) {
	dir := t.TempDir()
	bare := filepath.Join(dir, "g.git")
	git(t, dir, "init", "-q", "--bare", "-b", "main", "g.git")
	gittest.Generate(t, bare, gittest.History{Commits: 120, Files: 8})
	s := testSite(t, bare)
	ids := func(body string) []string {
		var out []string
		for _, part := range strings.Split(body, `<a class="id" href="/repo/commit/`)[1:] {
			out = append(out, part[:40])
		}
		return out
	}
	for _, path := range []string{"", "dir1", "dir0/sub0/file0.txt"} {
		args := []string{"log", "--format=%H", "main"}
		if path != "" {
			args = append(args, "--", path)
		}
		want := strings.Fields(git(t, bare, args...))
		var got []string
		for ofs := 0; ofs <= len(want); ofs += logPage {
			u := pageURL("repo", actLog, "main", path) + "?ofs=" + strconv.Itoa(ofs)
			res, body := get(t, s, u)
			if res.StatusCode != 200 {
				t.Fatalf("GET %s: status %d", u, res.StatusCode)
			}
			page := ids(body)
			if len(page) > logPage {
				t.Fatalf("GET %s: %d commits", u, len(page))
			}
			more := strings.Contains(body, ">older</a>")
			if more != (ofs+logPage < len(want)) {
				t.Errorf("GET %s: older link %v with %d commits in all", u, more, len(want))
			}
			got = append(got, page...)
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("log of %q: got %d commits, git log %d:\n%v\n%v", path, len(got), len(want), got, want)
		}
	}
}

// TestLongMessage takes the pages of a commit whose message is one
// line of 4 MiB: the commit page shows the message cut at maxHead and
// says so, and no page allocates more than 16 times maxHead (a web
// process serves every visitor of its class, up to maxConcurrent pages
// at once, within one client's memory budget).
func TestLongMessage(t *testing.T) {
	bare := testRepo(t)
	work := filepath.Join(filepath.Dir(bare), "work")
	msg := filepath.Join(t.TempDir(), "msg")
	os.WriteFile(msg, []byte(strings.Repeat("m", 4<<20)+"\n"), 0o644)
	git(t, work, "commit", "-q", "--allow-empty", "--cleanup=verbatim", "-F", msg)
	git(t, work, "push", "-q", bare, "HEAD:main")
	git(t, bare, "repack", "-q", "-a", "-d")
	s := testSite(t, bare)
	for _, u := range []string{"/repo/commit/main", "/repo/log", "/repo/", "/repo/atom", "/repo/branches"} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		res, body := get(t, s, u)
		runtime.ReadMemStats(&after)
		if res.StatusCode != 200 {
			t.Fatalf("GET %s: status %d", u, res.StatusCode)
		}
		if got, want := after.TotalAlloc-before.TotalAlloc, uint64(allocSlack*16*maxHead); got > want {
			t.Errorf("GET %s: allocated %d bytes; want at most %d", u, got, want)
		}
		if got, want := len(body), 2*maxHead; got > want {
			t.Errorf("GET %s: %d bytes; want at most %d", u, got, want)
		}
	}
	if _, body := get(t, s, "/repo/commit/main"); !strings.Contains(body, "Message cut.") || !strings.Contains(body, strings.Repeat("m", 1000)) {
		t.Errorf("the commit page does not show the message's start and say it is cut")
	}
}

// TestWideTree takes the tree page and the commit page of a directory
// of 60,000 files (a tree of about 9 MiB, over maxTreeRead and
// maxDiffTree), made by C Git's fast-import: the tree page lists
// maxTreeEntries and says there are more, the commit page lists files
// and says there are more, and neither reads the tree whole.
func TestWideTree(t *testing.T) {
	bare := testRepo(t)
	var in strings.Builder
	in.WriteString("blob\nmark :1\ndata 2\nx\n\ncommit refs/heads/main\ncommitter C <c@example.com> 1700000000 +0000\ndata 5\nwide\nfrom refs/heads/main^0\n")
	for i := range 60000 {
		fmt.Fprintf(&in, "M 100644 :1 wide/%s-%06d\n", strings.Repeat("n", 120), i)
	}
	cmd := exec.Command("git", "fast-import", "--quiet")
	cmd.Dir, cmd.Stdin = bare, strings.NewReader(in.String()+"\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("fast-import: %v\n%s", err, out)
	}
	git(t, bare, "repack", "-q", "-a", "-d")
	s := testSite(t, bare)
	for _, tc := range []struct {
		url, note string
		alloc     int // rendering 5,000 entries takes about 25 MiB; the tree is 9 MiB
	}{
		{"/repo/tree/main/wide", "Further entries not listed.", 30 << 20},
		{"/repo/commit/main", "Trees too large to compare here.", 2 * maxTreeRead},
		// A file of the wide directory: its log and blame would read
		// the 9 MiB tree once per commit.
		{"/repo/log/main/wide/" + strings.Repeat("n", 120) + "-000001", "too large to show here", 2 * maxTreeRead},
		{"/repo/blame/main/wide/" + strings.Repeat("n", 120) + "-000001", "too large to show here", 2 * maxTreeRead},
	} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		res, body := get(t, s, tc.url)
		runtime.ReadMemStats(&after)
		status := 200
		if strings.Contains(tc.url, "/log/") || strings.Contains(tc.url, "/blame/") {
			status = 404
		}
		if res.StatusCode != status || !strings.Contains(body, tc.note) {
			t.Errorf("GET %s: status %d, note %q shown: %v", tc.url, res.StatusCode, tc.note, strings.Contains(body, tc.note))
		}
		if got, want := after.TotalAlloc-before.TotalAlloc, uint64(allocSlack*float64(tc.alloc)); got > want {
			t.Errorf("GET %s: allocated %d bytes; want at most %d", tc.url, got, want)
		}
	}
}
