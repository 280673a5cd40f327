package interop

import (
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"gotd/internal/git/repo"
	"gotd/internal/gittest"
	"gotd/internal/protocol/pktline"
	"gotd/internal/protocol/receive"
	"gotd/internal/protocol/upload"
	"gotd/internal/protocol/wire"
)

// smartHTTP serves the repositories under root with Git's smart HTTP
// protocol, to exercise the advertise-only and stateless modes of the
// services as an HTTP front-end uses them.
func smartHTTP(t *testing.T, root string) *httptest.Server {
	h := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		path := req.URL.Path
		var name, service string
		advertise := false
		switch {
		case strings.HasSuffix(path, "/info/refs"):
			name, service, advertise = strings.TrimSuffix(path, "/info/refs"), req.URL.Query().Get("service"), true
		case strings.HasSuffix(path, "/git-upload-pack"):
			name, service = strings.TrimSuffix(path, "/git-upload-pack"), "git-upload-pack"
		case strings.HasSuffix(path, "/git-receive-pack"):
			name, service = strings.TrimSuffix(path, "/git-receive-pack"), "git-receive-pack"
		}
		if name == "" || strings.Contains(name, "..") || (service != "git-upload-pack" && service != "git-receive-pack") {
			http.NotFound(w, req)
			return
		}
		r, err := repo.Open(filepath.Join(root, name), repo.Options{})
		if err != nil {
			http.NotFound(w, req)
			return
		}
		defer r.Close()
		version := wire.ParseVersion(req.Header.Get("Git-Protocol"))
		var body io.Reader = req.Body
		if req.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(req.Body)
			if err != nil {
				http.Error(w, "bad gzip", http.StatusBadRequest)
				return
			}
			body = zr
		}
		if advertise {
			w.Header().Set("Content-Type", "application/x-"+service+"-advertisement")
			if version != wire.V2 {
				pw := pktline.NewWriter(w)
				pw.WriteString("# service=" + service + "\n")
				pw.Flush()
			}
		} else {
			w.Header().Set("Content-Type", "application/x-"+service+"-result")
		}
		ctx := context.Background()
		if service == "git-upload-pack" {
			_, err = upload.Serve(ctx, body, w, upload.Options{Repo: r, Version: version, AdvertiseOnly: advertise, StatelessRPC: !advertise, Filter: true})
		} else {
			_, err = receive.Serve(ctx, body, w, receive.Options{Repo: r, Version: version, AdvertiseOnly: advertise, StatelessRPC: !advertise})
		}
		if err != nil {
			t.Logf("%s %s: %v", req.Method, req.URL, err)
		}
	})
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

func TestSmartHTTP(t *testing.T) {
	root := t.TempDir()
	src := filepath.Join(root, "src.git")
	gittest.Git(t, "", "-c", "init.defaultBranch=main", "init", "-q", "--bare", src)
	gittest.Generate(t, src, gittest.History{Commits: 20, Branches: 2, Files: 8})
	gittest.Git(t, src, "config", "http.receivepack", "true")
	s := smartHTTP(t, root)
	for _, v := range []string{"0", "2"} {
		t.Run("v"+v, func(t *testing.T) {
			work := filepath.Join(t.TempDir(), "work")
			gittest.Git(t, "", "-c", "protocol.version="+v, "clone", "-q", s.URL+"/src.git", work)
			gittest.Git(t, work, "fsck", "--full")
			if a, b := branchesAndTags(t, work), branchesAndTags(t, src); a != b {
				t.Errorf("clone refs:\n%s\nwant\n%s", a, b)
			}
			// Several negotiation rounds: the clone is far behind.
			shallow := filepath.Join(t.TempDir(), "shallow")
			gittest.Git(t, "", "-c", "protocol.version="+v, "clone", "-q", "--depth=1", s.URL+"/src.git", shallow)
			gittest.Git(t, shallow, "-c", "protocol.version="+v, "fetch", "-q", "--unshallow")
			gittest.Git(t, shallow, "fsck", "--full")
			id := commitFile(t, work, "http-"+v+".txt", "pushed over HTTP\n")
			gittest.Git(t, work, "-c", "protocol.version="+v, "push", "-q", "origin", "HEAD:refs/heads/http-"+v)
			if got := strings.TrimSpace(gittest.Git(t, src, "rev-parse", "http-"+v)); got != id {
				t.Errorf("pushed %s, server has %s", id, got)
			}
			gittest.Git(t, work, "-c", "protocol.version="+v, "fetch", "-q")
		})
	}
	gittest.Git(t, src, "fsck", "--full")
}
