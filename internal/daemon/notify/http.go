package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// HTTPTarget is a "url" notification target with its secrets resolved.
type HTTPTarget struct {
	URL string
	// User and Password, from the secrets file's auth entry, are sent
	// with HTTP basic authentication when User is not empty.
	User, Password string
	// HMACKey, from the hmac entry, signs the body when not nil.
	HMACKey []byte
}

// SignatureHeader carries the body's HMAC-SHA256 under the target's
// hmac secret, as "sha256=<hex>" (the header OpenBSD gotd sends).
const SignatureHeader = "X-Gotd-Signature"

// Sign returns the value of SignatureHeader for body under key.
func Sign(key, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// errRedirect refuses a redirect elsewhere than the configured URL's
// scheme and host, or one that would not repeat the POST.
var errRedirect = errors.New("redirect refused")

// newHTTPClient returns the client deliveries use: each attempt bounded
// by timeout, and following a redirect only to the same scheme and
// host, so that the body and credentials go nowhere the configuration
// did not name.
func newHTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			first := via[0].URL
			if req.URL.Scheme != first.Scheme || req.URL.Host != first.Host {
				return fmt.Errorf("%w: %s://%s", errRedirect, req.URL.Scheme, req.URL.Host)
			}
			// 301, 302 and 303 would turn the POST into a GET without
			// its body, which a 2xx answer would then count as
			// delivered.
			if req.Method != http.MethodPost || req.Response != nil && req.Response.StatusCode != http.StatusTemporaryRedirect &&
				req.Response.StatusCode != http.StatusPermanentRedirect {
				return fmt.Errorf("%w: only 307 and 308 keep the request", errRedirect)
			}
			if len(via) >= 5 {
				return errors.New("too many redirects")
			}
			return nil
		},
	}
}

// PermanentError is a failure that trying again cannot mend (the
// receiver refused the request itself): the delivery is given up.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// postJSON sends body, a JSON document, to t. A 2xx answer is success;
// 4xx answers other than 408 and 429 are permanent errors; anything else
// (no connection, a time-out, 5xx) is temporary.
func postJSON(ctx context.Context, c *http.Client, t HTTPTarget, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL, bytes.NewReader(body))
	if err != nil {
		return &PermanentError{fmt.Errorf("notify: %s: %w", t.URL, err)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "gotd-notify")
	if t.User != "" {
		req.SetBasicAuth(t.User, t.Password)
	}
	if t.HMACKey != nil {
		req.Header.Set(SignatureHeader, Sign(t.HMACKey, body))
	}
	resp, err := c.Do(req)
	if errors.Is(err, errRedirect) {
		return &PermanentError{fmt.Errorf("notify: %s: %w", t.URL, err)}
	}
	if err != nil {
		return fmt.Errorf("notify: %s: %w", t.URL, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return nil
	case code >= 400 && code < 500 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests:
		return &PermanentError{fmt.Errorf("notify: %s: %s", t.URL, resp.Status)}
	default:
		return fmt.Errorf("notify: %s: %s", t.URL, resp.Status)
	}
}
