package e2enet

import (
	"encoding/pem"
	"fmt"
	"net/http/cgi"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gotd/internal/gittest"
)

// TestMirrorCA: a pull mirror of git http-backend behind a TLS server
// whose certificate is self-signed syncs when its "ca" is that
// certificate; without a ca (the system's roots) and with another CA
// the sync fails, gotctl sync and gotctl info say the certificate did
// not verify, and the mirror is left empty.
func TestMirrorCA(t *testing.T) {
	root := mirrorRoot(t)
	up := filepath.Join(root, "up.git")
	run(t, "git", "init", "-q", "--bare", "-b", "main", up)
	gittest.Generate(t, up, gittest.History{Commits: 5, Files: 3})
	git, err := exec.LookPath("git")
	if err != nil {
		t.Fatal(err)
	}
	web := httptest.NewTLSServer(&cgi.Handler{Path: git, Args: []string{"http-backend"},
		Env: append(gittest.Env(t), "GIT_PROJECT_ROOT="+root, "GIT_HTTP_EXPORT_ALL=1")})
	t.Cleanup(web.Close)
	ours, other := filepath.Join(root, "ca.pem"), filepath.Join(root, "other.pem")
	write(t, ours, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: web.Certificate().Raw})), 0o644)
	write(t, other, string(gittest.OtherCA(t)), 0o644)
	cases := []struct{ name, option, want string }{
		{"ca-ours", fmt.Sprintf(" ca %q", ours), ""},
		{"ca-none", "", "certificate signed by unknown authority"},
		{"ca-other", fmt.Sprintf(" ca %q", other), "certificate signed by unknown authority"},
	}
	var blocks string
	for _, tc := range cases {
		path := filepath.Join(root, tc.name+".git")
		mirrorRepo(t, path)
		blocks += fmt.Sprintf("repository %q {\n\tpath %q\n\tpermit ro anonymous\n\tmirror from %q every 1h%s\n}\n", tc.name, path, web.URL+"/up.git", tc.option)
	}
	s := start(t, options{extraTop: blocks})
	want := headsAndTags(t, up)
	for _, tc := range cases {
		out, err := s.sync(tc.name)
		got := headsAndTags(t, filepath.Join(root, tc.name+".git"))
		if tc.want == "" {
			if err != nil || got != want {
				t.Errorf("%s: gotctl sync: %v\n%s\nreferences\n%s\nwant\n%s", tc.name, err, out, got, want)
			}
			continue
		}
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("%s: gotctl sync: got %v\n%s\nwant a failure saying %q", tc.name, err, out, tc.want)
		}
		if got != "" {
			t.Errorf("%s: references after the failed sync:\n%s", tc.name, got)
		}
	}
	info, err := s.gotctl("info")
	if err != nil || !strings.Contains(info, "unknown authority") {
		t.Errorf("gotctl info: %v\n%s\nwant the failed mirrors' reason", err, info)
	}
}
