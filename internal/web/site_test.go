package web

import (
	"gotd/internal/gittest"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
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
		"/repo/raw/main/dir/a.txt", "/repo/branches", "/repo/tags", "/repo/tag/v1.0", "/repo/atom", "/repo/tags.atom",
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
