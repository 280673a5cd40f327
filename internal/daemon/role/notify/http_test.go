package notify

import (
	"context"
	"crypto/hmac"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestPostJSON(t *testing.T) {
	key := []byte("hmac secret")
	body := []byte(`{"notifications":[]}`)
	type seen struct {
		user, pass, sig, ctype string
		auth                   bool
		body                   []byte
	}
	got := make(chan seen, 10)
	status := http.StatusOK
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var s seen
		s.user, s.pass, s.auth = r.BasicAuth()
		s.sig, s.ctype = r.Header.Get(SignatureHeader), r.Header.Get("Content-Type")
		s.body, _ = io.ReadAll(r.Body)
		got <- s
		w.WriteHeader(status)
	}))
	defer recv.Close()
	c := newHTTPClient(2 * time.Second)
	ctx := context.Background()

	target := HTTPTarget{URL: recv.URL + "/hook", User: "u", Password: "p", HMACKey: key}
	if err := sendHTTP(ctx, c, target, body); err != nil {
		t.Fatalf("post: %v", err)
	}
	s := <-got
	// The receiver's check: the signature is the body's HMAC under the
	// shared key.
	if !s.auth || s.user != "u" || s.pass != "p" || s.ctype != "application/json" ||
		!hmac.Equal([]byte(s.sig), []byte(Sign(key, s.body))) || string(s.body) != string(body) {
		t.Fatalf("receiver saw %+v", s)
	}
	if err := sendHTTP(ctx, c, HTTPTarget{URL: recv.URL + "/hook"}, body); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s.auth || s.sig != "" {
		t.Fatalf("no auth or hmac configured, receiver saw %+v", s)
	}

	for _, tc := range []struct {
		status    int
		permanent bool
	}{{500, false}, {503, false}, {429, false}, {408, false}, {404, true}, {401, true}, {400, true}} {
		status = tc.status
		err := sendHTTP(ctx, c, target, body)
		<-got
		var perm *PermanentError
		if err == nil || errors.As(err, &perm) != tc.permanent {
			t.Errorf("status %d: %v; permanent %v wanted", tc.status, err, tc.permanent)
		}
	}
}

func TestPostJSONRedirects(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the other host received %s %s", r.Method, r.URL)
	}))
	defer other.Close()
	var same *httptest.Server
	same = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/away":
			http.Redirect(w, r, other.URL+"/x", http.StatusTemporaryRedirect)
		case "/moved":
			http.Redirect(w, r, same.URL+"/hook", http.StatusTemporaryRedirect)
		case "/found":
			// A 302 would have the client GET /hook without the body.
			http.Redirect(w, r, same.URL+"/hook", http.StatusFound)
		case "/hook":
			if r.Header.Get(SignatureHeader) == "" {
				t.Errorf("redirected request lost its signature")
			}
		}
	}))
	defer same.Close()
	c := newHTTPClient(2 * time.Second)
	err := sendHTTP(context.Background(), c, HTTPTarget{URL: same.URL + "/away", HMACKey: []byte("k")}, []byte("{}"))
	var perm *PermanentError
	if !errors.As(err, &perm) {
		t.Errorf("redirect to another host: %v; want a permanent error", err)
	}
	if err := sendHTTP(context.Background(), c, HTTPTarget{URL: same.URL + "/moved", HMACKey: []byte("k")}, []byte("{}")); err != nil {
		t.Errorf("redirect on the same host: %v", err)
	}
	if err := sendHTTP(context.Background(), c, HTTPTarget{URL: same.URL + "/found"}, []byte("{}")); !errors.As(err, &perm) {
		t.Errorf("302 redirect: %v; want a permanent error", err)
	}
}

func TestPostJSONTimeout(t *testing.T) {
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	defer hang.Close()
	defer close(release)
	c := newHTTPClient(200 * time.Millisecond)
	start := time.Now()
	err := sendHTTP(context.Background(), c, HTTPTarget{URL: hang.URL + "/hook"}, []byte("{}"))
	var perm *PermanentError
	if err == nil || errors.As(err, &perm) || time.Since(start) > 5*time.Second {
		t.Fatalf("hanging receiver: %v after %v; want a temporary error at the time-out", err, time.Since(start))
	}
}
