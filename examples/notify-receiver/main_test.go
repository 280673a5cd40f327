package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"gotd/internal/daemon/role/notify"
)

// TestReceiver checks the example against the signature gotd sends.
func TestReceiver(t *testing.T) {
	secret := []byte("shared secret")
	var out bytes.Buffer
	rc := &receiver{secret: secret, user: "hook", password: "pw", out: &out}
	body := `{"notifications":[]}`
	post := func(sig, user, pass string) int {
		req := httptest.NewRequest(http.MethodPost, "/hook", strings.NewReader(body))
		if sig != "" {
			req.Header.Set(notify.SignatureHeader, sig)
		}
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		w := httptest.NewRecorder()
		rc.ServeHTTP(w, req)
		return w.Code
	}
	good := notify.Sign(secret, []byte(body))
	if code := post(good, "hook", "pw"); code != http.StatusOK || strings.TrimSpace(out.String()) != body {
		t.Fatalf("signed request: %d, printed %q", code, out.String())
	}
	for name, code := range map[string]int{
		"other key":     post(notify.Sign([]byte("other"), []byte(body)), "hook", "pw"),
		"no signature":  post("", "hook", "pw"),
		"not hex":       post("sha256=zz", "hook", "pw"),
		"wrong scheme":  post(strings.Replace(good, "sha256", "sha1", 1), "hook", "pw"),
		"wrong pass":    post(good, "hook", "nope"),
		"no basic auth": post(good, "", ""),
	} {
		if code == http.StatusOK {
			t.Errorf("%s: accepted", name)
		}
	}
}
