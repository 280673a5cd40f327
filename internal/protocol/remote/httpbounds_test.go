package remote

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gotd/internal/git/repo"
)

// TestHTTPIdleUpstream: an HTTP upstream that stops sending, before its
// headers, within its advertisement or dripping a byte now and then
// slower than the I/O timeout, ends the fetch after about the I/O
// timeout with an error saying so, not after the whole fetch's timeout.
func TestHTTPIdleUpstream(t *testing.T) {
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	wait := func(r *http.Request) {
		select {
		case <-stop:
		case <-r.Context().Done():
		case <-time.After(30 * time.Second):
		}
	}
	adv := "application/x-git-upload-pack-advertisement"
	for _, c := range []struct {
		name    string
		handler http.HandlerFunc
		want    string
	}{
		{"no headers", func(w http.ResponseWriter, r *http.Request) { wait(r) }, "no response for"},
		{"silent body", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", adv)
			w.Write([]byte("001e# service=git-upload-pack\n"))
			w.(http.Flusher).Flush()
			wait(r)
		}, "nothing received for"},
		{"slow drip", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", adv)
			w.(http.Flusher).Flush()
			for _, b := range []byte("001e# service=git-upload-pack\n0000") {
				select {
				case <-stop:
					return
				case <-r.Context().Done():
					return
				case <-time.After(1500 * time.Millisecond):
				}
				w.Write([]byte{b})
				w.(http.Flusher).Flush()
			}
		}, "nothing received for"},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(c.handler)
			t.Cleanup(srv.Close)
			r, err := repo.Init(filepath.Join(t.TempDir(), "m.git"), repo.InitOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			start := time.Now()
			_, err = Fetch(context.Background(), FetchOptions{URL: srv.URL + "/r", Repo: r, IOTimeout: time.Second, Timeout: 25 * time.Second})
			took := time.Since(start)
			if !errors.Is(err, ErrUpstream) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v after %v; want ErrUpstream saying %q", err, took, c.want)
			}
			if took > 10*time.Second {
				t.Errorf("the fetch took %v with an I/O timeout of 1s", took)
			}
		})
	}
}

// TestHTTPRedirects: the advertisement may be redirected on its host,
// never to another host or port, and no command's response is
// followed; the error does not quote the upstream's location.
func TestHTTPRedirects(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		http.Error(w, "no", http.StatusNotFound)
	}))
	t.Cleanup(other.Close)
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/away/"):
			http.Redirect(w, r, other.URL+"/x/info/refs?service=git-upload-pack&SECRET", http.StatusFound)
		case strings.HasPrefix(r.URL.Path, "/loop/"):
			http.Redirect(w, r, srv.URL+r.URL.Path+"x", http.StatusFound)
		case strings.HasPrefix(r.URL.Path, "/here/"):
			// Redirected on the same host to a path that does not
			// exist: followed, then refused with its status.
			http.Redirect(w, r, "/gone/info/refs?service=git-upload-pack", http.StatusFound)
		default:
			http.Error(w, "no", http.StatusNotFound)
		}
	}))
	t.Cleanup(srv.Close)
	for _, c := range []struct{ path, want string }{
		{"/away/r", "redirect refused: to another host or port"},
		{"/loop/r", "redirect refused: more than 5 redirects"},
		{"/here/r", "HTTP 404"},
	} {
		r, err := repo.Init(filepath.Join(t.TempDir(), "m.git"), repo.InitOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = Fetch(context.Background(), FetchOptions{URL: srv.URL + c.path, Repo: r, Timeout: 20 * time.Second})
		r.Close()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v; want an error holding %q", c.path, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "SECRET") {
			t.Errorf("%s: the error quotes the upstream's location: %v", c.path, err)
		}
	}
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("the other host got %d requests, want 0", n)
	}
}
