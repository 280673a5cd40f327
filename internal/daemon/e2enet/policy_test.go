package e2enet

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// policyPusher pushes to the "test" repository over HTTP as one account,
// from a clone of its own.
type policyPusher struct {
	s    *server
	t    *testing.T
	dir  string
	url  string
	name string
}

func (s *server) policyPusher(t *testing.T, account, pass string) *policyPusher {
	dir := s.clientDir("push-" + account)
	url := s.httpURL(account+":"+strings.ReplaceAll(pass, " ", "%20"), "test")
	s.mustGit(dir, nil, "clone", "-q", url, "w")
	return &policyPusher{s: s, t: t, dir: filepath.Join(dir, "w"), url: url, name: account}
}

// commit adds files (name → content) and commits them.
func (p *policyPusher) commit(files map[string][]byte, msg string) string {
	p.t.Helper()
	for name, data := range files {
		path := filepath.Join(p.dir, name)
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			p.t.Fatal(err)
		}
	}
	p.s.mustGit(p.dir, nil, "add", "-A")
	p.s.mustGit(p.dir, nil, "commit", "-q", "--allow-empty", "-m", msg)
	return strings.TrimSpace(p.s.mustGit(p.dir, nil, "rev-parse", "HEAD"))
}

// push runs git push with args and returns its output and error.
func (p *policyPusher) push(args ...string) (string, error) {
	return p.s.git(p.dir, nil, append([]string{"push", p.url}, args...)...)
}

// refused checks that push args fails with want on the client's
// terminal and leaves the server as it was: references, packs, no
// quarantine left, fsck clean.
func (p *policyPusher) refused(want string, args ...string) {
	p.t.Helper()
	src := filepath.Join(p.s.dir, "test.git")
	refsBefore, packsBefore := refs(p.t, src), packs(p.t, src)
	out, err := p.push(args...)
	if err == nil || !strings.Contains(out, want) {
		p.t.Errorf("%s: push %v: %v; want a refusal with %q:\n%s", p.name, args, err, want, out)
	}
	if got := refs(p.t, src); got != refsBefore {
		p.t.Errorf("%s: push %v changed the server's references:\n%s\nwere:\n%s", p.name, args, got, refsBefore)
	}
	if got := packs(p.t, src); got != packsBefore {
		p.t.Errorf("%s: push %v left packs: %s, were %s", p.name, args, got, packsBefore)
	}
	if q := quarantinesLeft(src); len(q) > 0 {
		p.t.Errorf("%s: push %v left quarantines %v", p.name, args, q)
	}
	fsck(p.t, src)
}

// allowed checks that push args succeeds.
func (p *policyPusher) allowed(args ...string) {
	p.t.Helper()
	if out, err := p.push(args...); err != nil {
		p.t.Errorf("%s: push %v: %v\n%s", p.name, args, err, out)
	}
	fsck(p.t, filepath.Join(p.s.dir, "test.git"))
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// TestPushPolicy checks each rule of a push block with C Git over
// HTTP: the refused push shows the reason for the reference and
// changes nothing on the server; the allowed variant lands.
func TestPushPolicy(t *testing.T) {
	const bossPassword = "boss password"
	hash, err := bcrypt.GenerateFromPassword([]byte(bossPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	s := start(t, options{
		extraTop:     "account boss {\n\tgroup developers\n\tgroup maintainers\n}",
		extraSecrets: fmt.Sprintf("password boss '%s'\n", hash),
		extraTest: `	push {
		deny create namespace "refs/tags/"
		permit create namespace "refs/tags/" :maintainers
		deny delete namespace "refs/heads/"
		permit delete namespace "refs/heads/" :maintainers
		deny create namespace "refs/heads/sandbox/"
		max blob size 64K except boss
		deny binary except :maintainers
		deny merge branch main except :maintainers
		max pack size 256K
		max objects 100
	}`,
	})
	w := s.policyPusher(t, rwAccount, password)
	boss := s.policyPusher(t, "boss", bossPassword)

	// Creating and deleting references.
	w.commit(map[string][]byte{"a.txt": []byte("a\n")}, "a")
	w.allowed("HEAD:refs/heads/topic")
	w.refused("refusing to create this reference: not allowed for you", "HEAD:refs/tags/v1")
	w.refused("refusing to create this reference: not allowed for you", "HEAD:refs/heads/sandbox/x")
	w.refused("refusing to delete this reference: not allowed for you", ":refs/heads/topic")
	boss.s.mustGit(boss.dir, nil, "fetch", "-q")
	boss.allowed("origin/topic:refs/tags/v1")
	boss.allowed(":refs/heads/topic")
	// A push of several references: the refused one says why, the
	// others land.
	out, err := w.push("HEAD:refs/heads/topic2", "HEAD:refs/tags/v2")
	if err == nil || !strings.Contains(out, "-> v2 (refusing to create this reference") || !strings.Contains(out, "* [new branch]") {
		t.Errorf("mixed push: %v\n%s", err, out)
	}

	// Content: a file over the size bound, a binary file, a merge.
	w.s.mustGit(w.dir, nil, "reset", "-q", "--hard", "origin/main")
	w.commit(map[string][]byte{"big.dat": []byte(strings.Repeat("0123456789abcdef\n", 5000))}, "big")
	w.refused("refusing a file larger than 64K: big.dat (85000 bytes)", "HEAD:main")
	boss.s.mustGit(boss.dir, nil, "reset", "-q", "--hard", "origin/main")
	boss.commit(map[string][]byte{"big.dat": []byte(strings.Repeat("0123456789abcdef\n", 5000))}, "big")
	boss.allowed("HEAD:main")

	w.s.mustGit(w.dir, nil, "fetch", "-q")
	w.s.mustGit(w.dir, nil, "reset", "-q", "--hard", "origin/main")
	w.commit(map[string][]byte{"logo.png": []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")}, "binary")
	w.refused("refusing a binary file: logo.png", "HEAD:main")
	w.s.mustGit(w.dir, nil, "checkout", "-q", "-B", "feature", "origin/main")
	w.allowed("HEAD:refs/heads/feature") // nothing new
	w.commit(map[string][]byte{"feature.txt": []byte("feature\n")}, "feature")
	w.allowed("HEAD:refs/heads/feature")
	w.s.mustGit(w.dir, nil, "checkout", "-q", "-b", "m", "origin/main")
	w.commit(map[string][]byte{"main.txt": []byte("main\n")}, "on main")
	w.s.mustGit(w.dir, nil, "merge", "-q", "--no-ff", "-m", "merge feature", "feature")
	w.refused("refusing a merge commit on this branch", "HEAD:main")
	w.allowed("HEAD:refs/heads/feature") // merges elsewhere are fine
	// but main cannot gain them by a fast-forward.
	w.refused("refusing a merge commit on this branch", "HEAD:main")
	boss.s.mustGit(boss.dir, nil, "fetch", "-q")
	boss.allowed("origin/feature:main")

	// Pack bounds: they apply to everyone.
	boss.s.mustGit(boss.dir, nil, "fetch", "-q")
	boss.s.mustGit(boss.dir, nil, "reset", "-q", "--hard", "origin/main")
	boss.commit(map[string][]byte{"huge.bin": randomBytes(300 << 10)}, "huge")
	boss.refused("pack exceeds the maximum size of 262144 bytes", "HEAD:main")
	boss.s.mustGit(boss.dir, nil, "reset", "-q", "--hard", "origin/main")
	many := map[string][]byte{}
	for i := range 120 {
		many[fmt.Sprintf("many/%d.txt", i)] = []byte(fmt.Sprintf("file %d\n", i))
	}
	boss.commit(many, "many")
	boss.refused("pack exceeds the maximum of 100 objects", "HEAD:main")
	delete(many, "many/0.txt")
	for i := 50; i < 120; i++ {
		delete(many, fmt.Sprintf("many/%d.txt", i))
	}
	boss.s.mustGit(boss.dir, nil, "reset", "-q", "--hard", "origin/main")
	boss.commit(many, "fewer")
	boss.allowed("HEAD:main")
}

// TestDiskSpaceGuard checks "min free space" on a small file system the
// test mounts (a tmpfs of 16 MiB; it needs root): a push that would
// leave less free is refused while its pack is written, one when the
// disk is already short before anything is written, nothing is left
// behind, and the repository keeps serving reads and smaller pushes.
func TestDiskSpaceGuard(t *testing.T) {
	fs, err := os.MkdirTemp("", "gotd-e2enet-fs-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(fs)
	if out, err := runErr("mount", "-t", "tmpfs", "-o", "size=16m,mode=0755", "tmpfs", fs); err != nil {
		if os.Getenv("GOTD_REQUIRE_E2E") != "" {
			t.Fatalf("cannot mount a tmpfs: %v\n%s", err, out)
		}
		t.Skipf("cannot mount a tmpfs (needs root): %v\n%s", err, out)
	}
	defer func() {
		if out, err := runErr("umount", fs); err != nil {
			t.Errorf("umount: %v\n%s", err, out)
		}
	}()
	tiny := filepath.Join(fs, "tiny.git")
	run(t, "git", "init", "-q", "--bare", "-b", "main", tiny)
	if os.Geteuid() == 0 {
		run(t, "chown", "-R", rootDaemon, tiny)
	}
	s := start(t, options{extraTop: fmt.Sprintf(`repository "tiny" {
	path "%s"
	permit rw %s
	permit ro anonymous
	push min free space 8M
}`, tiny, rwAccount)})
	// Over SSH: the test's HTTP body limit is below these packs.
	url := s.sshURL(rwAccount, "tiny")
	env := []string{"GIT_SSH_COMMAND=" + s.sshCommand(s.writerKey)}
	dir := s.clientDir("tiny")
	s.mustGit(dir, nil, "init", "-q", "-b", "main", "w")
	w := filepath.Join(dir, "w")
	commit := func(name string, data []byte) {
		t.Helper()
		write(t, filepath.Join(w, name), string(data), 0o644)
		s.mustGit(w, nil, "add", "-A")
		s.mustGit(w, nil, "commit", "-q", "-m", name)
	}
	commit("readme", []byte("tiny\n"))
	s.mustGit(w, env, "push", "-q", url, "HEAD:main")
	check := func(what string) {
		t.Helper()
		if q := quarantinesLeft(tiny); len(q) > 0 {
			t.Errorf("%s: quarantines left: %v", what, q)
		}
		fsck(t, tiny)
		// Reads go on.
		clone := filepath.Join(s.clientDir("clones"), fmt.Sprint(len(what), what[:4]))
		s.mustGit(s.dir, nil, "clone", "-q", "--bare", s.gitURL("tiny"), clone)
		os.RemoveAll(clone)
	}
	before := refs(t, tiny)

	// 10 MiB of pack on 16 MiB with 8 MiB to keep: refused as the
	// pack is written.
	commit("big.bin", randomBytes(10<<20))
	out, err := s.git(w, env, "push", url, "HEAD:main")
	if err == nil || !strings.Contains(out, "not enough disk space on the server for this push") {
		t.Errorf("push over the guard: %v\n%s", err, out)
	}
	if got := refs(t, tiny); got != before {
		t.Errorf("references changed:\n%s\nwere:\n%s", got, before)
	}
	check("big push")

	// Already short of space: refused before anything is written.
	s.mustGit(w, nil, "reset", "-q", "--hard", "HEAD~1")
	filler := filepath.Join(fs, "filler")
	if err := os.WriteFile(filler, make([]byte, 9<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	commit("small.txt", []byte("small\n"))
	out, err = s.git(w, env, "push", url, "HEAD:main")
	if err == nil || !strings.Contains(out, "not enough disk space on the server for this push") {
		t.Errorf("push on a full disk: %v\n%s", err, out)
	}
	check("full disk")

	// Room again: the small push lands.
	os.Remove(filler)
	s.mustGit(w, env, "push", "-q", url, "HEAD:main")
	if got := strings.TrimSpace(run(t, "git", "--git-dir", tiny, "rev-parse", "main")); got != strings.TrimSpace(s.mustGit(w, nil, "rev-parse", "HEAD")) {
		t.Errorf("small push: server main is %s", got)
	}
	check("small push")
}

// quarantinesLeft returns the quarantine directories of the repository
// at dir still there 10 s after a push ended. The client hears how its
// push went once the session has said so, and the parent removes the
// quarantine when the session process has exited, a moment later
// (after it described the push for notifications).
func quarantinesLeft(dir string) []string {
	deadline := time.Now().Add(10 * time.Second)
	for {
		q, _ := filepath.Glob(filepath.Join(dir, "objects", "incoming-*"))
		if len(q) == 0 || time.Now().After(deadline) {
			return q
		}
		time.Sleep(20 * time.Millisecond)
	}
}
