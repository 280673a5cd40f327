package e2enet

import (
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMemoryLimit serves a clone that needs more memory than the
// configured budget of a client's processes (a blob of 96 MiB, which
// repo_read reads whole, with "memory limit 32M"), and checks that the
// process over it is ended and logged, that the client fails, and that
// the daemon goes on serving others (issue 18).
func TestMemoryLimit(t *testing.T) {
	s := start(t, options{extraConn: "\tmemory limit 32M"})
	big := filepath.Join(s.dir, "big")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.ReadFrom(&io96{}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	src := filepath.Join(s.dir, "private.git")
	blob := strings.TrimSpace(run(t, "git", "--git-dir", src, "hash-object", "-w", big))
	tree := strings.TrimSpace(run(t, "sh", "-c", "printf '100644 blob "+blob+"\\tbig\\n' | git --git-dir "+src+" mktree"))
	commit := strings.TrimSpace(run(t, "git", "--git-dir", src, "commit-tree", "-m", "big", tree))
	run(t, "git", "--git-dir", src, "update-ref", "refs/heads/main", commit)
	if os.Geteuid() == 0 {
		run(t, "chown", "-R", rootDaemon, src)
	}

	dir := s.clientDir("memory")
	env := []string{"GIT_SSH_COMMAND=" + s.sshCommand(s.writerKey)}
	out, err := s.git(dir, env, "clone", "-q", "--bare", s.sshURL(rwAccount, "private"), "big.git")
	if err == nil {
		t.Fatalf("a clone needing 96 MiB served within 32 MiB:\n%s", out)
	}
	if !strings.Contains(s.log.String(), "out of memory for this request: ending the process") {
		t.Errorf("the clone failed without a process over its budget:\n%s", out)
	}
	// repo_read was sending on a side-band: the client is told there.
	if !strings.Contains(out, "remote: server out of memory for this request") {
		t.Errorf("the client was not told:\n%s", out)
	}
	// Others are served.
	s.mustGit(dir, nil, "clone", "-q", "--bare", s.gitURL("test"), "test.git")
}

// io96 reads 96 MiB of random bytes.
type io96 struct{ n int }

func (r *io96) Read(p []byte) (int, error) {
	if r.n >= 96<<20 {
		return 0, io.EOF
	}
	p = p[:min(len(p), 96<<20-r.n)]
	rand.Read(p)
	r.n += len(p)
	return len(p), nil
}
