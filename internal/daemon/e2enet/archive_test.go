package e2enet

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// archiveRemote runs `git archive --remote=url args…` and returns its
// standard output and error apart.
func (s *server) archiveRemote(env []string, url string, args ...string) ([]byte, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), gitTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", append([]string{"archive", "--remote=" + url}, args...)...)
	cmd.Dir = s.dir
	cmd.Env = append(append(safeEnv(s.t), "GIT_TERMINAL_PROMPT=0"), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.Bytes(), errb.String(), err
}

// localArchive is `git archive args…` run on the repository itself.
func localArchive(t *testing.T, gitDir string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("git", append([]string{"--git-dir", gitDir, "archive"}, args...)...)
	cmd.Env = safeEnv(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git archive %q: %v", args, err)
	}
	return out
}

// TestArchiveRemote runs C Git's `git archive --remote` over git:// and
// the built-in SSH server: tar archives of a branch, a tag, a commit
// id, with a prefix and with paths are byte for byte those of `git
// archive` on the repository, a tgz decompresses to them, a zip lists
// the same files; a private repository is no repository to those who
// may not read it, a hidden reference no reference, and bad arguments
// are refused with C Git's words; each request's audit record says
// archive.
func TestArchiveRemote(t *testing.T) {
	s := start(t, options{extraTest: "\thide namespace \"refs/internal/\""})
	src := filepath.Join(s.dir, "test.git")
	tree := strings.TrimSpace(run(t, "git", "--git-dir", src, "rev-parse", "main^{tree}"))
	hidden := strings.TrimSpace(run(t, "git", "--git-dir", src, "commit-tree", "-m", "hidden", "-p", "main", tree))
	run(t, "git", "--git-dir", src, "update-ref", "refs/internal/x", hidden)
	if os.Geteuid() == 0 {
		run(t, "chown", "-R", rootDaemon, src)
	}
	old := strings.TrimSpace(run(t, "git", "--git-dir", src, "rev-parse", "main~5"))

	transports := []struct {
		name string
		url  func(repo string) string
		env  []string
	}{
		{"git", s.gitURL, nil},
		{"ssh", func(repo string) string { return s.sshURL(roAccount, repo) }, []string{"GIT_SSH_COMMAND=" + s.sshCommand(s.readerKey)}},
	}
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			url := tr.url("test")
			for _, args := range [][]string{
				{"--format=tar", "HEAD"},
				{"--format=tar", "v1.0"},
				{"--format=tar", old},
				{"--format=tar", "--prefix=test-1.0/", "main"},
				{"--format=tar", "main", "dir0", "dir1/sub1"},
			} {
				got, stderr, err := s.archiveRemote(tr.env, url, args...)
				if err != nil {
					t.Fatalf("git archive --remote %q: %v\n%s", args, err, stderr)
				}
				want := localArchive(t, src, args...)
				if !bytes.Equal(got, want) {
					t.Errorf("git archive --remote %q: %d bytes, differing from git archive's %d", args, len(got), len(want))
				}
				args[0] = "--format=tgz"
				gz, stderr, err := s.archiveRemote(tr.env, url, args...)
				if err != nil {
					t.Fatalf("git archive --remote %q: %v\n%s", args, err, stderr)
				}
				zr, err := gzip.NewReader(bytes.NewReader(gz))
				if err != nil {
					t.Fatalf("tgz %q: %v", args, err)
				}
				if tar, err := io.ReadAll(zr); err != nil || !bytes.Equal(tar, want) {
					t.Errorf("tgz %q: %d bytes (%v), want the tar's %d", args, len(tar), err, len(want))
				}
			}
			zip, stderr, err := s.archiveRemote(tr.env, url, "--format=zip", "--prefix=z/", "HEAD")
			if err != nil {
				t.Fatalf("git archive --remote --format=zip: %v\n%s", err, stderr)
			}
			if g, w := zipNames(t, s.dir, zip), zipNames(t, s.dir, localArchive(t, src, "--format=zip", "--prefix=z/", "HEAD")); g != w {
				t.Errorf("zip lists\n%s\nwant\n%s", g, w)
			}

			for _, tc := range []struct {
				repo string
				args []string
				want string
			}{
				{"private", []string{"HEAD"}, "no such repository"},
				{"nosuch", []string{"HEAD"}, "no such repository"},
				{"test", []string{"internal/x"}, "NACK no such ref"},
				{"test", []string{"refs/internal/x"}, "NACK no such ref"},
				{"test", []string{hidden}, "NACK no such ref"},
				{"test", []string{"--format=rar", "HEAD"}, "NACK Unknown archive format"},
				{"test", []string{"--format=tar", "-9", "HEAD"}, "NACK Argument not supported for format 'tar': -9"},
				{"test", []string{"HEAD", "no/such/path"}, "NACK pathspec did not match any files"},
				{"test", []string{"--bogus", "HEAD"}, "NACK unknown option"},
			} {
				out, stderr, err := s.archiveRemote(tr.env, tr.url(tc.repo), tc.args...)
				if err == nil || len(out) > 0 || !strings.Contains(stderr, tc.want) {
					t.Errorf("git archive --remote %s %q: %v, %d bytes, stderr %q; want it refused with %q", tc.repo, tc.args, err, len(out), stderr, tc.want)
				}
			}
		})
	}
	if n := countLines(s.log.String(), "action=archive outcome=ok"); n < 2*11 {
		t.Errorf("%d audit records of archives that succeeded; want %d", n, 2*11)
	}
	// The daemon still serves.
	s.mustGit(s.dir, nil, "ls-remote", s.gitURL("test"))
}

// zipNames lists a zip's entries with unzip.
func zipNames(t *testing.T, dir string, b []byte) string {
	t.Helper()
	f := filepath.Join(dir, "list.zip")
	write(t, f, string(b), 0o644)
	out := run(t, "unzip", "-Z1", f)
	run(t, "unzip", "-tq", f)
	return out
}
