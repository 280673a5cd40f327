// Package web renders gotd's pages for web browsers: the repositories
// a visitor may read, each one's summary, logs, commits with their
// diffs, trees, files, references and Atom feeds, and snapshots of a
// commit's tree as .tar.gz or .zip. A Site is an http.Handler over a
// fixed set of repositories; the web role runs one per class of
// visitor (anonymous, or one account), confined to those
// repositories, and httpd hands it the requests of that visitor.
//
// Everything a repository holds is hostile: names, messages, files.
// Pages go through html/template, which escapes each string for where
// it stands (text, attribute, URL); links are built here from escaped
// segments; the Content-Security-Policy allows no script at all and
// styles from the site's own stylesheet only. Work per request is
// bounded: a deadline, and caps on commits per page, diff and file
// sizes, tree entries and references listed.
package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
)

//go:embed templates/*.html templates/style.css
var files embed.FS

// Transport is a way to clone, shown on summaries as a URL.
type Transport struct {
	Scheme string // "ssh", "git", "http" or "https"
	// Host is the listener's address; "" (every address) takes the
	// host name the browser asked for.
	Host string
	Port int
	User string // for ssh://, "" for none
}

// Site serves the pages of a set of repositories. Its fields are set
// before it serves and not changed after.
type Site struct {
	// Repos are the repositories the visitor may read.
	Repos []*Repo
	// Transports make the clone URLs of summaries.
	Transports []Transport
	Log        *slog.Logger
	// Timeout bounds the making of each page (0: DefaultTimeout);
	// StreamTimeout the sending of a snapshot or a raw file, whose
	// size the deadline alone bounds (0: Timeout).
	Timeout, StreamTimeout time.Duration
	// Account is the visitor's account, "" for anonymous visitors
	// (who are offered to log in).
	Account string
	// Limits bound the requests served at once.
	Limits Limits

	byName map[string]*Repo
	lim    *limiter
}

// DefaultTimeout bounds a request when Site.Timeout is 0.
const DefaultTimeout = 30 * time.Second

// Bounds of the work of one page.
const (
	logPage        = 50        // commits on a log page and an Atom feed
	summaryCommits = 10        // on a summary
	summaryRefs    = 10        // branches and tags on a summary
	maxDiffFiles   = 300       // files of a commit's diff
	maxFileDiff    = 512 << 10 // bytes of each side of a file's diff
	maxDiffBytes   = 4 << 20   // blob bytes read for a commit's diff
	maxDiffLines   = 20000     // lines shown of a commit's diff
	maxEdits       = 1000      // edits searched for in a file's diff
	maxBlobShow    = 1 << 20   // bytes of a file shown with line numbers
	maxTreeEntries = 5000      // entries of a tree shown
	maxTreeRead    = 1 << 20   // bytes of a tree read for its page
	maxDiffTree    = 1 << 20   // bytes of each tree a commit's diff compares
	maxReadme      = 64 << 10
	indexRefs      = 100 // branches read for an index's last change
)

// CSP is the Content-Security-Policy of every page: no script, styles
// from the site only, no framing. httpd enforces it on what a web
// process answers (RawCSP too).
const CSP = "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// RawCSP is the policy of a file served raw: nothing runs, even if a
// browser renders it.
const RawCSP = "default-src 'none'; sandbox"

// Init prepares the site; it must be called before the first request.
func (s *Site) Init() {
	s.byName = map[string]*Repo{}
	sort.Slice(s.Repos, func(i, j int) bool { return s.Repos[i].Name < s.Repos[j].Name })
	for _, r := range s.Repos {
		s.byName[r.Name] = r
	}
	if s.Log == nil {
		s.Log = slog.New(slog.DiscardHandler)
	}
	s.lim = newLimiter(s.Limits)
}

// repoName returns the configured name of the repository called name
// (with or without ".git"), "" for none.
func (s *Site) repoName(name string) string {
	for _, n := range []string{name, strings.TrimSuffix(name, ".git"), name + ".git"} {
		if r := s.byName[n]; r != nil {
			return r.Name
		}
	}
	return ""
}

// ServeHTTP serves a page.
func (s *Site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		s.fail(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	rt, ok := parseRoute(r.URL.EscapedPath(), s.repoName)
	if !ok {
		s.fail(w, http.StatusNotFound, "not found")
		return
	}
	download := rt.action == actSnapshot || rt.action == actRaw
	leave, why := s.lim.enter(r.Header.Get(RemoteHeader), download)
	if why != "" {
		s.busy(w, r, why)
		return
	}
	defer leave()
	made := func() {}
	if !download {
		var ok bool
		if made, ok = s.lim.make(r.Context().Done()); !ok {
			s.busy(w, r, BusyPages)
			return
		}
		defer made()
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if download && s.StreamTimeout > 0 {
		timeout = s.StreamTimeout
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	rq := &request{s: s, w: w, r: r, ctx: ctx, rt: rt, made: made}
	if rt.repo != "" {
		rq.repo = s.byName[rt.repo]
	}
	var err error
	switch {
	case rt.index:
		err = rq.index()
	case rt.style:
		err = rq.style()
	case rt.login:
		// httpd has had the credentials checked: back to the index,
		// which now lists what the account may read.
		http.Redirect(w, r, "/", http.StatusSeeOther)
	default:
		switch rt.action {
		case actSummary:
			err = rq.summary()
		case actLog:
			err = rq.log()
		case actCommit:
			err = rq.commit()
		case actTree:
			err = rq.tree()
		case actBlob:
			err = rq.blob()
		case actRaw:
			err = rq.raw()
		case actBranches:
			err = rq.refList("refs/heads/", "Branches", actLog)
		case actTags:
			err = rq.refList("refs/tags/", "Tags", actTag)
		case actTag:
			err = rq.tag()
		case actAtom:
			err = rq.atomLog()
		case actTagsAtom:
			err = rq.atomTags()
		case actSnapshot:
			err = rq.snapshot()
		case actBlame:
			err = rq.blame()
		default:
			err = errNotFound
		}
	}
	switch {
	case err == nil:
	case errors.Is(err, errNotFound):
		s.fail(w, http.StatusNotFound, "not found")
	case errors.Is(err, errTreeTooLarge):
		s.fail(w, http.StatusNotFound, "a directory on this path is too large to show here")
	case errors.Is(err, errSent):
		// The answer had begun: the connection is cut so that the
		// client does not take a partial file for a whole one.
		s.Log.Warn("page failed after its start", "path", r.URL.Path, "err", err)
		panic(http.ErrAbortHandler)
	case ctx.Err() != nil:
		s.Log.Warn("page took too long", "path", r.URL.Path, "err", err)
		s.fail(w, http.StatusServiceUnavailable, "the page took too long to make")
	default:
		s.Log.Warn("page failed", "path", r.URL.Path, "err", err)
		s.fail(w, http.StatusInternalServerError, "internal server error")
	}
}

// errSent wraps an error after the answer's first bytes were sent.
var errSent = errors.New("answer already started")

// request is one request being served.
type request struct {
	s    *Site
	w    http.ResponseWriter
	r    *http.Request
	ctx  context.Context
	rt   route
	repo *Repo
	// made gives the page's place among those being made back, once
	// it is made and about to be sent.
	made func()
}

// layout is what every page's template receives.
type layout struct {
	Account string
	Title   string
	Repo    *Repo
	Rev     string // for the navigation's log and tree links
	Empty   bool   // the repository has no HEAD: no log or tree to link
	Feeds   []feed
	Body    any
}

// feed is an Atom feed a page links to.
type feed struct{ Title, URL string }

// fail answers with an error page.
func (s *Site) fail(w http.ResponseWriter, code int, message string) {
	var buf bytes.Buffer
	if err := pages()["error"].ExecuteTemplate(&buf, "layout", &layout{Title: message, Body: message}); err != nil {
		buf.Reset()
		buf.WriteString(message)
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Del("ETag")
	w.WriteHeader(code)
	w.Write(buf.Bytes())
}

// render executes a page's template and sends it. immutable says the
// URL names a full object id, so that the page never changes;
// modified is the time of what it shows, zero if none.
func (rq *request) render(name string, l *layout, immutable bool, modified time.Time) error {
	var buf bytes.Buffer
	l.Account = rq.s.Account
	if l.Repo != nil {
		// A repository without a HEAD has no log, tree or feed of
		// commits to link to.
		if _, err := l.Repo.resolve(rq.ctx, ""); err != nil {
			l.Empty = true
			l.Feeds = slices.DeleteFunc(l.Feeds, func(f feed) bool { return !strings.HasSuffix(f.URL, actTagsAtom) })
		}
	}
	if err := pages()[name].ExecuteTemplate(&buf, "layout", l); err != nil {
		return err
	}
	rq.send("text/html; charset=utf-8", markControls(buf.Bytes()), immutable, modified)
	return nil
}

// version changes the ETags of every page when the pages change.
const version = "2"

// send sends a page with its validators: an ETag from its bytes, and
// for an immutable page a cache lifetime of a year.
func (rq *request) send(ctype string, body []byte, immutable bool, modified time.Time) {
	h := rq.w.Header()
	sum := sha256.Sum256(body)
	h.Set("ETag", `"`+version+"-"+hex.EncodeToString(sum[:12])+`"`)
	h.Set("Content-Type", ctype)
	if immutable {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	if rq.made != nil {
		rq.made()
	}
	http.ServeContent(rq.w, rq.r, "", modified, bytes.NewReader(body))
}

// host is the host name the visitor asked for, for clone URLs:
// letters, digits, dots, dashes and an IPv6 address's brackets and
// colons only, or "localhost".
func host(r *http.Request) string {
	h := r.Host
	if hh, _, err := net.SplitHostPort(h); err == nil {
		h = hh
		if strings.Contains(h, ":") {
			h = "[" + h + "]"
		}
	}
	if h == "" || len(h) > 255 {
		return "localhost"
	}
	for _, c := range h {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(".-[]:", c)) {
			return "localhost"
		}
	}
	return h
}

// cloneURLs are the URLs to clone repository name with.
func (rq *request) cloneURLs(name string) []string {
	var out []string
	for _, t := range rq.s.Transports {
		h := t.Host
		if h == "" {
			h = host(rq.r)
		} else if strings.Contains(h, ":") {
			h = "[" + h + "]"
		}
		u := t.Scheme + "://"
		if t.User != "" {
			u += t.User + "@"
		}
		u += h
		if t.Port != 0 && !(t.Scheme == "http" && t.Port == 80 || t.Scheme == "https" && t.Port == 443 || t.Scheme == "git" && t.Port == 9418 || t.Scheme == "ssh" && t.Port == 22) {
			u += ":" + strconv.Itoa(t.Port)
		}
		out = append(out, u+"/"+escapeSegments(name))
	}
	return out
}

// Template functions.
var funcs = template.FuncMap{
	"repoURL":  repoURL,
	"page":     pageURL,
	"snapshot": snapshotURL,
	"hex":      func(id oid.ID) string { return id.String() },
	"short":    func(id oid.ID) string { return id.String()[:10] },
	"text":     text,
	"title":    title,
	"when":     when,
	"date":     func(t time.Time) string { return t.Format("2006-01-02 15:04 -0700") },
	"refList": func(r *Repo, refs []ref, action string) any {
		return struct {
			Repo   *Repo
			Refs   []ref
			Action string
		}{r, refs, action}
	},
	"commitList": func(r *Repo, cs []*commit) any {
		return struct {
			Repo    *Repo
			Commits []*commit
		}{r, cs}
	},
}

// snapshotURL is the URL of a snapshot of rev in format.
func snapshotURL(name, rev, format string) string {
	return repoURL(name) + actSnapshot + "/" + escapeSnapshot(rev) + "." + format
}

// pages returns the page templates by name, each with the layout,
// parsed at the first page served: the roles that serve none (every
// other role runs the same binary) do not pay for the parse at start.
var pages = sync.OnceValue(func() map[string]*template.Template {
	base := template.Must(template.New("").Funcs(funcs).ParseFS(files, "templates/layout.html", "templates/parts.html"))
	m := map[string]*template.Template{}
	for _, name := range []string{"index", "summary", "log", "commit", "tree", "blob", "blame", "refs", "tag", "error"} {
		m[name] = template.Must(template.Must(base.Clone()).ParseFS(files, "templates/"+name+".html"))
	}
	return m
})

// style sends the stylesheet.
func (rq *request) style() error {
	css, err := files.ReadFile("templates/style.css")
	if err != nil {
		return err
	}
	rq.send("text/css; charset=utf-8", css, false, time.Time{})
	return nil
}

// short names an object id in text.
func short(id oid.ID) string { return id.String()[:10] }

var _ = object.Commit
