package e2enet

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMemoryLimit serves a clone that needs more memory than the
// configured budget of a client's processes (a tree of a million
// entries, 36 MB, which the walk reads whole, with "memory limit
// 32M"), and checks that the process over it is ended and logged, that
// the client fails, and that the daemon goes on serving others (issue
// 18). (A large blob no longer serves: blobs are streamed.)
func TestMemoryLimit(t *testing.T) {
	s := start(t, options{extraConn: "\tmemory limit 32M"})
	src := filepath.Join(s.dir, "private.git")
	empty := strings.TrimSpace(run(t, "sh", "-c", "git --git-dir "+src+" hash-object -w --stdin </dev/null"))
	// The tree is written as it is, not through git mktree, which took
	// minutes on a loaded machine.
	id, err := hex.DecodeString(empty)
	if err != nil {
		t.Fatal(err)
	}
	list := filepath.Join(s.dir, "entries")
	f, err := os.Create(list)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	for i := range 1000000 {
		fmt.Fprintf(w, "100644 f%07d\x00%s", i, id)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	tree := strings.TrimSpace(run(t, "sh", "-c", "git --git-dir "+src+" hash-object -w -t tree --literally --stdin <"+list))
	commit := strings.TrimSpace(run(t, "git", "--git-dir", src, "commit-tree", "-m", "big", tree))
	run(t, "git", "--git-dir", src, "update-ref", "refs/heads/main", commit)
	if os.Geteuid() == 0 {
		run(t, "chown", "-R", rootDaemon, src)
	}

	dir := s.clientDir("memory")
	env := []string{"GIT_SSH_COMMAND=" + s.sshCommand(s.writerKey)}
	out, err := s.git(dir, env, "clone", "-q", "--bare", s.sshURL(rwAccount, "private"), "big.git")
	if err == nil {
		t.Fatalf("a clone needing a 36 MB tree served within 32 MiB:\n%s", out)
	}
	if !strings.Contains(s.log.String(), "out of memory for this request: ending the process") {
		t.Errorf("the clone failed without a process over its budget:\n%s", out)
	}
	// session_read was sending on a side-band: the client is told there.
	if !strings.Contains(out, "remote: server out of memory for this request") {
		t.Errorf("the client was not told:\n%s", out)
	}
	// Others are served.
	s.mustGit(dir, nil, "clone", "-q", "--bare", s.gitURL("test"), "test.git")
}
