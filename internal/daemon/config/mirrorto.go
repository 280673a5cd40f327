package config

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
)

// MirrorTo is a "mirror to" line of a repository block: a push mirror,
// a repository elsewhere whose branches and tags follow this one's
// after every push.
type MirrorTo struct {
	// URL is the target: git://, http://, https://, ssh:// or the
	// scp-like user@host:path.
	URL  string
	Line int
	// Auth is the label of an auth entry in the secrets file (HTTP
	// basic authentication), Insecure allows it over plain http;
	// AuthUser and AuthPassword are its secrets.
	Auth                   string
	Insecure               bool
	AuthUser, AuthPassword string
	SSHOptions
	MirrorCA
}

// Bounds of push mirrors.
const (
	// MaxMirrorTargets bounds the "mirror to" lines of one repository.
	MaxMirrorTargets = 16
	maxMirrorToURL   = 2048 // ipc.MaxURL
	maxMirrorKeys    = 16
)

// DefaultMirrorSpool is the push mirrors' queue directory, beside the
// notification queue's.
var DefaultMirrorSpool = filepath.Join(filepath.Dir(DefaultSpool), "mirror-to")

// MirrorSpoolDir is the push mirrors' queue directory: "mirror spool"
// if given, else DefaultMirrorSpool.
func (c *Config) MirrorSpoolDir() string {
	if c.MirrorSpool != "" {
		return c.MirrorSpool
	}
	return DefaultMirrorSpool
}

// mirrorSpool parses "mirror spool PATH" at the top level; the current
// token is "spool".
func (p *parser) mirrorSpool(line int) {
	p.expect("spool")
	p.cfg.MirrorSpool = p.cleanPath(line, "mirror spool", p.str("a directory"))
	p.cfg.Lines["mirror spool"] = line
}

// mirrorTo parses the rest of a "mirror to URL [auth LABEL [insecure]]
// [ca PATH] [key PATH] [known hosts PATH] [host key KEY ...]" line of repository
// r; the current token is "to".
func (p *parser) mirrorTo(r *Repository, line int) {
	p.expect("to")
	m := MirrorTo{URL: p.str("a URL"), Line: line}
	for p.tok.kind == tokWord {
		switch {
		case p.is("auth"):
			p.advance()
			m.Auth = p.str("an auth label")
			if p.is("insecure") {
				p.advance()
				m.Insecure = true
			}
		case p.sshOption(line, &m.SSHOptions):
		case p.caOption(line, &m.MirrorCA):
		default:
			p.fail("syntax error: unexpected %v in mirror to options", p.tok)
		}
	}
	p.checkMirrorTo(r, &m)
	r.MirrorTo = append(r.MirrorTo, m)
}

// checkMirrorTo checks a push mirror's URL and credentials, and takes
// its auth secrets from the secrets file.
func (p *parser) checkMirrorTo(r *Repository, m *MirrorTo) {
	line := m.Line
	kind, host, err := MirrorURLKind(m.URL)
	switch {
	case err != nil:
		p.errorf(line, "mirror to: %v", err)
		return
	case len(m.URL) > maxMirrorToURL:
		p.errorf(line, "mirror to: URL longer than %d bytes", maxMirrorToURL)
	case len(r.MirrorTo) >= MaxMirrorTargets:
		p.errorf(line, "more than %d mirror to lines in one repository", MaxMirrorTargets)
	case len(m.HostKeys) > maxMirrorKeys:
		p.errorf(line, "mirror to: more than %d host keys", maxMirrorKeys)
	}
	for _, have := range r.MirrorTo {
		if have.URL == m.URL {
			p.errorf(line, "duplicate mirror to %s", m.URL)
		}
	}
	p.checkCA(line, &m.MirrorCA, kind)
	if kind != "ssh" && (m.KeyFile != "" || m.KnownHosts != "" || len(m.HostKeys) > 0) {
		p.errorf(line, "mirror to %s: key, known hosts and host key are for ssh targets", host)
	}
	if kind != "http" && kind != "https" && m.Auth != "" {
		p.errorf(line, "mirror to %s: auth is for http and https targets", host)
	}
	if kind == "http" && m.Auth != "" && !m.Insecure {
		p.errorf(line, "refusing to send credentials over plain http without 'insecure': %s", host)
	}
	if kind == "ssh" {
		if m.KnownHosts == "" && len(m.HostKeys) == 0 {
			// Never accepted unseen.
			p.errorf(line, "mirror to %s: an ssh target needs 'known hosts' or 'host key'", host)
		}
		if m.KeyFile == "" {
			p.errorf(line, "mirror to %s: an ssh target needs a 'key'", host)
		}
		for _, k := range m.HostKeys {
			if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k)); err != nil {
				p.errorf(line, "mirror to %s: host key: %v", host, err)
			}
		}
		for _, f := range []string{m.KeyFile, m.KnownHosts} {
			if _, err := os.Stat(f); f != "" && err != nil {
				p.cfg.Warnings = append(p.cfg.Warnings, fmt.Sprintf("%s:%d: mirror to %s: %v", p.file, line, host, err))
			}
		}
	}
	if m.Auth != "" {
		m.AuthUser, m.AuthPassword = p.mirrorAuth(line, m.Auth)
	}
}

// MirrorURLKind checks a push mirror's URL and returns its kind ("git",
// "http", "https" or "ssh", scp-like addresses being "ssh") and host.
func MirrorURLKind(s string) (kind, host string, err error) {
	kind, host, err = mirrorURL(s, false)
	if err == nil && kind == "file" {
		err = fmt.Errorf("mirror targets are git://, http(s)://, ssh:// or user@host:path URLs, not %q", clipText(s, 64))
	}
	return kind, host, err
}

// mirrorURL checks the URL of a pull mirror's upstream or a push
// mirror's target and returns its kind: "git", "http", "https", "ssh"
// (scp-like [user@]host:path too) or, for an absolute path, "file". A
// URL holds no credentials (they would be in the logs and gotctl
// info): a user name for ssh alone.
func mirrorURL(s string, local bool) (kind, host string, err error) {
	if strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '"' || r == '\\' }) {
		return "", "", fmt.Errorf("invalid mirror URL %q", clipText(s, 64))
	}
	if strings.HasPrefix(s, "/") {
		return "file", "", nil
	}
	if i := strings.Index(s, "://"); i > 0 {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "git" && u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "ssh") {
			return "", "", fmt.Errorf("invalid mirror URL (git://, http(s)://, ssh://, user@host:path or an absolute path): %q", clipText(s, 64))
		}
		if u.Host == "" || u.Path == "" || u.Path == "/" || u.RawQuery != "" || u.Fragment != "" {
			return "", "", fmt.Errorf("mirror URL needs a host and a path, and nothing after them: %q", clipText(s, 64))
		}
		if _, password := u.User.Password(); password || (u.User != nil && u.Scheme != "ssh") {
			return "", "", fmt.Errorf("credentials in a mirror URL of %s: give them in the secrets file with 'auth', or an ssh 'key'", u.Host)
		}
		return u.Scheme, u.Host, nil
	}
	// scp-like [user@]host:path, as C Git tells it from a path: a
	// colon before any slash.
	colon := strings.IndexByte(s, ':')
	if colon > 0 && !strings.Contains(s[:colon], "/") && colon+1 < len(s) {
		host := s[:colon]
		if at := strings.LastIndexByte(host, '@'); at >= 0 {
			host = host[at+1:]
		}
		if host == "" {
			return "", "", fmt.Errorf("invalid mirror URL %q", clipText(s, 64))
		}
		return "ssh", host, nil
	}
	return "", "", fmt.Errorf("invalid mirror URL (git://, http(s)://, ssh://, user@host:path or an absolute path): %q", clipText(s, 64))
}

// mirrorAuth returns the user and password of the secrets file's auth
// entry name, for a mirror's line.
func (p *parser) mirrorAuth(line int, name string) (user, password string) {
	s := p.opts.Secrets
	if s == nil {
		p.errorf(line, "mirror credentials need a secrets file")
		return "", ""
	}
	a, ok := s.Auth[name]
	switch {
	case !ok:
		p.errorf(line, "no auth secret '%s' defined", name)
	case max(len(a.User), len(a.Password)) > maxSecret:
		p.errorf(line, "mirror secrets longer than %d bytes", maxSecret)
	default:
		return a.User, a.Password
	}
	return "", ""
}

// peekWord reports whether the token after the current one is the bare
// word w, leaving it to be read next: "mirror to" and "mirror spool"
// are told apart from other mirror directives before they are parsed.
func (l *lexer) peekWord(w string) bool {
	t := l.next()
	l.pending = append([]token{t}, l.pending...)
	return t.kind == tokWord && t.text == w
}

// MirrorTargets reports whether any repository has push mirrors: only
// then is their spool needed.
func (c *Config) MirrorTargets() bool {
	for _, r := range c.Repositories {
		if len(r.MirrorTo) > 0 {
			return true
		}
	}
	return false
}
