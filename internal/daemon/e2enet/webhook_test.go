package e2enet

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gotd/internal/daemon/role/notify"
)

// request is what the receiver of TestNotifyRequestTemplates saw of one
// request.
type request struct {
	method, host, target, ctype, sig string
	user, pass                       string
	query                            url.Values
	body                             []byte
}

// requests collects the requests a loopback receiver gets.
type requests struct {
	mu  sync.Mutex
	got []request
}

func (rs *requests) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	user, pass, _ := r.BasicAuth()
	rs.mu.Lock()
	rs.got = append(rs.got, request{method: r.Method, host: r.Host, target: r.RequestURI, ctype: r.Header.Get("Content-Type"),
		sig: r.Header.Get(notify.SignatureHeader), user: user, pass: pass, query: r.URL.Query(), body: body})
	rs.mu.Unlock()
}

// wait waits for n requests, within limit, and returns those received.
func (rs *requests) wait(n int, limit time.Duration) []request {
	deadline := time.Now().Add(limit)
	for {
		rs.mu.Lock()
		got := append([]request(nil), rs.got...)
		rs.mu.Unlock()
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestNotifyRequestTemplates configures a CI trigger (a POST with the
// branch, the new id and the subject in the query, and a form body,
// with basic auth) and a chat web hook (a JSON message), pushes with C
// Git a branch whose name and newest subject hold what URLs, forms and
// JSON use as syntax, then force-pushes: the receiver on loopback gets
// each request at its configured host and path, with each value as it
// was pushed, bodies of the declared types, signed.
func TestNotifyRequestTemplates(t *testing.T) {
	t.Parallel() // long and not timed: runs beside the other such tests, after the timed ones
	rs := &requests{}
	srv := httptest.NewServer(http.HandlerFunc(rs.serve))
	defer srv.Close()
	base, _ := url.Parse(srv.URL)
	dir := spoolParent(t)
	o := options{
		extraTop:     fmt.Sprintf("notify spool %q\nnotify timeout 3", dir+"/spool"),
		extraSecrets: fmt.Sprintf("auth hooks user %q password %q\nhmac hooks %q\n", hookUser, hookPassword, hookKey),
		extraTest: "\tnotify {\n" +
			fmt.Sprintf("\t\turl %q method POST auth hooks insecure hmac hooks body form %q\n",
				srv.URL+"/job/${repo}/build?branch=${branch}&rev=${new}&msg=${subject}", "token=T&pusher=${pusher}") +
			fmt.Sprintf("\t\turl %q hmac hooks body json '%s'\n",
				srv.URL+"/chat", `{"text": "${pusher} ${action} ${ref}: ${subject}", "commits": ${commits}, "author": ${author}}`) +
			"\t}",
	}
	s := start(t, o)
	p := newPusher(s, "templates")

	const branch = "feat&evil=1#x/ü"
	subject := `Fix "quotes" \ & a=b?c#1 ü`
	id := p.commit(subject)
	p.push("HEAD:refs/heads/" + branch)
	got := rs.wait(2, 30*time.Second)
	if len(got) != 2 {
		t.Fatalf("%d requests; want 2", len(got))
	}
	for _, r := range got {
		if r.host != base.Host || r.sig != notify.Sign([]byte(hookKey), r.body) {
			t.Errorf("request %+v: want host %s and the body's signature", r, base.Host)
		}
		switch {
		case strings.HasPrefix(r.target, "/job/"):
			if r.method != "POST" || !strings.HasPrefix(r.target, "/job/test/build?") || r.user != hookUser || r.pass != hookPassword {
				t.Errorf("CI request %+v", r)
			}
			if len(r.query) != 3 || r.query.Get("branch") != branch || r.query.Get("rev") != id || r.query.Get("msg") != subject {
				t.Errorf("CI query %v (%s); want branch %q, rev %s, msg %q", r.query, r.target, branch, id, subject)
			}
			form, err := url.ParseQuery(string(r.body))
			if r.ctype != "application/x-www-form-urlencoded" || err != nil || len(form) != 2 || form.Get("token") != "T" || form.Get("pusher") != rwAccount {
				t.Errorf("CI body %q (%s): %v", r.body, r.ctype, err)
			}
		case r.target == "/chat":
			var msg struct {
				Text    string
				Commits int
				Author  string
			}
			dec := json.NewDecoder(strings.NewReader(string(r.body)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&msg); err != nil || r.method != "POST" || r.ctype != "application/json" || r.user != "" {
				t.Errorf("chat request %+v: %v", r, err)
			}
			if want := rwAccount + " created refs/heads/" + branch + ": " + subject; msg.Text != want || msg.Commits != 1 || msg.Author != "A U Thor" {
				t.Errorf("chat message %+v; want text %q, 1 commit by A U Thor", msg, want)
			}
		default:
			t.Errorf("request to %s", r.target)
		}
	}

	// A forced push is told as such.
	s.mustGit(p.dir, p.env, "commit", "-q", "--amend", "-m", "Rewritten")
	p.s.mustGit(p.dir, p.env, "push", "-q", "-f", "origin", "HEAD:refs/heads/"+branch)
	got = rs.wait(4, 30*time.Second)
	if len(got) != 4 {
		t.Fatalf("%d requests after the forced push; want 4", len(got))
	}
	for _, r := range got[2:] {
		if r.target == "/chat" && !strings.Contains(string(r.body), `"`+rwAccount+` forced refs/heads/`) {
			t.Errorf("chat after a forced push: %s", r.body)
		}
	}
	if log := s.log.String(); strings.Contains(log, "notification refused") || strings.Contains(log, "notification dropped") {
		t.Errorf("the log tells of a refused notification:\n%s", log)
	}

	// gotd -n reports a misspelt placeholder with its file and line.
	conf, err := os.ReadFile(s.conf)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(conf), "\n")
	n := slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, "${branch}") })
	lines[n] = strings.Replace(lines[n], "${branch}", "${brnch}", 1)
	bad := filepath.Join(s.dir, "bad.conf")
	write(t, bad, strings.Join(lines, "\n"), 0o644)
	out, err := exec.Command(s.gotd(), "-n", "-f", bad, "-s", s.secrets).CombinedOutput()
	if want := fmt.Sprintf("%s:%d: notification url template: unknown placeholder ${brnch}", bad, n+1); err == nil || !strings.Contains(string(out), want) {
		t.Errorf("gotd -n: %v\n%s\nwant %s", err, out, want)
	}
}
