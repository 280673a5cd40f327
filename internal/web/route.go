package web

import (
	"net/url"
	"strings"
)

// Actions of a route below a repository.
const (
	actSummary  = "summary"
	actLog      = "log"
	actCommit   = "commit"
	actTree     = "tree"
	actBlob     = "blob"
	actRaw      = "raw"
	actBlame    = "blame"
	actTags     = "tags"
	actBranches = "branches"
	actTag      = "tag"
	actAtom     = "atom"
	actTagsAtom = "tags.atom"
	actSnapshot = "snapshot"
)

// Bounds of a request's path.
const (
	maxURLPath  = 8 << 10 // escaped, as the browser sent it
	maxSegments = 256
)

// route is what a page's URL names. URLs are
//
//	/                               index of the readable repositories
//	/-/style.css                    the stylesheet
//	/REPO/                          summary
//	/REPO/log[/REV[/PATH]]          log of REV (HEAD), optionally of one path
//	/REPO/commit/REV                one commit and its diff
//	/REPO/tree[/REV[/PATH]]         a tree
//	/REPO/blob/REV/PATH             a file with line numbers
//	/REPO/raw/REV/PATH              a file as it is
//	/REPO/blame/REV/PATH            which commit brought each line
//	/REPO/branches, /REPO/tags      references
//	/REPO/tag/NAME                  one tag
//	/REPO/atom[/REV], /REPO/tags.atom  Atom feeds
//	/REPO/snapshot/REV.tar.gz|.zip  the tree of a commit
//
// where REPO is a configured name (its segments escaped one by one),
// REV one path segment (a branch, tag, full reference name or object
// id, "/" escaped as %2F) and PATH the segments of a path in the tree.
type route struct {
	index, style bool
	login        bool   // /-/login: httpd asked for credentials
	repo         string // the configured name
	action       string
	rev          string
	path         string
	// format is a snapshot's: "tar.gz" or "zip".
	format string
}

// parseRoute maps an escaped URL path to a route; repo reports the
// configured name of a readable repository called name (with or
// without ".git"), "" if there is none. ok is false for a URL that
// names nothing: the caller answers 404 whatever the reason, so that a
// repository the visitor may not read is not told apart from one that
// does not exist.
func parseRoute(escaped string, repo func(name string) string) (rt route, ok bool) {
	if len(escaped) > maxURLPath || !strings.HasPrefix(escaped, "/") {
		return rt, false
	}
	switch escaped {
	case "/":
		rt.index = true
		return rt, true
	case "/-/style.css":
		rt.style = true
		return rt, true
	case "/-/login":
		rt.login = true
		return rt, true
	}
	raw := strings.Split(escaped[1:], "/")
	if len(raw) > maxSegments {
		return rt, false
	}
	segs := make([]string, len(raw))
	for i, s := range raw {
		u, err := url.PathUnescape(s)
		// A segment may hold "/" (%2F) only where it is a revision:
		// checked below, once it is known which segment that is.
		if err != nil || u == "." || u == ".." || strings.IndexByte(u, 0) >= 0 {
			return rt, false
		}
		segs[i] = u
	}
	// The longest readable repository name that the path starts with.
	n := 0
	for i := len(segs); i > 0; i-- {
		ok := true
		for _, s := range segs[:i] {
			if s == "" || strings.ContainsAny(s, "/\x00") {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		if name := repo(strings.Join(segs[:i], "/")); name != "" {
			rt.repo, n = name, i
			break
		}
	}
	if rt.repo == "" {
		return rt, false
	}
	rest := segs[n:]
	if len(rest) == 0 || len(rest) == 1 && rest[0] == "" {
		rt.action = actSummary
		return rt, true
	}
	rt.action = rest[0]
	args := rest[1:]
	// Every segment past the action is a revision then path names: no
	// empty ones (a trailing "/" on a tree is tolerated), no "/" or
	// NUL inside a path name.
	if len(args) > 0 && args[len(args)-1] == "" && (rt.action == actTree || rt.action == actLog) {
		args = args[:len(args)-1]
	}
	for i, a := range args {
		if a == "" || strings.IndexByte(a, 0) >= 0 || i > 0 && strings.IndexByte(a, '/') >= 0 {
			return rt, false
		}
	}
	if len(args) > 0 {
		rt.rev = args[0]
	}
	if len(args) > 1 {
		rt.path = strings.Join(args[1:], "/")
	}
	switch rt.action {
	case actLog, actTree:
		return rt, true
	case actBlob, actRaw, actBlame:
		return rt, rt.path != ""
	case actCommit, actTag:
		return rt, len(args) == 1
	case actAtom:
		return rt, len(args) <= 1
	case actTags, actBranches, actTagsAtom:
		return rt, len(args) == 0
	case actSnapshot:
		if len(args) != 1 {
			return rt, false
		}
		for _, f := range []string{"tar.gz", "zip"} {
			if r, ok := strings.CutSuffix(rt.rev, "."+f); ok && r != "" {
				rt.rev, rt.format = r, f
				return rt, true
			}
		}
	}
	return rt, false
}

// Links. Every name from a repository goes into a URL escaped here, a
// segment at a time: html/template then only checks the result, which
// starts with "/" and so is never a javascript: or data: URL.

// repoURL is the summary of repository name.
func repoURL(name string) string { return "/" + escapeSegments(name) + "/" }

// pageURL is the URL of action on rev and path in repository name.
func pageURL(name, action, rev, path string) string {
	u := repoURL(name) + action
	if rev != "" {
		u += "/" + url.PathEscape(rev)
		if path != "" {
			u += "/" + escapeSegments(path)
		}
	}
	return u
}

// escapeSegments escapes each "/"-separated segment of p.
func escapeSegments(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// NamesPage reports whether a repository name as a URL path would have
// it, the part of a path before what looks like a file of the dumb HTTP
// protocol (HEAD, info/refs, objects/…), holds past its first segment
// a page's action that takes a revision or path: the request is then a
// page (a file named HEAD, a tree path objects/ab/cd…), not a dumb
// read of a repository named so.
func NamesPage(repo string) bool {
	segs := strings.Split(strings.Trim(repo, "/"), "/")
	for _, s := range segs[min(1, len(segs)):] {
		switch s {
		case actLog, actCommit, actTree, actBlob, actRaw, actBlame, actTag, actAtom, actSnapshot:
			return true
		}
	}
	return false
}
