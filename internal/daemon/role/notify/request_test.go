package notify

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"gotd/internal/daemon/config"
	"gotd/internal/daemon/ipc"
	"gotd/internal/daemon/pushnote"
	"gotd/internal/daemon/webhook"
)

// seenRequest is what a test receiver saw of one request.
type seenRequest struct {
	method, host, requestURI, ctype, sig string
	query                                url.Values
	body                                 []byte
}

func receiver(t *testing.T) (*httptest.Server, chan seenRequest) {
	got := make(chan seenRequest, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- seenRequest{method: r.Method, host: r.Host, requestURI: r.RequestURI, ctype: r.Header.Get("Content-Type"),
			sig: r.Header.Get(SignatureHeader), query: r.URL.Query(), body: body}
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

// note returns the JSON push note of a forced push of ref whose newest
// commit has subject.
func note(t *testing.T, ref, subject string) []byte {
	d := &pushnote.Document{Ref: pushnote.Ref{Name: ref, Action: pushnote.Rewritten, Old: strings.Repeat("a", 40), New: strings.Repeat("b", 40)},
		Notifications: []pushnote.Item{
			{Type: pushnote.TypeCommit, ID: strings.Repeat("b", 40), Subject: subject, Author: &pushnote.Person{Name: "A U Thor", Mail: "author@example.com"}},
			{Type: pushnote.TypeCommit, Short: true, ID: strings.Repeat("c", 40), Subject: "older"},
		}, MoreCommits: 5}
	d.SetOrigin("proj", "alice")
	b, err := d.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func target(t *testing.T, m *ipc.NotifyTarget) HTTPTarget {
	t.Helper()
	h, err := newHTTPTarget(m)
	if err != nil {
		t.Fatalf("target %+v: %v", m, err)
	}
	return h
}

// TestSendTemplates sends a CI trigger (POST, branch and subject in
// the query, a form body) and a chat message (JSON body) for pushes of
// hostile reference names and subjects: the receiver sees the
// configured host and fields, each value as it was, a body of the
// declared type, signed.
func TestSendTemplates(t *testing.T) {
	srv, got := receiver(t)
	base, _ := url.Parse(srv.URL)
	key := "k"
	ci := target(t, &ipc.NotifyTarget{URL: srv.URL + "/job/${repo}/build?branch=${branch}&msg=${subject}", HMAC: key,
		Method: "POST", BodyKind: "form", Body: "token=T&sha=${new}&who=${pusher}"})
	chat := target(t, &ipc.NotifyTarget{URL: srv.URL + "/chat", HMAC: key, BodyKind: "json",
		Body: `{"text": "${pusher} ${action} ${branch}: ${subject} (${commits} commits)", "count": ${commits}, "author": ${author}}`})
	ping := target(t, &ipc.NotifyTarget{URL: srv.URL + "/ping/${branch}?a=${action}", HMAC: key, Method: "GET"})
	plain := target(t, &ipc.NotifyTarget{URL: srv.URL + "/text", BodyKind: "text", Body: "${pusher} pushed ${branch}\n${subject}\n"})
	c := newHTTPClient(5 * time.Second)
	for _, tc := range []struct{ branch, subject string }{
		{"main", "Fix the build"},
		{"feat&evil=1", "a=b&c=d?e#f"},
		{"x/../../admin", "../../../etc/passwd"},
		{"..", "."},
		{"üñí/☃", "\"quoted\" \\ back\\slash\u2028"},
		{"a#b%20c+d", "line\r\nX-Injected: yes\r\nHost: evil.example.com"},
		{"@evil.example.com", "}, \"admin\": true, {\""},
	} {
		n := note(t, "refs/heads/"+tc.branch, tc.subject)
		if err := sendHTTP(context.Background(), c, ci, n); err != nil {
			t.Fatalf("%q: ci: %v", tc.branch, err)
		}
		r := <-got
		if r.method != "POST" || r.host != base.Host || r.ctype != "application/x-www-form-urlencoded" || r.sig != Sign([]byte(key), r.body) {
			t.Errorf("%q: ci request %+v", tc.branch, r)
		}
		if !strings.HasPrefix(r.requestURI, "/job/proj/build?") || len(r.query) != 2 || r.query.Get("branch") != tc.branch ||
			r.query.Get("msg") != strings.ToValidUTF8(tc.subject, "\uFFFD") {
			t.Errorf("%q: ci URL %s: query %v", tc.branch, r.requestURI, r.query)
		}
		form, err := url.ParseQuery(string(r.body))
		if err != nil || len(form) != 3 || form.Get("token") != "T" || form.Get("sha") != strings.Repeat("b", 40) || form.Get("who") != "alice" {
			t.Errorf("%q: ci form %q: %v", tc.branch, r.body, err)
		}

		if err := sendHTTP(context.Background(), c, chat, n); err != nil {
			t.Fatalf("%q: chat: %v", tc.branch, err)
		}
		r = <-got
		var msg struct {
			Text   string
			Count  int
			Author string
		}
		dec := json.NewDecoder(strings.NewReader(string(r.body)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&msg); err != nil || r.ctype != "application/json" || r.sig != Sign([]byte(key), r.body) || r.requestURI != "/chat" {
			t.Errorf("%q: chat request %+v: %v", tc.branch, r, err)
		}
		if want := "alice forced " + tc.branch + ": " + tc.subject + " (7 commits)"; msg.Text != want || msg.Count != 7 || msg.Author != "A U Thor" {
			t.Errorf("%q: chat message %+v; want text %q, 7 commits", tc.branch, msg, want)
		}

		if err := sendHTTP(context.Background(), c, ping, n); err != nil {
			t.Fatalf("%q: ping: %v", tc.branch, err)
		}
		r = <-got
		wantPath := "/ping/" + url.PathEscape(tc.branch)
		if u, _ := url.Parse(r.requestURI); r.method != "GET" || len(r.body) != 0 || r.ctype != "" || u == nil || u.Path != "/ping/"+tc.branch ||
			r.query.Get("a") != "forced" || len(r.query) != 1 || r.sig != Sign([]byte(key), []byte(r.requestURI)) {
			t.Errorf("%q: ping request %+v (path like %s)", tc.branch, r, wantPath)
		}

		if err := sendHTTP(context.Background(), c, plain, n); err != nil {
			t.Fatalf("%q: text: %v", tc.branch, err)
		}
		r = <-got
		if r.ctype != "text/plain; charset=utf-8" || strings.Count(string(r.body), "\n") != 2 || strings.ContainsAny(string(r.body), "\r") ||
			!strings.HasPrefix(string(r.body), "alice pushed "+tc.branch+"\n") {
			t.Errorf("%q: text body %q", tc.branch, r.body)
		}
	}

	// A target without templates sends the document, as before.
	if err := sendHTTP(context.Background(), c, target(t, &ipc.NotifyTarget{URL: srv.URL + "/doc"}), note(t, "refs/heads/main", "x")); err != nil {
		t.Fatal(err)
	}
	if r := <-got; r.method != "POST" || r.ctype != "application/json" || string(r.body) != string(note(t, "refs/heads/main", "x")) {
		t.Errorf("document request %+v", r)
	}
	// PUT without a body template sends the document too.
	if err := sendHTTP(context.Background(), c, target(t, &ipc.NotifyTarget{URL: srv.URL + "/doc", Method: "PUT"}), note(t, "refs/heads/main", "x")); err != nil {
		t.Fatal(err)
	}
	if r := <-got; r.method != "PUT" || r.ctype != "application/json" {
		t.Errorf("PUT request %+v", r)
	}
}

// TestSendTooLong: a request whose expansion passes its bound is
// refused for good, and nothing is sent.
func TestSendTooLong(t *testing.T) {
	srv, got := receiver(t)
	tg := target(t, &ipc.NotifyTarget{URL: srv.URL + "/x?" + strings.Repeat("s=${subject}&", 10)})
	err := sendHTTP(context.Background(), newHTTPClient(time.Second), tg, note(t, "refs/heads/main", strings.Repeat("&", 1000)))
	var perm *PermanentError
	if !errors.As(err, &perm) {
		t.Errorf("got %v; want a permanent error", err)
	}
	select {
	case r := <-got:
		t.Errorf("received %+v", r)
	default:
	}
}

// TestValues checks the placeholders' values for a created tag, a
// fast-forward and a deletion.
func TestValues(t *testing.T) {
	tag := &pushnote.Document{Repo: "r", User: "u", Ref: pushnote.Ref{Name: "refs/tags/v1", Action: pushnote.Created, New: strings.Repeat("1", 40)},
		Notifications: []pushnote.Item{{Type: pushnote.TypeTag, Tag: "v1", Message: "\nRelease 1\n\nNotes.\n",
			Tagger: &pushnote.Person{Name: "T", Mail: "t@example.com"}}}}
	v := values(tag)
	if v.Action != "created" || v.Commits != 0 || v.Subject != "Release 1" || v.Author != "T" || v.AuthorEmail != "t@example.com" || v.Ref != "refs/tags/v1" {
		t.Errorf("tag: %+v", v)
	}
	ff := &pushnote.Document{Ref: pushnote.Ref{Name: "refs/heads/main", Action: pushnote.FastForward},
		Notifications: []pushnote.Item{{Type: pushnote.TypeCommit, Subject: "new"}, {Type: pushnote.TypeCommit, Subject: "old"}}, MoreCommits: 2}
	if v := values(ff); v.Action != "updated" || v.Commits != 4 || v.Subject != "new" || v.Author != "" {
		t.Errorf("fast-forward: %+v", v)
	}
	del := &pushnote.Document{Ref: pushnote.Ref{Name: "refs/heads/x", Action: pushnote.Deleted, Old: "o"},
		Notifications: []pushnote.Item{{Type: pushnote.TypeBranchDeleted, Ref: "refs/heads/x"}}}
	if v := values(del); v.Action != "deleted" || v.Commits != 0 || v.Subject != "" || v.Old != "o" {
		t.Errorf("deletion: %+v", v)
	}
}

// TestRedirectGET: a GET follows a redirect on the same host that a
// POST may not (it would lose its body).
func TestRedirectGET(t *testing.T) {
	srv, got := receiver(t)
	mux := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, srv.URL+"/there", http.StatusFound)
	}))
	defer mux.Close()
	c := newHTTPClient(2 * time.Second)
	// srv and mux are both on 127.0.0.1 but on different ports: other
	// hosts, refused.
	err := sendHTTP(context.Background(), c, target(t, &ipc.NotifyTarget{URL: mux.URL + "/here", Method: "GET"}), note(t, "refs/heads/main", "x"))
	var perm *PermanentError
	if !errors.As(err, &perm) {
		t.Errorf("redirect to another port: %v; want a permanent error", err)
	}
	var self *httptest.Server
	self = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/here" {
			http.Redirect(w, r, self.URL+"/there", http.StatusFound)
			return
		}
		got <- seenRequest{method: r.Method, requestURI: r.RequestURI}
	}))
	defer self.Close()
	if err := sendHTTP(context.Background(), c, target(t, &ipc.NotifyTarget{URL: self.URL + "/here", Method: "GET"}), note(t, "refs/heads/main", "x")); err != nil {
		t.Errorf("GET redirected on the same host: %v", err)
	}
	select {
	case r := <-got:
		if r.method != "GET" || r.requestURI != "/there" {
			t.Errorf("after the redirect: %+v", r)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("nothing received after the redirect")
	}
	if err := sendHTTP(context.Background(), c, target(t, &ipc.NotifyTarget{URL: self.URL + "/here"}), note(t, "refs/heads/main", "x")); !errors.As(err, &perm) {
		t.Errorf("POST redirected with 302: %v; want a permanent error", err)
	}
}

// TestSettingsTemplates passes url targets with templates from a
// configuration to the notify process's settings: method and templates
// arrive, and the ports of templated URLs are those the process may
// connect to.
func TestSettingsTemplates(t *testing.T) {
	cfg, err := config.Parse("t.conf", []byte(`repository r {
path "/r"
notify {
url "http://ci.example.com:8080/job/${repo}?b=${branch}" method PUT body text "${subject}"
url "https://chat.example.com/hook" body json '{"t": "${ref}"}'
url "https://h/ping/${branch}" method GET
}
}
`), config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := SettingsOf(Messages(cfg, "host", "_gotd"))
	if err != nil {
		t.Fatal(err)
	}
	urls := s.Repos["r"].URLs
	if len(urls) != 3 || urls[0].Method != "PUT" || urls[0].Body == nil || urls[0].Body.Kind() != webhook.Text ||
		urls[1].Method != "" || urls[1].Body == nil || urls[1].Body.Kind() != webhook.JSON || urls[2].Body != nil ||
		urls[0].URLTemplate.Placeholders() != 2 {
		t.Fatalf("targets %+v", urls)
	}
	if got := s.Ports(); !slices.Equal(got, []uint16{53, 443, 8080}) {
		t.Errorf("ports %v; want 53 443 8080", got)
	}
	// A message the parent would not send is refused, not sent blindly.
	for _, m := range []*ipc.NotifyTarget{
		{Repo: "r", Kind: ipc.TargetURL, URL: "https://${repo}/x"},
		{Repo: "r", Kind: ipc.TargetURL, URL: "https://h/x", Method: "GET", BodyKind: "text", Body: "x"},
		{Repo: "r", Kind: ipc.TargetURL, URL: "https://h/x", BodyKind: "yaml"},
		{Repo: "r", Kind: ipc.TargetURL, URL: "https://h/x", BodyKind: "json", Body: "{"},
	} {
		if err := s.add(m); err == nil {
			t.Errorf("target %+v accepted", m)
		}
	}
}

// TestQueueDropsTooLong: a notification whose request would be too long
// is not queued for that target (logged), and is for the others.
func TestQueueDropsTooLong(t *testing.T) {
	q, _, err := OpenQueue(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var logged strings.Builder
	log := slog.New(slog.NewTextHandler(&logged, nil))
	s := &Settings{Repos: map[string]*Repo{"r": {NotifyRepo: ipc.NotifyRepo{Name: "r"}, URLs: []HTTPTarget{
		target(t, &ipc.NotifyTarget{URL: "https://h/x?" + strings.Repeat("s=${subject}&", 10)}),
		target(t, &ipc.NotifyTarget{URL: "https://h/y?s=${subject}"}),
	}}}}
	n := &notifier{log: log, queue: q, worker: NewWorker(q, nil, log), settings: s, changed: make(chan struct{}, 1)}
	n.notification(&ipc.Notification{Repo: "r", User: "alice", Note: note(t, "refs/heads/main", strings.Repeat("&", 1000))})
	if ds := q.Pending(); len(ds) != 1 || ds[0].Target != "url:https://h/y?s=${subject}" {
		t.Errorf("queued %+v; want the second target's only", ds)
	}
	if !strings.Contains(logged.String(), "notification dropped") || !strings.Contains(logged.String(), "expansion too long") {
		t.Errorf("log:\n%s", logged.String())
	}
}
