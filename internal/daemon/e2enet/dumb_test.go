package e2enet

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// get fetches url with optional basic credentials and returns the
// status, content type and body (its first MiB).
func get(t *testing.T, url, user, pass string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

// TestDumbHTTP clones with C Git's dumb HTTP client (GIT_SMART_HTTP=0)
// a repository of three packs and loose objects: the clone passes git
// fsck --full and has the server's references; the server's repository
// is left as it was (no info/refs or objects/info/packs written). A
// private repository answers a dumb read as it answers a smart one,
// and a repository with hidden references lists only the others and
// serves no object.
func TestDumbHTTP(t *testing.T) {
	s := start(t, options{})
	src := filepath.Join(s.dir, "test.git")
	// A second pack, a third, and loose objects on top.
	for i := range 3 {
		blob := strings.TrimSpace(gitIn(t, src, fmt.Sprintf("content %d\n", i), "hash-object", "-w", "--stdin"))
		tree := strings.TrimSpace(gitIn(t, src, fmt.Sprintf("100644 blob %s\tdumb%d.txt\n", blob, i), "mktree"))
		c := strings.TrimSpace(run(t, "git", "--git-dir", src, "commit-tree", "-m", fmt.Sprintf("dumb %d", i), "-p", "main", tree))
		run(t, "git", "--git-dir", src, "update-ref", "refs/heads/main", c)
		if i < 2 {
			run(t, "git", "--git-dir", src, "repack", "-q")
		}
	}
	run(t, "git", "--git-dir", src, "tag", "-a", "-m", "an annotated tag", "dumb-tag", "main")
	if os.Geteuid() == 0 {
		run(t, "chown", "-R", rootDaemon, src)
	}
	packs, _ := filepath.Glob(filepath.Join(src, "objects", "pack", "*.pack"))
	loose, _ := filepath.Glob(filepath.Join(src, "objects", "??", "*"))
	if len(packs) < 3 || len(loose) < 3 {
		t.Fatalf("fixture: %d packs, %d loose objects; want 3 and more", len(packs), len(loose))
	}
	before := listing(t, src)

	clone := filepath.Join(s.clientDir("dumb"), "clone.git")
	s.mustGit(s.dir, []string{"GIT_SMART_HTTP=0"}, "clone", "-q", "--mirror", s.httpURL("", "test"), clone)
	fsck(t, clone)
	refsOf := func(dir string) string {
		return run(t, "git", "--git-dir", dir, "for-each-ref", "--format=%(objectname) %(refname)")
	}
	if got, want := refsOf(clone), refsOf(src); got != want {
		t.Errorf("the dumb clone's references:\n%s\nwant the server's:\n%s", got, want)
	}
	if n := countLines(s.log.String(), "action=dumb-read outcome=ok"); n < 5 {
		t.Errorf("%d dumb reads in the audit trail; want the clone's, at least 5", n)
	}
	if after := listing(t, src); after != before {
		t.Errorf("the repository changed under dumb reads:\n%s\nwas\n%s", after, before)
	}

	// Content types, as http-backend sends them.
	for path, want := range map[string]string{
		"info/refs": "text/plain", "HEAD": "text/plain", "objects/info/packs": "text/plain; charset=utf-8",
		"objects/pack/" + filepath.Base(packs[0]):                                       "application/x-git-packed-objects",
		"objects/pack/" + strings.TrimSuffix(filepath.Base(packs[0]), ".pack") + ".idx": "application/x-git-packed-objects-toc",
		strings.TrimPrefix(loose[0], src+"/"):                                           "application/x-git-loose-object",
	} {
		code, ct, _ := get(t, s.httpURL("", "test")+"/"+path, "", "")
		if code != http.StatusOK || ct != want {
			t.Errorf("GET %s: %d %q; want 200 %q", path, code, ct, want)
		}
	}
	for _, path := range []string{"config", "objects/info/alternates", "objects/pack/x.keep", "hooks/pre-receive", "objects/../config"} {
		if code, _, _ := get(t, s.httpURL("", "test")+"/"+path, "", ""); code != http.StatusNotFound {
			t.Errorf("GET %s: %d; want 404", path, code)
		}
	}

	// A private repository: as a smart read is answered.
	smart, _, _ := get(t, s.httpURL("", "private")+"/info/refs?service=git-upload-pack", "", "")
	dumb, _, _ := get(t, s.httpURL("", "private")+"/info/refs", "", "")
	if smart == http.StatusOK || dumb != smart {
		t.Errorf("anonymous dumb read of private: %d; want %d, as the smart one", dumb, smart)
	}
	if code, _, _ := get(t, s.httpURL("", "private")+"/HEAD", roAccount, password); code != http.StatusNotFound {
		t.Errorf("dumb read of private by %s, who has no rule there: %d; want 404", roAccount, code)
	}
	if code, _, body := get(t, s.httpURL("", "private")+"/info/refs", rwAccount, password); code != http.StatusOK || !strings.Contains(body, "refs/heads/main") {
		t.Errorf("dumb read of private by %s: %d %q", rwAccount, code, body)
	}
	if _, err := s.git(s.dir, []string{"GIT_SMART_HTTP=0"}, "clone", "-q", s.httpURL("", "private"), filepath.Join(s.dir, "private-clone")); err == nil {
		t.Errorf("an anonymous dumb clone of private succeeded")
	}

	// Hidden references.
	h := start(t, options{extraTest: "\thide namespace \"refs/internal/\""})
	hsrc := filepath.Join(h.dir, "test.git")
	run(t, "git", "--git-dir", hsrc, "update-ref", "refs/internal/secret", "main")
	if os.Geteuid() == 0 {
		run(t, "chown", "-R", rootDaemon, hsrc)
	}
	code, _, body := get(t, h.httpURL("", "test")+"/info/refs", "", "")
	if code != http.StatusOK || strings.Contains(body, "refs/internal") || !strings.Contains(body, "refs/heads/main") {
		t.Errorf("info/refs with a hidden namespace: %d\n%s", code, body)
	}
	if code, _, _ := get(t, h.httpURL("", "test")+"/objects/info/packs", "", ""); code != http.StatusNotFound {
		t.Errorf("objects/info/packs of a repository with hidden references: %d; want 404", code)
	}
}

// gitIn runs git on gitDir with input.
func gitIn(t *testing.T, gitDir, input string, args ...string) string {
	t.Helper()
	out, err := execGit(safeEnv(t), gitDir, strings.NewReader(input), args...).Output()
	if err != nil {
		t.Fatalf("git %v: %v", args, err)
	}
	return string(out)
}

// listing names every file of a repository with its size and mode.
func listing(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err == nil {
			fmt.Fprintf(&b, "%s %d %v\n", strings.TrimPrefix(path, dir), fi.Size(), fi.Mode())
		}
		return nil
	})
	return b.String()
}
