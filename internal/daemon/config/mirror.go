package config

import (
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// Defaults and bounds of pull mirrors.
const (
	// DefaultMirrorEvery is how often a mirror is synced when its
	// directive does not say.
	DefaultMirrorEvery = 10 * time.Minute
	// MinMirrorEvery is the shortest interval a configuration may set.
	MinMirrorEvery = 10 * time.Second
	// maxMirrorURL bounds a mirror's URL (ipc.MaxMirrorURL).
	maxMirrorURL = 2048
	// maxHostKeys bounds the pinned host keys of one mirror
	// (ipc.MaxKeys).
	maxHostKeys = 256
)

// Mirror is a repository's "mirror from" directive: a pull mirror,
// whose refs/heads and refs/tags follow the upstream's.
type Mirror struct {
	// URL is the upstream: git://, http://, https://, ssh:// or
	// user@host:path; never with credentials.
	URL string
	// Every is the interval between syncs, jittered by ±10%.
	Every time.Duration
	// Auth labels the secrets file's "auth" entry sent to an
	// http(s) upstream; AuthUser and AuthPassword are its values.
	Auth                   string
	AuthUser, AuthPassword string
	// An ssh upstream needs KnownHosts or HostKeys: a host key is
	// never accepted unseen.
	SSHOptions
	MirrorCA
	// Refs are the namespaces followed, ending in "/" (the line's refs
	// patterns); none: DefaultMirrorRefs. See MirrorNamespaces.
	Refs []string
	Line int
}

// SSHOptions are a mirror's, pull or push, for an ssh URL: KeyFile is
// the client's private key; KnownHosts a known_hosts file; HostKeys
// pinned host keys (authorized_keys lines) the server's must be among.
type SSHOptions struct {
	KeyFile, KnownHosts string
	HostKeys            []string
}

// sshOption parses one of "key FILE", "known hosts FILE" and "host key
// KEY" into o, and reports whether the current token began one.
func (p *parser) sshOption(line int, o *SSHOptions) bool {
	switch {
	case p.is("key"):
		p.advance()
		o.KeyFile = p.cleanPath(line, "mirror key file", p.str("a key file"))
	case p.is("known"):
		p.advance()
		p.expect("hosts")
		o.KnownHosts = p.cleanPath(line, "mirror known hosts file", p.str("a known_hosts file"))
	case p.is("host"):
		p.advance()
		p.expect("key")
		k := p.str("a host key")
		if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k)); err != nil {
			p.errorf(line, "mirror host key: %v", err)
		}
		o.HostKeys = append(o.HostKeys, k)
	default:
		return false
	}
	return true
}

// Port is the TCP port the mirror's upstream is reached at, 0 for none
// (a local path).
func (m *Mirror) Port() uint16 {
	defaults := map[string]uint16{"git": 9418, "http": 80, "https": 443, "ssh": 22}
	if u, err := url.Parse(m.URL); err == nil && u.Host != "" {
		if p := u.Port(); p != "" {
			n, _ := strconv.ParseUint(p, 10, 16)
			return uint16(n)
		}
		return defaults[u.Scheme]
	}
	if strings.HasPrefix(m.URL, "/") {
		return 0
	}
	return 22 // user@host:path
}

// mirror parses "mirror from URL [every DURATION] [auth LABEL] [ca
// FILE] [refs PATTERN...] [key FILE] [known hosts FILE] [host key
// KEY]..." in a repository
// block; the current token is the word after "mirror".
func (p *parser) mirror(r *Repository, line int) {
	if !p.is("from") {
		p.fail("syntax error: expected 'from' after mirror, found %v", p.tok)
	}
	p.advance()
	if r.Mirror != nil {
		p.errorf(line, "mirror from given twice (first on line %d)", r.Mirror.Line)
	}
	m := &Mirror{URL: p.str("a URL"), Every: DefaultMirrorEvery, Line: line}
	r.Mirror = m
	for p.tok.kind == tokWord {
		switch {
		case p.is("every"):
			p.advance()
			m.Every = p.period(line, "mirror interval", MinMirrorEvery)
		case p.is("auth"):
			p.advance()
			m.Auth = p.str("an auth label")
		case p.sshOption(line, &m.SSHOptions):
		case p.caOption(line, &m.MirrorCA):
		case p.is("refs"):
			p.advance()
			p.mirrorRefs(line, m)
		default:
			p.fail("syntax error: unexpected %v in mirror from", p.tok)
		}
	}
	p.checkMirror(m, line)
}

// checkMirror checks a mirror's URL against its options.
func (p *parser) checkMirror(m *Mirror, line int) {
	if len(m.URL) > maxMirrorURL {
		p.errorf(line, "mirror URL longer than %d bytes", maxMirrorURL)
		return
	}
	kind, _, err := mirrorURL(m.URL, true)
	if err != nil {
		p.errorf(line, "%v", err)
		return
	}
	p.checkCA(line, &m.MirrorCA, kind)
	switch {
	case m.Auth != "" && kind != "https":
		p.errorf(line, "mirror auth is sent over https only")
	case (m.KeyFile != "" || m.KnownHosts != "" || len(m.HostKeys) > 0) && kind != "ssh":
		p.errorf(line, "mirror key, known hosts and host key are for ssh upstreams")
	case kind == "ssh" && m.KnownHosts == "" && len(m.HostKeys) == 0:
		p.errorf(line, "an ssh mirror needs 'known hosts FILE' or 'host key KEY': a host key is never accepted unseen")
	case len(m.HostKeys) > maxHostKeys:
		p.errorf(line, "more than %d mirror host keys", maxHostKeys)
	case m.Auth != "":
		m.AuthUser, m.AuthPassword = p.mirrorAuth(line, m.Auth)
	}
}
