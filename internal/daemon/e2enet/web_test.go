package e2enet

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"html"
	"io"
	"math/rand"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	xhtml "golang.org/x/net/html"
)

// webClient fetches pages of a test server, as an account when user is
// set.
type webClient struct {
	t          *testing.T
	base       string
	user, pass string
	c          *http.Client
}

func (s *server) web(t *testing.T, user string) *webClient {
	return &webClient{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", s.httpPort), user: user, pass: password,
		c: &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// get fetches a path and returns the response with its body read.
func (w *webClient) get(path string) (*http.Response, []byte) {
	w.t.Helper()
	req, err := http.NewRequest("GET", w.base+path, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	if w.user != "" {
		req.SetBasicAuth(w.user, w.pass)
	}
	res, err := w.c.Do(req)
	if err != nil {
		w.t.Fatalf("GET %s: %v", path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		w.t.Fatalf("GET %s: body: %v", path, err)
	}
	return res, b
}

// voidElements have no end tag.
var voidElements = map[string]bool{"area": true, "base": true, "br": true, "col": true, "embed": true, "hr": true, "img": true,
	"input": true, "link": true, "meta": true, "source": true, "track": true, "wbr": true}

// checkPage checks that a page is well-formed HTML: every element
// closed in order, one html element, no script, no event handler
// attributes, no URL but the site's own paths and fragments. It
// returns the page's links (href values).
func checkPage(t *testing.T, path string, page []byte) []string {
	t.Helper()
	var links, stack []string
	z := xhtml.NewTokenizer(bytes.NewReader(page))
	for {
		tt := z.Next()
		switch tt {
		case xhtml.ErrorToken:
			if z.Err() != io.EOF {
				t.Errorf("%s: %v", path, z.Err())
			}
			if len(stack) > 0 {
				t.Errorf("%s: elements left open: %v", path, stack)
			}
			return links
		case xhtml.StartTagToken, xhtml.SelfClosingTagToken:
			tok := z.Token()
			if tok.Data == "script" || tok.Data == "iframe" || tok.Data == "object" || tok.Data == "embed" {
				t.Errorf("%s: a %s element", path, tok.Data)
			}
			for _, a := range tok.Attr {
				if strings.HasPrefix(strings.ToLower(a.Key), "on") {
					t.Errorf("%s: event handler attribute %s=%q", path, a.Key, a.Val)
				}
				if a.Key == "href" || a.Key == "src" {
					if !strings.HasPrefix(a.Val, "/") && !strings.HasPrefix(a.Val, "#") || strings.HasPrefix(a.Val, "//") {
						t.Errorf("%s: link %q leaves the site", path, a.Val)
					}
					if a.Key == "href" {
						links = append(links, a.Val)
					}
				}
			}
			if tt == xhtml.StartTagToken && !voidElements[tok.Data] {
				stack = append(stack, tok.Data)
			}
		case xhtml.EndTagToken:
			tok := z.Token()
			if len(stack) == 0 || stack[len(stack)-1] != tok.Data {
				t.Errorf("%s: </%s> closes %v", path, tok.Data, stack)
				return links
			}
			stack = stack[:len(stack)-1]
		}
	}
}

// maxCrawl bounds the pages a crawl visits: the test repositories have
// far fewer.
const maxCrawl = 4000

// crawl follows every link from "/" and checks every page: status
// 200, HTML that checkPage accepts, the security headers. It returns
// the pages visited with their bodies.
func (w *webClient) crawl() map[string][]byte {
	t := w.t
	t.Helper()
	seen := map[string][]byte{}
	queue := []string{"/"}
	// The login link asks anonymous visitors for credentials
	// (TestWebPrivate).
	queued := map[string]bool{"/": true, "/-/login": true}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if len(seen) == maxCrawl {
			t.Fatalf("more than %d pages", maxCrawl)
		}
		res, body := w.get(p)
		seen[p] = body
		if res.StatusCode != http.StatusOK {
			t.Errorf("GET %s: status %d: %.200s", p, res.StatusCode, body)
			continue
		}
		if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("GET %s: X-Content-Type-Options %q", p, got)
		}
		if got := res.Header.Get("Content-Security-Policy"); !strings.Contains(got, "default-src 'none'") || strings.Contains(got, "script-src") {
			t.Errorf("GET %s: Content-Security-Policy %q", p, got)
		}
		if !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
			continue
		}
		for _, l := range checkPage(t, p, body) {
			if strings.HasPrefix(l, "#") {
				continue
			}
			u, err := url.Parse(l)
			if err != nil {
				t.Errorf("%s: bad link %q", p, l)
				continue
			}
			u.Fragment = ""
			next := u.String()
			if !queued[next] {
				queued[next] = true
				queue = append(queue, next)
			}
		}
	}
	return seen
}

// TestWebCrawl follows every link of every page the anonymous visitor
// and an account see: no 404, no 500, well-formed pages; and checks
// what each may see.
func TestWebCrawl(t *testing.T) {
	s := start(t, options{extraTest: "\tdescription \"The <test> repository\""})
	anon := s.web(t, "")
	pages := anon.crawl()
	if !bytes.Contains(pages["/"], []byte("The &lt;test&gt; repository")) || !bytes.Contains(pages["/test/"], []byte("The &lt;test&gt; repository")) {
		t.Errorf("the index and summary lack the configured description")
	}
	t.Logf("anonymous: %d pages", len(pages))
	for _, want := range []string{"/", "/test/", "/test/log", "/test/tree", "/empty/"} {
		if _, ok := pages[want]; !ok {
			t.Errorf("the crawl did not reach %s", want)
		}
	}
	for p := range pages {
		if strings.HasPrefix(p, "/private/") {
			t.Errorf("anonymous reached %s", p)
		}
	}
	if n := len(pages); n < 100 {
		t.Errorf("%d pages crawled, want more than 100", n)
	}
	writer := s.web(t, rwAccount)
	wpages := writer.crawl()
	t.Logf("%s: %d pages", rwAccount, len(wpages))
	if _, ok := wpages["/private/"]; !ok {
		t.Errorf("the writer's crawl did not reach /private/")
	}
}

// TestWebPrivate checks that a repository anonymous visitors may not
// read is not found by them, nor listed, and is shown to an account
// that may read it; that wrong credentials are refused; and that the
// login link asks for credentials.
func TestWebPrivate(t *testing.T) {
	s := start(t, options{})
	anon, writer, reader := s.web(t, ""), s.web(t, rwAccount), s.web(t, roAccount)
	for _, p := range []string{"/private/", "/private/log", "/private/tree/main", "/private/commit/main", "/private.git/", "/nonexistent/"} {
		if res, _ := anon.get(p); res.StatusCode != http.StatusNotFound {
			t.Errorf("anonymous GET %s: status %d, want 404", p, res.StatusCode)
		}
		if res, _ := reader.get(p); res.StatusCode != http.StatusNotFound {
			t.Errorf("%s GET %s: status %d, want 404", roAccount, p, res.StatusCode)
		}
	}
	_, index := anon.get("/")
	if bytes.Contains(index, []byte("private")) {
		t.Errorf("the anonymous index names the private repository:\n%s", index)
	}
	for _, p := range []string{"/private/", "/private/log", "/private/tree/main", "/private/commit/main"} {
		if res, body := writer.get(p); res.StatusCode != http.StatusOK {
			t.Errorf("%s GET %s: status %d: %.200s", rwAccount, p, res.StatusCode, body)
		} else if cc := res.Header.Get("Cache-Control"); !strings.Contains(cc, "private") {
			t.Errorf("%s GET %s: Cache-Control %q, want private", rwAccount, p, cc)
		}
	}
	if _, index := writer.get("/"); !bytes.Contains(index, []byte(`href="/private/"`)) {
		t.Errorf("the writer's index does not list the private repository:\n%s", index)
	}
	wrong := s.web(t, rwAccount)
	wrong.pass = "wrong"
	if res, _ := wrong.get("/private/"); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong password: status %d, want 401", res.StatusCode)
	}
	res, _ := anon.get("/-/login")
	if res.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Basic ") {
		t.Errorf("anonymous /-/login: status %d, WWW-Authenticate %q; want 401 and a challenge", res.StatusCode, res.Header.Get("WWW-Authenticate"))
	}
	if res, _ := writer.get("/-/login"); res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/" {
		t.Errorf("%s /-/login: status %d, Location %q; want 303 to /", rwAccount, res.StatusCode, res.Header.Get("Location"))
	}
	// Git's own requests on the same URLs are still smart HTTP.
	s.mustGit(s.clientDir("clone"), nil, "clone", "-q", s.httpURL("", "test"), "c")
}

// TestWebSnapshot checks that a snapshot's tar, decompressed, is what
// git archive writes for the same commit and prefix, and that its zip
// lists the same files.
func TestWebSnapshot(t *testing.T) {
	s := start(t, options{})
	src := filepath.Join(s.dir, "test.git")
	id := strings.TrimSpace(run(t, "git", "--git-dir", src, "rev-parse", "main"))
	anon := s.web(t, "")
	for _, rev := range []string{id, "main"} {
		res, body := anon.get("/test/snapshot/" + rev + ".tar.gz")
		if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/gzip" {
			t.Fatalf("snapshot of %s: status %d, type %q", rev, res.StatusCode, res.Header.Get("Content-Type"))
		}
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		want := run(t, "git", "--git-dir", src, "archive", "--format=tar", "--prefix=test-"+rev+"/", id)
		if !bytes.Equal(got, []byte(want)) {
			t.Errorf("snapshot of %s: %d bytes differ from git archive's %d", rev, len(got), len(want))
		}
		if rev == id && !strings.Contains(res.Header.Get("Cache-Control"), "immutable") {
			t.Errorf("snapshot of a commit id: Cache-Control %q", res.Header.Get("Cache-Control"))
		}
	}
	// The tar lists the files git ls-tree does.
	res, body := anon.get("/test/snapshot/" + id + ".zip")
	if res.StatusCode != http.StatusOK || !bytes.HasPrefix(body, []byte("PK")) {
		t.Fatalf("zip snapshot: status %d", res.StatusCode)
	}
	zipFile := filepath.Join(s.dir, "s.zip")
	if err := os.WriteFile(zipFile, body, 0o644); err != nil {
		t.Fatal(err)
	}
	var names []string
	tr := tar.NewReader(strings.NewReader(run(t, "git", "--git-dir", src, "archive", "--format=tar", id)))
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		if h.Typeflag == tar.TypeReg || h.Typeflag == tar.TypeSymlink {
			names = append(names, "test-"+id+"/"+h.Name)
		}
	}
	slices.Sort(names)
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(run(t, "zipinfo", "-1", zipFile)), "\n") {
		if !strings.HasSuffix(l, "/") {
			got = append(got, l)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, names) {
		t.Errorf("zip lists %v, want %v", got, names)
	}
}

// Payloads of the hostile repository: each would run script, or change
// the page's title, if a page let it through as markup.
const (
	hostileTitle  = "pwned"
	hostileScript = `<script>document.title='` + hostileTitle + `'</script>`
	hostileFile   = `"><img src=x onerror="document.title='` + hostileTitle + `'">.txt`
	hostileSVG    = `<svg onload=alert(1)>.txt`
	hostileJSName = `javascript:alert(1)`
	hostileBranch = `"><svg/onload=alert(1)>`
	hostileTag    = `<script>alert(1)<`
	hostileAuthor = `Mallory"' onmouseover="document.title='` + hostileTitle + `'" &amp;`
	hostileEmail  = `m"onfocus="alert(1)@example.com`
)

// pushHostile pushes, as the writer over HTTP, a commit to "test"
// whose file names, message and author carry the payloads, with a
// branch and an annotated tag named like markup.
func (s *server) pushHostile(t *testing.T) string {
	t.Helper()
	work := s.clientDir("hostile")
	s.mustGit(work, nil, "clone", "-q", s.httpURL("", "test"), "h")
	h := filepath.Join(work, "h")
	for _, name := range []string{hostileFile, hostileSVG, hostileJSName} {
		write(t, filepath.Join(h, name), hostileScript+"\n", 0o644)
	}
	os.MkdirAll(filepath.Join(h, hostileTag), 0o755)
	write(t, filepath.Join(h, hostileTag, "page.html"), "<!DOCTYPE html><html><body>"+hostileScript+"</body></html>\n", 0o644)
	s.mustGit(h, nil, "add", ".")
	env := []string{"GIT_AUTHOR_NAME=" + hostileAuthor, "GIT_AUTHOR_EMAIL=" + hostileEmail,
		"GIT_COMMITTER_NAME=" + hostileAuthor, "GIT_COMMITTER_EMAIL=" + hostileEmail}
	s.mustGit(h, env, "commit", "-q", "-m", hostileScript+"\n\n<a href=\"javascript:alert(1)\">click</a> "+hostileJSName)
	s.mustGit(h, env, "tag", "-a", "-m", hostileScript, hostileTag)
	id := strings.TrimSpace(s.mustGit(h, nil, "rev-parse", "HEAD"))
	push := s.httpURL(rwAccount+":"+strings.ReplaceAll(password, " ", "%20"), "test")
	s.mustGit(h, nil, "push", "-q", push, "HEAD:main", "HEAD:refs/heads/"+hostileBranch, "refs/tags/"+hostileTag)
	return id
}

// TestWebHostile crawls a repository whose names, messages and authors
// carry markup and script: every page is well-formed with no script,
// handler or foreign link (checkPage), the payloads show as text, a
// file served raw is plain text that cannot run, and the feeds are
// well-formed XML.
func TestWebHostile(t *testing.T) {
	s := start(t, options{})
	id := s.pushHostile(t)
	anon := s.web(t, "")
	pages := anon.crawl()
	t.Logf("%d pages", len(pages))
	commit, ok := pages["/test/commit/"+id]
	if !ok {
		t.Fatalf("the crawl did not reach the hostile commit %s", id)
	}
	for _, want := range []string{"&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;", "Mallory&#34;&#39; onmouseover=&#34;", "&amp;amp",
		"&lt;svg onload=alert(1)&gt;.txt", "javascript:alert(1)"} {
		if !bytes.Contains(commit, []byte(want)) {
			t.Errorf("the commit page lacks %q", want)
		}
	}
	var sawBranch, sawTag bool
	for p := range pages {
		sawBranch = sawBranch || strings.Contains(p, url.PathEscape(hostileBranch))
		sawTag = sawTag || strings.HasPrefix(p, "/test/tag/"+url.PathEscape(hostileTag))
	}
	if !sawBranch || !sawTag {
		t.Errorf("the crawl reached the hostile branch: %v, tag: %v", sawBranch, sawTag)
	}
	res, body := anon.get("/test/raw/main/" + url.PathEscape(hostileTag) + "/page.html")
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/plain; charset=utf-8" ||
		!strings.Contains(res.Header.Get("Content-Security-Policy"), "sandbox") || !bytes.Contains(body, []byte(hostileScript)) {
		t.Errorf("raw page.html: status %d, type %q, policy %q", res.StatusCode, res.Header.Get("Content-Type"), res.Header.Get("Content-Security-Policy"))
	}
	for _, p := range []string{"/test/atom", "/test/tags.atom", "/test/atom/" + url.PathEscape(hostileBranch)} {
		res, body := anon.get(p)
		if res.StatusCode != http.StatusOK {
			t.Errorf("GET %s: status %d", p, res.StatusCode)
			continue
		}
		d := xml.NewDecoder(bytes.NewReader(body))
		for {
			if _, err := d.Token(); err != nil {
				if err != io.EOF {
					t.Errorf("GET %s: not XML: %v", p, err)
				}
				break
			}
		}
		if !bytes.Contains(body, []byte("&lt;script&gt;")) {
			t.Errorf("GET %s: the payload is not in the feed, escaped", p)
		}
	}
}

// chromiumPath is Debian's chromium.
const chromiumPath = "/usr/bin/chromium"

// chromium runs headless Chromium on url with args (--dump-dom,
// --screenshot=…) and returns its standard output, bounded in time.
func chromium(t *testing.T, url string, args ...string) string {
	t.Helper()
	// The browser itself crashes now and then on a loaded machine
	// (a segmentation fault at start): such a run is tried again.
	for try := 1; ; try++ {
		profile := t.TempDir()
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		all := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
			"--user-data-dir=" + profile}, args...)
		cmd := exec.CommandContext(ctx, chromiumPath, append(all, url)...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		cmd.Env = append(os.Environ(), "HOME="+profile)
		err := cmd.Run()
		cancel()
		if err == nil {
			return out.String()
		}
		var exit *exec.ExitError
		if try < 3 && errors.As(err, &exit) && exit.ProcessState.Sys().(syscall.WaitStatus).Signaled() && ctx.Err() == nil {
			t.Logf("chromium %s: %v; trying again", url, err)
			continue
		}
		t.Fatalf("chromium %s: %v\n%s", url, err, errb.String())
	}
}

// TestWebChromium loads the index, a summary, a log, a commit with a
// diff, a tree and a blob in headless Chromium: the DOM it builds holds
// the expected text, and screenshots are written (a desktop's width;
// a phone's for the summary and the commit; GOTD_WEB_SCREENSHOTS names
// a directory to keep them in). Then the hostile repository's pages: no script
// ran (the payloads would set the document's title, and the DOM would
// hold elements they create).
func TestWebChromium(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("GOTD_REQUIRE_E2E") != "" {
			t.Fatalf("chromium is not installed: %v", err)
		}
		t.Skip("chromium is not installed")
	}
	s := start(t, options{})
	src := filepath.Join(s.dir, "test.git")
	head := strings.TrimSpace(run(t, "git", "--git-dir", src, "rev-parse", "main"))
	file := strings.SplitN(strings.TrimSpace(run(t, "git", "--git-dir", src, "ls-tree", "-r", "--name-only", "main")), "\n", 2)[0]
	firstLine, _, _ := strings.Cut(run(t, "git", "--git-dir", src, "show", "main:"+file), "\n")
	dir := strings.SplitN(file, "/", 2)[0]
	base := fmt.Sprintf("http://127.0.0.1:%d", s.httpPort)
	shots := t.TempDir()
	for _, tc := range []struct {
		name, path string
		want       []string
	}{
		{"index", "/", []string{"Repositories", `href="/test/"`, `href="/empty/"`}},
		{"summary", "/test/", []string{"Clone", fmt.Sprintf("git clone http://127.0.0.1:%d/test", s.httpPort), "Newest commits", "main"}},
		{"log", "/test/log", []string{"Log of HEAD", head[:10]}},
		{"commit", "/test/commit/" + head, []string{"Changes", "@@ -", "files changed", head}},
		{"tree", "/test/tree/main", []string{dir + "/", "log of this tree"}},
		{"blob", "/test/blob/main/" + file, []string{`id="L1"`, html.EscapeString(firstLine)}},
	} {
		// The DOM and a screenshot at a desktop's width in one run; the
		// summary and the commit at a phone's width too.
		png := filepath.Join(shots, tc.name+"-1280x900.png")
		dom := chromium(t, base+tc.path, "--dump-dom", "--screenshot="+png, "--window-size=1280,900", "--hide-scrollbars")
		for _, w := range tc.want {
			if !strings.Contains(dom, w) {
				t.Errorf("%s: the DOM lacks %q:\n%.2000s", tc.name, w, dom)
			}
		}
		pngs := []string{png}
		if tc.name == "summary" || tc.name == "commit" {
			phone := filepath.Join(shots, tc.name+"-390x844.png")
			chromium(t, base+tc.path, "--screenshot="+phone, "--window-size=390,844", "--hide-scrollbars")
			pngs = append(pngs, phone)
		}
		for _, png := range pngs {
			b, err := os.ReadFile(png)
			if err != nil || len(b) < 1000 || !bytes.HasPrefix(b, []byte("\x89PNG")) {
				t.Errorf("%s: screenshot %s: %d bytes, %v", tc.name, png, len(b), err)
			}
		}
	}
	if dir := os.Getenv("GOTD_WEB_SCREENSHOTS"); dir != "" {
		run(t, "cp", "-r", shots+"/.", dir)
	}

	id := s.pushHostile(t)
	for _, p := range []string{"/test/", "/test/commit/" + id, "/test/log", "/test/tree/" + id, "/test/tag/" + url.PathEscape(hostileTag),
		"/test/blob/" + id + "/" + url.PathEscape(hostileFile), "/test/raw/" + id + "/" + url.PathEscape(hostileTag) + "/page.html"} {
		dom := chromium(t, base+p, "--dump-dom")
		if strings.Contains(dom, "<title>"+hostileTitle) || strings.Contains(dom, "<svg") || strings.Contains(dom, "<img") || strings.Contains(dom, "<script") {
			t.Errorf("%s: a payload ran or made markup:\n%.3000s", p, dom)
		}
		if !strings.Contains(dom, "&lt;script&gt;") {
			t.Errorf("%s: the payload is not shown as text:\n%.3000s", p, dom)
		}
	}
}

// TestWebReload checks that a reload which changes who may read what
// reaches the pages: the web processes started before it end, so that
// a repository opened to anonymous visitors shows, and one closed to
// an account is no longer found by it. The anonymous web process,
// killed, is started again.
func TestWebReload(t *testing.T) {
	s := start(t, options{})
	anon, reader := s.web(t, ""), s.web(t, roAccount)
	if res, _ := anon.get("/private/"); res.StatusCode != http.StatusNotFound {
		t.Fatalf("anonymous /private/ before: status %d", res.StatusCode)
	}
	if res, _ := reader.get("/test/"); res.StatusCode != http.StatusOK {
		t.Fatalf("%s /test/ before: status %d", roAccount, res.StatusCode)
	}
	conf, err := os.ReadFile(s.conf)
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(string(conf), "\tpermit rw "+rwAccount+"\n}", "\tpermit rw "+rwAccount+"\n\tpermit ro anonymous\n}", 1)
	changed = strings.Replace(changed, "\tpermit ro "+roAccount+"\n", "\tdeny "+roAccount+"\n", 1)
	if changed == string(conf) {
		t.Fatal("the configuration did not change")
	}
	write(t, s.conf, changed, 0o644)
	if out, err := s.gotctl("reload"); err != nil {
		t.Fatalf("gotctl reload: %v\n%s", err, out)
	}
	if res, body := anon.get("/private/"); res.StatusCode != http.StatusOK {
		t.Errorf("anonymous /private/ after: status %d: %.200s", res.StatusCode, body)
	}
	// The anonymous web process, the only one now (the reader's ended
	// at the reload), dies: another serves after a second.
	pid := s.waitRole("web", 0)
	syscall.Kill(pid, syscall.SIGKILL)
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, _ := anon.get("/test/")
		if res.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no page after the web process was killed: status %d", res.StatusCode)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if res, _ := reader.get("/test/"); res.StatusCode != http.StatusNotFound {
		t.Errorf("%s /test/ after its deny: status %d, want 404", roAccount, res.StatusCode)
	}
}

// TestWebVisitors has 50 visitors, each of an address of its own,
// load pages at once, anonymous and as an account: every page is
// served (the web process makes 32 at a time, the others wait their
// turn).
func TestWebVisitors(t *testing.T) {
	s := start(t, options{})
	src := filepath.Join(s.dir, "test.git")
	head := strings.TrimSpace(run(t, "git", "--git-dir", src, "rev-parse", "main"))
	paths := []string{"/", "/test/", "/test/log", "/test/commit/" + head, "/test/tree/main", "/test/atom", "/test/tags"}
	var wg sync.WaitGroup
	errs := make(chan string, 50*len(paths))
	for i := range 50 {
		user := ""
		if i%5 == 0 {
			user = rwAccount
		}
		c := s.web(t, user)
		c.c.Transport = &http.Transport{DialContext: fromAddress(fmt.Sprintf("127.0.0.%d", 10+i), 0).DialContext}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, p := range paths {
				req, _ := http.NewRequest("GET", c.base+p, nil)
				if user != "" {
					req.SetBasicAuth(user, password)
				}
				res, err := c.c.Do(req)
				if err != nil {
					errs <- fmt.Sprintf("%s: %v", p, err)
					continue
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					errs <- fmt.Sprintf("%s: status %d", p, res.StatusCode)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	n := 0
	for e := range errs {
		if n++; n <= 10 {
			t.Error(e)
		}
	}
	if n > 0 {
		t.Errorf("%d of %d pages failed", n, 50*len(paths))
	}
}

// fromAddress returns a dialer whose connections leave from ip, a
// loopback address, each with a receive buffer of rcvbuf bytes if not
// zero (a visitor who reads nothing then holds little in its buffer).
func fromAddress(ip string, rcvbuf int) *net.Dialer {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	if rcvbuf > 0 {
		d.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf) })
			return errors.Join(err, serr)
		}
	}
	return d
}

// webFrom is an anonymous web client whose requests leave from ip.
func (s *server) webFrom(t *testing.T, ip string) *webClient {
	c := s.web(t, "")
	c.c.Transport = &http.Transport{DialContext: fromAddress(ip, 0).DialContext, DisableKeepAlives: true}
	return c
}

// TestWebSlowReaders has 40 visitors of one address ask for a large
// raw file and read nothing: a few hold a place until the minimum rate
// cuts them, the others are refused at once (503, Retry-After); pages
// from another address load promptly meanwhile, as a download read
// at full speed does after the stalled ones were cut.
func TestWebSlowReaders(t *testing.T) {
	const interval = 2 * time.Second
	s := start(t, options{extraConn: "\tminimum rate 64K per 2s"})
	work := s.clientDir("slow")
	sshEnv := []string{"GIT_SSH_COMMAND=" + s.sshCommand(s.writerKey)}
	s.mustGit(work, sshEnv, "clone", "-q", s.sshURL(rwAccount, "test"), "w")
	w := filepath.Join(work, "w")
	const size = 24 << 20
	big := make([]byte, size)
	rand.Read(big)
	write(t, filepath.Join(w, "big.bin"), string(big), 0o644)
	s.mustGit(w, nil, "add", "big.bin")
	s.mustGit(w, nil, "commit", "-q", "-m", "a large file")
	s.mustGit(w, sshEnv, "push", "-q", s.sshURL(rwAccount, "test"), "HEAD:main")
	request := fmt.Sprintf("GET /test/raw/main/big.bin HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", s.httpPort)

	// 40 visitors of 127.0.0.1 read the status line, and no more.
	type stalled struct {
		c  net.Conn
		br *bufio.Reader
	}
	var held []stalled
	refused := 0
	for i := range 40 {
		c, err := fromAddress("127.0.0.1", 4096).Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.httpPort))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, request); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReaderSize(c, 16)
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("stalled download %d: no answer within 5 s: %v", i, err)
		}
		switch res.StatusCode {
		case http.StatusOK:
			held = append(held, stalled{c, br})
		case http.StatusServiceUnavailable:
			if res.Header.Get("Retry-After") == "" {
				t.Errorf("stalled download %d: 503 without Retry-After", i)
			}
			refused++
			c.Close()
		default:
			t.Fatalf("stalled download %d: status %d", i, res.StatusCode)
		}
	}
	t.Logf("%d downloads held, %d refused", len(held), refused)
	if len(held) == 0 || len(held) > 4 {
		t.Errorf("%d downloads of one address held at once; want 1 to 4", len(held))
	}

	// Another address's pages are served meanwhile, promptly.
	other := s.webFrom(t, "127.0.0.2")
	for _, p := range []string{"/", "/test/", "/test/log", "/test/tree/main", "/test/blob/main/big.bin", "/test/atom"} {
		t0 := time.Now()
		res, _ := other.get(p)
		if d := time.Since(t0); res.StatusCode != http.StatusOK || d > 5*time.Second {
			t.Errorf("GET %s from another address: status %d after %v; want 200 promptly", p, res.StatusCode, d)
		}
	}

	// The stalled downloads are cut once the buffers between are full
	// and an interval has passed without the rate: each ends short of
	// the file's size.
	time.Sleep(3 * interval)
	for i, h := range held {
		h.c.SetDeadline(time.Now().Add(30 * time.Second))
		n, err := io.Copy(io.Discard, h.br)
		if n >= size {
			t.Errorf("stalled download %d: got %d bytes, the whole file; want it cut (err %v)", i, n, err)
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("stalled download %d: still open after %v: %v", i, 3*interval+30*time.Second, err)
		}
	}

	// A visitor of the same address who reads gets the whole file.
	fast := s.webFrom(t, "127.0.0.1")
	res, body := fast.get("/test/raw/main/big.bin")
	if res.StatusCode != http.StatusOK || !bytes.Equal(body, big) {
		t.Errorf("download read at full speed: status %d, %d bytes; want 200 and the %d bytes of the file", res.StatusCode, len(body), size)
	}
	if !strings.Contains(s.log.String(), "web download refused: too many downloads from one address") {
		t.Errorf("the refusals are not in the log")
	}
}

// TestWebBidi crawls a repository whose file names, branch, tag,
// author and message hold bidi and control characters, with a file
// whose line hides code behind a right-to-left override: no page or
// feed holds a control character (but tab and newlines), the marks
// that show them are there, and the file's page warns of the line.
func TestWebBidi(t *testing.T) {
	s := start(t, options{})
	work := s.clientDir("bidi")
	sshEnv := []string{"GIT_SSH_COMMAND=" + s.sshCommand(s.writerKey)}
	s.mustGit(work, sshEnv, "clone", "-q", s.sshURL(rwAccount, "test"), "w")
	w := filepath.Join(work, "w")
	write(t, filepath.Join(w, "access.txt"), "if access_level != \"user\u202E \u2066// Check if admin\u2069 \u2066\" {\n", 0o644)
	write(t, filepath.Join(w, "evil\u202Etxt.exe"), "x\n", 0o644)
	write(t, filepath.Join(w, "bell\x07\x1b[31m"), "y\n", 0o644)
	s.mustGit(w, nil, "add", ".")
	s.mustGit(w, nil, "commit", "-q", "--author=Eve\u202E evE <e@example.com>", "--cleanup=verbatim", "-m", "fix \u2067 reorder\x1b[2J\u0085 end")
	s.mustGit(w, nil, "tag", "-a", "-m", "tag \u202D message", "v\u202E1")
	s.mustGit(w, sshEnv, "push", "-q", s.sshURL(rwAccount, "test"), "HEAD:main", "HEAD:refs/heads/ma\u2066in", "refs/tags/v\u202E1")
	pages := s.web(t, "").crawl()
	for _, p := range []string{"/test/atom", "/test/tags.atom"} {
		_, body := s.web(t, "").get(p)
		pages[p] = body
	}
	all := ""
	for p, body := range pages {
		if strings.Contains(p, "/raw/") || strings.Contains(p, "/snapshot/") {
			continue // files as they are
		}
		for i, r := range string(body) {
			if r == '\t' || r == '\n' || r == '\r' {
				continue
			}
			if r < ' ' || r >= 0x7f && r <= 0x9f || r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069 || r == 0x200e || r == 0x200f {
				t.Errorf("GET %s: %U at %d", p, r, i)
				break
			}
		}
		all += string(body)
	}
	all = strings.NewReplacer(`<span class="ctl">`, "", "</span>", "").Replace(all)
	for _, m := range []string{"evil⟨U+202E⟩txt.exe", "bell⟨U+0007⟩⟨U+001B⟩[31m", "Eve⟨U+202E⟩ evE", "fix ⟨U+2067⟩ reorder⟨U+001B⟩[2J⟨U+0085⟩ end",
		"ma⟨U+2066⟩in", "v⟨U+202E⟩1", "tag ⟨U+202D⟩ message", "<title>test: fix ⟨U+2067⟩", `class="warn"`} {
		if !strings.Contains(all, m) {
			t.Errorf("no page shows %q", m)
		}
	}
	blob := string(pages["/test/blob/main/access.txt"])
	if blob == "" {
		_, b := s.web(t, "").get("/test/blob/main/access.txt")
		blob = string(b)
	}
	if !strings.Contains(blob, `<a id="L1" href="#L1" class="bidi">1</a>`) || !strings.Contains(blob, `class="warn"`) {
		t.Errorf("the file's page does not mark its line with bidi characters:\n%s", blob)
	}
}
