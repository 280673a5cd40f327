package httpd

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
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
		{"GET", "/demo/info/refs?service=git-upload-pack", route{repo: "demo", service: "git-upload-pack", mode: ipc.ModeAdvertise}, 0},
		{"GET", "/a/b.git/info/refs?service=git-receive-pack", route{repo: "a/b.git", service: "git-receive-pack", mode: ipc.ModeAdvertise}, 0},
		{"POST", "/demo/git-upload-pack", route{repo: "demo", service: "git-upload-pack", mode: ipc.ModeStateless}, 0},
		{"POST", "//demo//git-receive-pack", route{repo: "demo", service: "git-receive-pack", mode: ipc.ModeStateless}, 0},
		{"GET", "/demo/info/refs?service=git-upload-archive", route{}, http.StatusForbidden},
		{"POST", "/demo/info/refs?service=git-upload-pack", route{}, http.StatusMethodNotAllowed},
		{"GET", "/demo/git-upload-pack", route{}, http.StatusMethodNotAllowed},
		{"POST", "/git-upload-pack", route{}, http.StatusNotFound},
		{"GET", "/info/refs?service=git-upload-pack", route{}, http.StatusNotFound},
		// The dumb protocol's files.
		{"GET", "/demo/info/refs", route{repo: "demo", service: "git-upload-pack", mode: ipc.ModeDumb, file: "info/refs"}, 0},
		{"GET", "/a/b.git/HEAD", route{repo: "a/b.git", service: "git-upload-pack", mode: ipc.ModeDumb, file: "HEAD"}, 0},
		{"GET", "/demo/objects/info/packs", route{repo: "demo", service: "git-upload-pack", mode: ipc.ModeDumb, file: "objects/info/packs"}, 0},
		{"GET", "/objects/objects/ab/cdef", route{repo: "objects", service: "git-upload-pack", mode: ipc.ModeDumb, file: "objects/ab/cdef"}, 0},
		{"GET", "/demo/objects/pack/pack-1.idx", route{repo: "demo", service: "git-upload-pack", mode: ipc.ModeDumb, file: "objects/pack/pack-1.idx"}, 0},
		{"HEAD", "/demo/info/refs", route{}, http.StatusMethodNotAllowed},
		{"POST", "/demo/HEAD", route{}, http.StatusMethodNotAllowed},
		{"GET", "/demo/objects/ab", route{}, http.StatusNotFound},
		{"GET", "/demo/objects/a/b/c", route{}, http.StatusNotFound},
		{"GET", "/objects/info/packs", route{}, http.StatusNotFound},
		{"GET", "/HEAD", route{}, http.StatusNotFound},
		{"GET", "/demo/config", route{}, http.StatusNotFound},
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
	f.Add("GET", "/a/b/objects/pack/pack-1.pack")
	f.Add("GET", "/a/HEAD")
	f.Fuzz(func(t *testing.T, method, target string) {
		r, err := http.NewRequest(method, "http://h"+target, nil)
		if err != nil {
			return
		}
		rt, code := parseRoute(r)
		if code == 0 && (rt.repo == "" || strings.HasPrefix(rt.repo, "/") || len(rt.repo) > ipc.MaxRepoName ||
			rt.service != "git-upload-pack" && rt.service != "git-receive-pack" ||
			(rt.mode == ipc.ModeDumb) != (rt.file != "") || rt.mode == ipc.ModeDumb && (method != "GET" || rt.service != "git-upload-pack")) {
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

func TestBodyLimit(t *testing.T) {
	for _, c := range []struct {
		service    string
		configured int64
		want       int64
	}{
		{"git-upload-pack", 1 << 30, maxFetchBody},
		{"git-upload-pack", 512 << 10, 512 << 10},
		{"git-receive-pack", 1 << 30, 1 << 30},
	} {
		if got := bodyLimit(c.service, c.configured); got != c.want {
			t.Errorf("bodyLimit(%s, %d) = %d; want %d", c.service, c.configured, got, c.want)
		}
	}
}

// TestGzipBomb checks that a small gzip fetch body that inflates past
// the fetch limit, within the default body limit (issue 18: a 1 MB one
// inflating to 1 GiB took session_read to 954 MB) is cut at the fetch
// limit, and that reading it holds no more than buffers.
func TestGzipBomb(t *testing.T) {
	var packed bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&packed, gzip.BestCompression)
	zeros := make([]byte, 1<<20)
	for range 96 {
		zw.Write(zeros)
	}
	zw.Close()
	size := packed.Len()
	zr, err := gzip.NewReader(&packed)
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b := &limitedBody{r: zr, left: bodyLimit("git-upload-pack", 1<<30), rc: http.NewResponseController(httptest.NewRecorder())}
	n, err := io.Copy(io.Discard, b)
	runtime.ReadMemStats(&after)
	if n != maxFetchBody || !errors.Is(err, errTooLarge) || !b.over.Load() {
		t.Errorf("read %d bytes of a %d-byte bomb (%v); want %d and errTooLarge", n, size, err, maxFetchBody)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 4<<20 {
		t.Errorf("reading the body allocated %d KiB; want buffers only", got>>10)
	}
}
