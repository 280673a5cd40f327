package gittest

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGitShellSSHD: the git-shell server runs Git's commands and
// nothing else.
func TestGitShellSSHD(t *testing.T) {
	s := StartGitShellSSHD(t, false)
	dir := filepath.Join(t.TempDir(), "r.git")
	Git(t, "", "init", "-q", "--bare", dir)
	host, port, _ := strings.Cut(s.Addr, ":")
	ssh := []string{"-i", s.Key, "-o", "UserKnownHostsFile=" + s.KnownHosts, "-o", "BatchMode=yes", "-p", port, "root@" + host}
	out, err := exec.Command("ssh", append(ssh, "echo", "shell")...).CombinedOutput()
	if err == nil || strings.Contains(string(out), "shell\n") {
		t.Errorf("ssh echo shell: got %v, %q; want it refused by git-shell", err, out)
	}
	cmd := exec.Command("git", "ls-remote", s.URL(dir))
	cmd.Env = append(Env(t), "GIT_SSH_COMMAND=ssh -i "+s.Key+" -o UserKnownHostsFile="+s.KnownHosts+" -o BatchMode=yes")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("git ls-remote over git-shell: %v\n%s", err, out)
	}
}
