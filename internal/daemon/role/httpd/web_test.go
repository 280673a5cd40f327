package httpd

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"gotd/internal/web"
)

// TestCopyWebHeaders checks what of a web process's answer reaches the
// browser: no header outside the list, nosniff always, and no policy
// but the pages' two, so that a web process taken over cannot let
// script run.
func TestCopyWebHeaders(t *testing.T) {
	for _, c := range []struct {
		name    string
		from    http.Header
		account string
		want    http.Header
	}{
		{"page", http.Header{"Content-Type": {"text/html; charset=utf-8"}, "Content-Security-Policy": {web.CSP}, "Etag": {`"1"`}, "Cache-Control": {"no-cache"}},
			"", http.Header{"Content-Type": {"text/html; charset=utf-8"}, "Content-Security-Policy": {web.CSP}, "Etag": {`"1"`}, "Cache-Control": {"no-cache"},
				"X-Content-Type-Options": {"nosniff"}}},
		{"raw", http.Header{"Content-Security-Policy": {web.RawCSP}, "X-Content-Type-Options": {"sniff"}},
			"", http.Header{"Content-Security-Policy": {web.RawCSP}, "X-Content-Type-Options": {"nosniff"}}},
		{"script allowed", http.Header{"Content-Security-Policy": {"script-src 'unsafe-inline'"}, "Set-Cookie": {"a=b"}, "Access-Control-Allow-Origin": {"*"}},
			"", http.Header{"Content-Security-Policy": {web.CSP}, "X-Content-Type-Options": {"nosniff"}}},
		{"no policy", http.Header{}, "", http.Header{"Content-Security-Policy": {web.CSP}, "X-Content-Type-Options": {"nosniff"}}},
		{"two policies", http.Header{"Content-Security-Policy": {web.CSP, "script-src *"}}, "", http.Header{"Content-Security-Policy": {web.CSP}, "X-Content-Type-Options": {"nosniff"}}},
		{"account", http.Header{"Content-Security-Policy": {web.CSP}, "Cache-Control": {"public, max-age=31536000, immutable"}},
			"flan", http.Header{"Content-Security-Policy": {web.CSP}, "X-Content-Type-Options": {"nosniff"},
				"Cache-Control": {"private, public, max-age=31536000, immutable"}, "Vary": {"Authorization"}}},
	} {
		rec := httptest.NewRecorder()
		copyWebHeaders(rec.Header(), c.from, c.account)
		got := rec.Header()
		if len(got) != len(c.want) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
			continue
		}
		for k, v := range c.want {
			if g := got.Values(k); len(g) != len(v) || len(v) > 0 && g[0] != v[0] {
				t.Errorf("%s: %s is %q, want %q", c.name, k, g, v)
			}
		}
	}
}
