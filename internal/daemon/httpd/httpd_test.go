package httpd

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"gotd/internal/daemon/ipc"
)

func TestParseRoute(t *testing.T) {
	for _, c := range []struct {
		method, target string
		want           route
		code           int
	}{
		{"GET", "/demo/info/refs?service=git-upload-pack", route{"demo", "git-upload-pack", ipc.ModeAdvertise}, 0},
		{"GET", "/a/b.git/info/refs?service=git-receive-pack", route{"a/b.git", "git-receive-pack", ipc.ModeAdvertise}, 0},
		{"POST", "/demo/git-upload-pack", route{"demo", "git-upload-pack", ipc.ModeStateless}, 0},
		{"POST", "//demo//git-receive-pack", route{"demo", "git-receive-pack", ipc.ModeStateless}, 0},
		{"GET", "/demo/info/refs", route{}, http.StatusForbidden},
		{"GET", "/demo/info/refs?service=git-upload-archive", route{}, http.StatusForbidden},
		{"POST", "/demo/info/refs?service=git-upload-pack", route{}, http.StatusMethodNotAllowed},
		{"GET", "/demo/git-upload-pack", route{}, http.StatusMethodNotAllowed},
		{"GET", "/demo/HEAD", route{}, http.StatusNotFound},
		{"POST", "/git-upload-pack", route{}, http.StatusNotFound},
		{"GET", "/info/refs?service=git-upload-pack", route{}, http.StatusNotFound},
	} {
		r := httptest.NewRequest(c.method, c.target, nil)
		got, code := parseRoute(r)
		if code != c.code || code == 0 && got != c.want {
			t.Errorf("%s %s: %+v %d, want %+v %d", c.method, c.target, got, code, c.want, c.code)
		}
	}
}

func FuzzParseRoute(f *testing.F) {
	f.Add("GET", "/demo/info/refs?service=git-upload-pack")
	f.Add("POST", "/a/b/git-receive-pack")
	f.Fuzz(func(t *testing.T, method, target string) {
		r, err := http.NewRequest(method, "http://h"+target, nil)
		if err != nil {
			return
		}
		rt, code := parseRoute(r)
		if code == 0 && (rt.repo == "" || strings.HasPrefix(rt.repo, "/") || len(rt.repo) > ipc.MaxRepoName ||
			rt.service != "git-upload-pack" && rt.service != "git-receive-pack") {
			t.Fatalf("%s %q: accepted %+v", method, target, rt)
		}
	})
}

func TestLimitedBody(t *testing.T) {
	rec := httptest.NewRecorder()
	b := &limitedBody{r: strings.NewReader(strings.Repeat("x", 100)), left: 100, rc: http.NewResponseController(rec)}
	if n, err := io.Copy(io.Discard, b); n != 100 || err != nil || b.over.Load() {
		t.Errorf("at the limit: %d %v %v", n, err, b.over.Load())
	}
	b = &limitedBody{r: strings.NewReader(strings.Repeat("x", 101)), left: 100, rc: http.NewResponseController(rec)}
	if n, err := io.Copy(io.Discard, b); n != 100 || !errors.Is(err, errTooLarge) || !b.over.Load() {
		t.Errorf("over the limit: %d %v %v", n, err, b.over.Load())
	}
}
