package remote

import (
	"context"
	"encoding/pem"
	"errors"
	"net/http/cgi"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gotd/internal/git/repo"
	"gotd/internal/gittest"
)

// TestCA: FetchOptions.CA and SendOptions.CA are the only roots an
// https upstream's or target's certificate is verified against: git
// http-backend behind a TLS server whose certificate is self-signed is
// fetched from and pushed to with that certificate as the CA; without
// a CA (the system's roots) and with another CA the fetch and the push
// fail as unverified and leave the repositories as they were; a CA
// holding no certificate is refused.
func TestCA(t *testing.T) {
	root := t.TempDir()
	up := filepath.Join(root, "up.git")
	gittest.Git(t, "", "-c", "init.defaultBranch=main", "init", "-q", "--bare", up)
	gittest.Generate(t, up, gittest.History{Commits: 4, Files: 3})
	target := filepath.Join(root, "target.git")
	gittest.Git(t, "", "-c", "init.defaultBranch=main", "init", "-q", "--bare", target)
	gittest.Git(t, target, "config", "http.receivepack", "true")
	git, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git is not installed")
	}
	web := httptest.NewTLSServer(&cgi.Handler{Path: git, Args: []string{"http-backend"},
		Env: append(gittest.Env(t), "GIT_PROJECT_ROOT="+root, "GIT_HTTP_EXPORT_ALL=1")})
	t.Cleanup(web.Close)
	ours := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: web.Certificate().Raw})
	for _, tc := range []struct {
		name string
		ca   []byte
		want string // "" for success, else in the error
	}{
		{"no CA", nil, "certificate"},
		{"another CA", gittest.OtherCA(t), "certificate"},
		{"no certificate", []byte("not PEM\n"), "no PEM certificate"},
		{"the server's CA", ours, ""},
	} {
		dir := filepath.Join(t.TempDir(), "mirror.git")
		r, err := repo.Init(dir, repo.InitOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = Fetch(context.Background(), FetchOptions{URL: web.URL + "/up.git", Repo: r, Prune: true, CA: tc.ca})
		r.Close()
		got := mirrored(t, dir)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("fetch, %s: %v", tc.name, err)
		case tc.want == "" && got != mirrored(t, up):
			t.Errorf("fetch, %s: references\n%s\nwant\n%s", tc.name, got, mirrored(t, up))
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("fetch, %s: got %v; want an error saying %q", tc.name, err, tc.want)
		case tc.want != "" && got != "":
			t.Errorf("fetch, %s: references %q; want none", tc.name, got)
		}

		src, err := repo.Open(up, repo.Options{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = Send(context.Background(), SendOptions{URL: web.URL + "/target.git", Repo: src, CA: tc.ca})
		src.Close()
		got = mirrored(t, target)
		switch {
		case tc.want == "" && (err != nil || got != mirrored(t, up)):
			t.Errorf("send, %s: %v; target's references\n%s", tc.name, err, got)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("send, %s: got %v; want an error saying %q", tc.name, err, tc.want)
		case tc.want != "" && got != "":
			t.Errorf("send, %s: target's references %q; want none", tc.name, got)
		}
	}
	if err := setCA(nil, []byte("x")); !errors.Is(err, ErrNoCA) {
		t.Errorf("setCA without a certificate: got %v; want ErrNoCA", err)
	}
}
