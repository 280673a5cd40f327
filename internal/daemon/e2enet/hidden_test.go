package e2enet

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHiddenRefs checks that the references of a hidden namespace, and
// what only they reach, cannot be had by any route a client has:
// advertisement (versions 0 and 2, every front-end), fetch by id,
// include-tag, a tag pointing into hidden history; that they cannot be
// pushed to; and that a push cannot make hidden history visible by
// naming it without sending it.
func TestHiddenRefs(t *testing.T) {
	s := start(t, options{extraTest: "\thide namespace \"refs/internal/\"\n\thide namespace \"refs/tags/secret\""})
	src := filepath.Join(s.dir, "test.git")

	// Hidden history: a commit with a secret file on top of main, a
	// tag of it in the hidden namespace, and a hidden tag of main's
	// tip (include-tag would send it with main).
	build := s.clientDir("build")
	// src belongs to the daemon's user: git on it, and the
	// receive-pack a local push starts, must accept it.
	global := filepath.Join(build, "gitconfig")
	write(t, global, "[safe]\n\tdirectory = *\n", 0o644)
	local := []string{"GIT_CONFIG_GLOBAL=" + global}
	s.mustGit(build, nil, "clone", "-q", s.gitURL("test"), "b")
	b := filepath.Join(build, "b")
	write(t, filepath.Join(b, "secret.txt"), "the secret\n", 0o644)
	s.mustGit(b, nil, "add", ".")
	s.mustGit(b, nil, "commit", "-q", "-m", "secret")
	s.mustGit(b, nil, "tag", "-a", "-m", "secret tag", "into-hidden", "HEAD")
	s.mustGit(b, nil, "tag", "-a", "-m", "hidden tag of main", "of-main", "origin/main")
	s.mustGit(b, local, "push", "-q", src, "HEAD:refs/internal/secret", "refs/tags/into-hidden:refs/internal/tag",
		"refs/tags/of-main:refs/tags/secret/of-main")
	if os.Geteuid() == 0 {
		run(t, "chown", "-R", rootDaemon, src)
	}
	rev := func(name string) string { return strings.TrimSpace(s.mustGit(b, nil, "rev-parse", name)) }
	secrets := map[string]string{
		"commit": rev("HEAD"), "blob": rev("HEAD:secret.txt"),
		"tag into hidden history": rev("into-hidden"), "hidden tag of main": rev("of-main"),
	}
	before := refs(t, src)
	packsBefore := packs(t, src)

	absent := func(t *testing.T, gitDir string) {
		t.Helper()
		for what, id := range secrets {
			if _, err := s.git(gitDir, nil, "cat-file", "-e", id); err == nil {
				t.Errorf("the %s %s reached the client", what, id)
			}
		}
		if out := s.mustGit(gitDir, nil, "for-each-ref"); strings.Contains(out, "internal") || strings.Contains(out, "secret") {
			t.Errorf("hidden references reached the client:\n%s", out)
		}
	}
	for _, v := range protocols {
		env := protoEnv(v)
		sshEnv := append(protoEnv(v), "GIT_SSH_COMMAND="+s.sshCommand(s.writerKey))
		for name, c := range map[string]struct {
			url string
			env []string
		}{
			"ssh":  {s.sshURL(rwAccount, "test"), sshEnv},
			"git":  {s.gitURL("test"), env},
			"http": {s.httpURL("", "test"), env},
		} {
			t.Run(name+"-v"+v, func(t *testing.T) {
				out := s.mustGit(s.dir, c.env, "ls-remote", c.url)
				for what, id := range secrets {
					if strings.Contains(out, id) {
						t.Errorf("ls-remote shows the %s:\n%s", what, out)
					}
				}
				if strings.Contains(out, "internal") || strings.Contains(out, "secret") || !strings.Contains(out, "refs/heads/main") {
					t.Errorf("ls-remote:\n%s", out)
				}
				dir := s.clientDir("mirror-" + name + "-v" + v)
				s.mustGit(dir, c.env, "clone", "-q", "--mirror", c.url, "m.git")
				m := filepath.Join(dir, "m.git")
				fsck(t, m)
				absent(t, m)

				// include-tag: fetching main follows annotated tags
				// of what is sent, but not hidden ones.
				s.mustGit(dir, nil, "init", "-q", "--bare", "f.git")
				f := filepath.Join(dir, "f.git")
				s.mustGit(f, c.env, "fetch", "-q", c.url, "main:refs/heads/main")
				absent(t, f)
				// By id, each secret, with and without the server's
				// blessing of fetches by id.
				for what, id := range secrets {
					if out, err := s.git(f, c.env, "fetch", "-q", c.url, id); err == nil {
						t.Errorf("fetch of the %s by id succeeded:\n%s", what, out)
					}
				}
				absent(t, f)
			})
		}
	}

	// Pushes to hidden references are refused, one by one.
	work := s.clientDir("work")
	s.mustGit(work, nil, "clone", "-q", s.gitURL("test"), "w")
	w := filepath.Join(work, "w")
	sshEnv := []string{"GIT_SSH_COMMAND=" + s.sshCommand(s.writerKey)}
	for _, ref := range []string{"refs/internal/new", "refs/internal/secret", "refs/tags/secret/v9"} {
		out, err := s.git(w, sshEnv, "push", "--force", s.sshURL(rwAccount, "test"), "HEAD:"+ref)
		if err == nil || !strings.Contains(out, "deny updating a hidden ref") {
			t.Errorf("push to %s: %v\n%s", ref, err, out)
		}
	}

	// A push naming the hidden commit without sending it (an empty
	// pack, as a client that knows the id could send) is refused: the
	// new branch would make hidden history visible.
	body := pktLine(fmt.Sprintf("%s %s refs/heads/leak\x00report-status\n", strings.Repeat("0", 40), secrets["commit"])) + "0000"
	body += emptyPack()
	req, _ := http.NewRequest("POST", s.httpURL("", "test")+"/git-receive-pack", strings.NewReader(body))
	req.SetBasicAuth(rwAccount, password)
	req.Header.Set("Content-Type", "application/x-git-receive-pack-request")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(answer, []byte("ng refs/heads/leak missing necessary objects")) {
		t.Errorf("push of the hidden commit by name: %d %q", resp.StatusCode, answer)
	}

	// Nothing changed on the server.
	if got := refs(t, src); got != before {
		t.Errorf("server references changed:\n%s\nwant:\n%s", got, before)
	}
	if got := packs(t, src); got != packsBefore {
		t.Errorf("packs changed: %s, were %s", got, packsBefore)
	}
	fsck(t, src)

	// The allowed variant: an ordinary push lands, and so does a
	// branch made of history the pusher brings along.
	write(t, filepath.Join(w, "public.txt"), "public\n", 0o644)
	s.mustGit(w, nil, "add", ".")
	s.mustGit(w, nil, "commit", "-q", "-m", "public")
	s.mustGit(w, sshEnv, "push", "-q", s.sshURL(rwAccount, "test"), "HEAD:main", "HEAD:refs/heads/topic")
	if got := strings.TrimSpace(run(t, "git", "--git-dir", src, "rev-parse", "topic")); got != rev("HEAD") && got == "" {
		t.Errorf("topic: %q", got)
	}
	fsck(t, src)
}

// packs lists a repository's pack files.
func packs(t testing.TB, gitDir string) string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(gitDir, "objects", "pack", "*.pack"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(m, " ")
}

// pktLine frames s as a pkt-line.
func pktLine(s string) string { return fmt.Sprintf("%04x%s", len(s)+4, s) }

// emptyPack is a pack of no objects.
func emptyPack() string {
	var h bytes.Buffer
	h.WriteString("PACK")
	binary.Write(&h, binary.BigEndian, uint32(2))
	binary.Write(&h, binary.BigEndian, uint32(0))
	sum := sha1.Sum(h.Bytes())
	return h.String() + string(sum[:])
}
