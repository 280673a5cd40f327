package notify

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"gotd/internal/daemon/ipc"
	"gotd/internal/daemon/pushnote"
	"gotd/internal/daemon/webhook"
)

// HTTPTarget is a "url" notification target with its secrets resolved.
type HTTPTarget struct {
	URL string
	// User and Password, from the secrets file's auth entry, are sent
	// with HTTP basic authentication when User is not empty.
	User, Password string
	// HMACKey, from the hmac entry, signs the body when not nil.
	HMACKey []byte
	// Method is the request's method ("" for POST). URLTemplate, if
	// not nil, is URL parsed as a template; Body, if not nil, is the
	// body's template, sent instead of the JSON document.
	Method            string
	URLTemplate, Body *webhook.Template
}

// newHTTPTarget returns the target m tells, its templates parsed.
func newHTTPTarget(m *ipc.NotifyTarget) (HTTPTarget, error) {
	h := HTTPTarget{URL: m.URL, User: m.User, Password: m.Password, Method: m.Method}
	if m.HMAC != "" {
		h.HMACKey = []byte(m.HMAC)
	}
	var err error
	if h.Method != "" {
		if err := webhook.CheckMethod(h.Method, m.BodyKind != ""); err != nil {
			return h, err
		}
	}
	if h.URLTemplate, err = webhook.Parse(webhook.URL, m.URL); err != nil {
		return h, err
	}
	if m.BodyKind != "" {
		k, ok := webhook.BodyKind(m.BodyKind)
		if !ok {
			return h, fmt.Errorf("unknown body kind %q", m.BodyKind)
		}
		if h.Body, err = webhook.Parse(k, m.Body); err != nil {
			return h, err
		}
	}
	return h, nil
}

// request is what a delivery sends to an HTTPTarget.
type request struct {
	method, url string
	body        []byte // nil: none
	contentType string
}

// expand returns the request t makes for a push note (its JSON
// document): t's method, its URL and body templates expanded with the
// note's values, or, without a body template, the document itself
// when the method has a body. An error is t's templates' and permanent.
func (t *HTTPTarget) expand(note []byte) (*request, error) {
	r := &request{method: cmp.Or(t.Method, http.MethodPost), url: t.URL}
	var v *webhook.Values
	if t.Body != nil || t.URLTemplate != nil && t.URLTemplate.Placeholders() > 0 {
		doc, err := pushnote.Decode(note)
		if err != nil {
			return nil, err
		}
		v = values(doc)
	}
	if t.URLTemplate != nil && t.URLTemplate.Placeholders() > 0 {
		u, err := t.URLTemplate.Expand(v)
		if err != nil {
			return nil, err
		}
		r.url = u
	}
	switch {
	case t.Body != nil:
		b, err := t.Body.Expand(v)
		if err != nil {
			return nil, err
		}
		r.body, r.contentType = []byte(b), t.Body.Kind().ContentType()
	case webhook.HasBody(r.method):
		r.body, r.contentType = note, "application/json"
	}
	return r, nil
}

// actions name the actions of pushnote documents as ${action} gives
// them.
var actions = map[string]string{pushnote.Created: "created", pushnote.FastForward: "updated",
	pushnote.Rewritten: "forced", pushnote.Deleted: "deleted", pushnote.Moved: "moved"}

// values returns the values of the placeholders for d: its newest
// commit is the first listed, and its new commits those listed and
// those only counted.
func values(d *pushnote.Document) *webhook.Values {
	v := &webhook.Values{Repo: d.Repo, Ref: d.Ref.Name, Old: d.Ref.Old, New: d.Ref.New, Pusher: d.User,
		Action: actions[d.Ref.Action], Commits: max(d.MoreCommits, 0)}
	first := true
	for i := range d.Notifications {
		it := &d.Notifications[i]
		var who *pushnote.Person
		switch it.Type {
		case pushnote.TypeCommit:
			v.Commits++
			who = it.Author
		case pushnote.TypeTag:
			who = it.Tagger
		default:
			continue
		}
		if first {
			first = false
			v.Subject = it.Subject
			if it.Type == pushnote.TypeTag {
				v.Subject, _, _ = strings.Cut(strings.TrimLeft(it.Message, "\n"), "\n")
			}
			if who != nil {
				v.Author, v.AuthorEmail = who.Name, who.Mail
			}
		}
	}
	return v
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
			// 301, 302 and 303 would turn a POST into a GET without
			// its body, which a 2xx answer would then count as
			// delivered; a GET stays a GET.
			if req.Method != via[0].Method || via[0].Body != nil && req.Response != nil &&
				req.Response.StatusCode != http.StatusTemporaryRedirect && req.Response.StatusCode != http.StatusPermanentRedirect {
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

// sendHTTP sends t's request for note, a push note's JSON document
// (expand). A 2xx answer is success; 4xx answers other than 408 and 429
// are permanent errors, and so is a request t's templates cannot make;
// anything else (no connection, a time-out, 5xx) is temporary. The
// HMAC signature is the body's, or, for a request without a body, that
// of its path and query as sent (the request target).
func sendHTTP(ctx context.Context, c *http.Client, t HTTPTarget, note []byte) error {
	r, err := t.expand(note)
	if err != nil {
		return &PermanentError{fmt.Errorf("notify: %s: %w", t.URL, err)}
	}
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, r.url, body)
	if err != nil {
		return &PermanentError{fmt.Errorf("notify: %s: %w", t.URL, err)}
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	req.Header.Set("User-Agent", "gotd-notify")
	if t.User != "" {
		req.SetBasicAuth(t.User, t.Password)
	}
	if t.HMACKey != nil {
		signed := r.body
		if signed == nil {
			signed = []byte(req.URL.RequestURI())
		}
		req.Header.Set(SignatureHeader, Sign(t.HMACKey, signed))
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
