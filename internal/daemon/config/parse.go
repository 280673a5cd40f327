package config

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"gotd/internal/daemon/webhook"
)

// reserved are gotd.conf's keywords: they must be quoted to be values.
var reserved = map[string]bool{}

func init() {
	for _, w := range strings.Fields(`auth branch connection deny email except from hmac insecure limit listen
		namespace notify on path permit port protect reference relay reply repository request ro rw
		tag timeout to upkeep url user`) {
		reserved[w] = true
	}
}

// parser is a recursive-descent parser over the lexer's tokens.
type parser struct {
	file   string
	lex    *lexer
	tok    token
	cfg    *Config
	opts   Options
	errs   []string
	macros map[string]string
	used   map[string]bool
	defs   map[string]int // macro -> line defined
	// limitLines: user of a "limit user" line -> its line, checked at
	// the end, when the accounts are known.
	limitLines map[string]int
}

// errSyntax unwinds the parse of one line.
type errSyntax struct{}

func (p *parser) errorf(line int, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if line > 0 {
		msg = fmt.Sprintf("%s:%d: %s", p.file, line, msg)
	} else {
		msg = p.file + ": " + msg
	}
	p.errs = append(p.errs, msg)
}

func (p *parser) advance() { p.tok = p.lex.next() }

// fail reports a syntax error at the current token and unwinds.
func (p *parser) fail(format string, args ...any) {
	p.errorf(p.tok.line, format, args...)
	panic(errSyntax{})
}

func (p *parser) is(word string) bool { return p.tok.kind == tokWord && p.tok.text == word }

func (p *parser) punct(c string) bool { return p.tok.kind == tokPunct && p.tok.text == c }

// expect consumes keyword word.
func (p *parser) expect(word string) {
	if !p.is(word) {
		p.fail("syntax error: expected '%s', found %v", word, p.tok)
	}
	p.advance()
}

// str consumes a string: quoted, or a bare word that is not reserved.
func (p *parser) str(what string) string {
	t := p.tok
	if t.kind == tokString || t.kind == tokWord && !reserved[t.text] {
		p.advance()
		return t.text
	}
	p.fail("syntax error: expected %s, found %v", what, t)
	return ""
}

// strOrNumber consumes a string or a number, as its text.
func (p *parser) strOrNumber(what string) string {
	if p.tok.kind == tokNumber {
		s := p.tok.text
		p.advance()
		return s
	}
	return p.str(what)
}

func (p *parser) newlines() {
	for p.tok.kind == tokNewline {
		p.advance()
	}
}

// endLine requires the end of a directive.
func (p *parser) endLine() {
	if p.tok.kind != tokNewline && p.tok.kind != tokEOF && !p.punct("}") {
		p.fail("syntax error: unexpected %v", p.tok)
	}
}

// recover skips the rest of a line after a syntax error; inside a block
// it stops before a closing brace.
func (p *parser) recover(inBlock bool) {
	if r := recover(); r != nil {
		if _, ok := r.(errSyntax); !ok {
			panic(r)
		}
		for p.tok.kind != tokNewline && p.tok.kind != tokEOF && !(inBlock && p.punct("}")) {
			p.advance()
		}
	}
}

func (p *parser) file_() {
	for p.tok.kind != tokEOF {
		p.newlines()
		if p.tok.kind == tokEOF {
			return
		}
		p.topLevel()
	}
}

func (p *parser) topLevel() {
	defer p.recover(false)
	switch {
	case p.is("listen"):
		p.advance()
		if p.is("ssh") || p.is("git") || p.is("http") || p.is("metrics") {
			p.listenFrontend()
			break
		}
		p.expect("on")
		line := p.tok.line
		path := p.str("a socket path")
		p.cfg.ListenOn = p.cleanPath(line, "listen on", path)
		if len(p.cfg.ListenOn) >= 108 {
			p.errorf(line, "socket path too long: %s", path)
		}
	case p.is("user"):
		p.advance()
		line := p.tok.line
		u := p.strOrNumber("a user name")
		if u == "0" || u == "root" {
			p.errorf(line, "cannot run gotd as the superuser")
		}
		if len(u) >= 32 {
			p.errorf(line, "user name too long")
		}
		p.cfg.User = u
		p.cfg.Lines["user"] = line
	case p.is("control"):
		p.advance()
		p.expect("group")
		line := p.tok.line
		g := p.strOrNumber("a group name")
		if len(g) >= 32 {
			p.errorf(line, "group name too long")
		}
		if p.opts.GroupExists != nil && !p.opts.GroupExists(g) {
			p.errorf(line, "group %s not found", g)
		}
		p.cfg.ControlGroup = g
		p.cfg.Lines["control group"] = line
	case p.is("connection"):
		p.advance()
		p.block(p.connOption)
	case p.is("repository"):
		p.repository()
		return
	case p.is("account"):
		p.account()
	case p.is("notify"):
		p.advance()
		if p.is("timeout") {
			p.advance()
			p.cfg.NotifyTimeout = p.timeout()
			break
		}
		p.expect("spool")
		line := p.tok.line
		p.cfg.NotifySpool = p.cleanPath(line, "notify spool", p.str("a directory"))
		p.cfg.Lines["notify spool"] = line
	case p.is("upkeep"):
		line := p.tok.line
		p.advance()
		p.upkeep(&p.cfg.Upkeep, line)
	case p.is("mirror") && p.lex.peekWord("spool"):
		line := p.tok.line
		p.advance()
		p.mirrorSpool(line)
	case p.is("ssh"):
		p.advance()
		p.expect("hostkey")
		line := p.tok.line
		path := p.cleanPath(line, "ssh hostkey", p.str("a key path"))
		if slices.Contains(p.cfg.SSHHostKeys, path) {
			p.errorf(line, "ssh hostkey %s: given twice", path)
		}
		if len(p.cfg.SSHHostKeys) == 0 {
			p.cfg.SSHHostKey = path
			p.cfg.Lines["ssh hostkey"] = line
		}
		p.cfg.SSHHostKeys = append(p.cfg.SSHHostKeys, path)
		p.cfg.Lines["ssh hostkey "+path] = line
	case p.tok.kind == tokWord && !reserved[p.tok.text]:
		p.macro()
	default:
		p.fail("syntax error: unexpected %v", p.tok)
	}
	p.endLine()
}

// block parses "opt" or "{ opt NL ... }".
func (p *parser) block(opt func()) {
	if !p.punct("{") {
		opt()
		return
	}
	p.advance()
	for {
		p.newlines()
		if p.punct("}") {
			p.advance()
			return
		}
		if p.tok.kind == tokEOF {
			p.fail("syntax error: missing '}'")
		}
		func() {
			defer p.recover(true)
			opt()
			p.endLine()
		}()
	}
}

func (p *parser) macro() {
	name, line := p.tok.text, p.tok.line
	p.advance()
	if !p.punct("=") {
		p.fail("syntax error: unexpected %v", p.tok)
	}
	p.advance()
	if strings.ContainsAny(name, " \t") {
		p.errorf(line, "macro name cannot contain whitespace")
	}
	p.macros[name] = p.strOrNumber("a macro value")
	p.defs[name] = line
}

func (p *parser) connOption() {
	switch {
	case p.is("request"):
		p.advance()
		p.requestOption()
	case p.is("minimum"):
		p.advance()
		p.minimumRate()
	case p.is("limit"):
		p.advance()
		if p.is("pending") {
			p.pendingLimit()
			return
		}
		p.expect("user")
		line := p.tok.line
		user := p.strOrNumber("a user name")
		if p.tok.kind != tokNumber {
			p.fail("syntax error: expected a connection limit, found %v", p.tok)
		}
		n := p.tok.num
		p.advance()
		if n < 1 || n > MaxClients {
			p.errorf(line, "connection limit %d for user %s out of range 1-%d", n, user, MaxClients)
		}
		p.limitLines[user] = line
		p.cfg.UserLimits[user] = int(n)
	case p.is("handshake"):
		p.advance()
		p.expect("timeout")
		p.cfg.HandshakeTimeout = p.timeout()
	case p.is("body"):
		p.advance()
		p.expect("limit")
		p.cfg.BodyLimit = p.size()
	case p.is("shutdown"):
		p.advance()
		p.expect("timeout")
		p.cfg.ShutdownTimeout = p.timeout()
	case p.is("memory"):
		line := p.tok.line
		p.advance()
		p.expect("limit")
		if n := p.size(); n < MinMemoryLimit {
			p.errorf(line, "memory limit %d below the minimum of 32M", n)
		} else {
			p.cfg.MemoryLimit = n
		}
	default:
		p.fail("syntax error: unexpected %v in connection options", p.tok)
	}
}

// pendingLimit parses "limit pending [user | address] number".
func (p *parser) pendingLimit() {
	p.advance()
	dst, what := &p.cfg.PendingTotal, "pending connection limit"
	switch {
	case p.is("user"):
		dst, what = &p.cfg.PendingPerUser, "pending connection limit per user"
		p.advance()
	case p.is("address"):
		dst, what = &p.cfg.PendingPerAddress, "pending connection limit per address"
		p.advance()
	}
	line := p.tok.line
	if p.tok.kind != tokNumber {
		p.fail("syntax error: expected a %s, found %v", what, p.tok)
	}
	n := p.tok.num
	p.advance()
	if n < 1 || n > MaxPending {
		p.errorf(line, "%s %d out of range 1-%d", what, n, MaxPending)
		return
	}
	*dst = int(n)
}

// timeout parses seconds or a number with an s, m or h suffix.
func (p *parser) timeout() time.Duration {
	line := p.tok.line
	n, unit := p.duration("timeout", false)
	if n <= 0 || n > int64(1<<31-1)/int64(unit/time.Second) {
		p.errorf(line, "invalid timeout: %d", n)
		return DefaultTimeout
	}
	return time.Duration(n) * unit
}

// duration reads a number of seconds, or a number with an s, m or h
// suffix (or d, when days is set), and returns the number and its unit
// unchecked; what names the value in errors.
func (p *parser) duration(what string, days bool) (int64, time.Duration) {
	var n int64
	unit := time.Second
	switch p.tok.kind {
	case tokNumber:
		n = p.tok.num
	case tokWord:
		t := p.tok.text
		switch t[len(t)-1] {
		case 's', 'S':
		case 'm', 'M':
			unit = time.Minute
		case 'h', 'H':
			unit = time.Hour
		case 'd', 'D':
			if !days {
				p.fail("invalid %s: %s", what, t)
			}
			unit = 24 * time.Hour
		default:
			p.fail("invalid %s: %s", what, t)
		}
		v, err := strconv.ParseInt(t[:len(t)-1], 10, 64)
		if err != nil {
			p.fail("invalid %s: %s", what, t)
		}
		n = v
	default:
		p.fail("syntax error: expected a %s, found %v", what, p.tok)
	}
	p.advance()
	return n, unit
}

func (p *parser) repository() {
	line := p.tok.line
	p.advance()
	name := p.str("a repository name")
	switch {
	case name == "" || strings.ContainsAny(name, "\n\x00") || len(name) >= 255:
		p.errorf(line, "invalid repository name")
	case strings.HasPrefix(name, "/") || strings.Contains(name, "..") || strings.HasSuffix(name, "/"):
		p.errorf(line, "invalid repository name: %s", name)
	}
	r := &Repository{Name: name, Line: line}
	p.cfg.Repositories = append(p.cfg.Repositories, r)
	p.newlines()
	if !p.punct("{") {
		p.fail("syntax error: expected '{' after repository name")
	}
	p.block(func() { p.repoOption(r) })
	p.endLine()
}

func (p *parser) repoOption(r *Repository) {
	line := p.tok.line
	switch {
	case p.is("path"):
		p.advance()
		r.Path = p.cleanPath(line, "repository path", p.str("a path"))
	case p.is("permit"):
		p.advance()
		var write bool
		switch {
		case p.is("ro"):
		case p.is("rw"):
			write = true
		default:
			p.fail("syntax error: expected 'ro' or 'rw', found %v", p.tok)
		}
		p.advance()
		r.Rules = append(r.Rules, Rule{Write: write, Ident: p.strOrNumber("a user or :group")})
	case p.is("deny"):
		p.advance()
		r.Rules = append(r.Rules, Rule{Deny: true, Ident: p.strOrNumber("a user or :group")})
	case p.is("protect"):
		p.advance()
		p.block(func() { p.protectOption(r) })
	case p.is("push"):
		p.advance()
		p.block(func() { p.pushOption(r) })
	case p.is("description"):
		p.advance()
		d := p.str("a description")
		switch {
		case r.Description != "":
			p.errorf(line, "repository %q: description given twice", r.Name)
		case d == "" || len(d) > MaxDescription || !utf8.ValidString(d) || strings.ContainsFunc(d, unicode.IsControl):
			p.errorf(line, "repository %q: a description is one line of 1 to %d bytes of UTF-8", r.Name, MaxDescription)
		default:
			r.Description = d
		}
	case p.is("hide"):
		p.advance()
		p.expect("namespace")
		ns := p.namespace(line, p.str("a namespace"))
		switch {
		case slices.Contains(r.Hidden, ns):
			p.errorf(line, "duplicate hidden namespace %s", ns)
		case ns == "refs/" || ns == "refs/heads/":
			// Nothing could be cloned.
			p.errorf(line, "cannot hide %s", ns)
		default:
			r.Hidden = append(r.Hidden, ns)
		}
	case p.is("notify"):
		p.advance()
		p.block(func() { p.notifyOption(&r.Notify) })
	case p.is("upkeep"):
		p.advance()
		p.upkeep(&r.Upkeep, line)
	case p.is("mirror") && p.lex.peekWord("to"):
		p.advance()
		p.mirrorTo(r, line)
	case p.is("mirror"):
		p.advance()
		p.mirror(r, line)
	default:
		p.fail("syntax error: unexpected %v in repository options", p.tok)
	}
}

// namespace checks and normalises a reference namespace.
func (p *parser) namespace(line int, ns string) string {
	if !strings.HasPrefix(ns, "refs/") {
		p.errorf(line, "reference namespace must begin with \"refs/\": %s", ns)
	}
	return strings.TrimRight(ns, "/") + "/"
}

func (p *parser) protectOption(r *Repository) {
	line := p.tok.line
	pr := &r.Protect
	switch {
	case p.is("tag"):
		p.advance()
		p.expect("namespace")
		pr.TagNamespaces = p.addNamespace(line, pr, pr.TagNamespaces, p.str("a namespace"))
	case p.is("branch"):
		p.advance()
		if p.is("namespace") {
			p.advance()
			pr.BranchNamespaces = p.addNamespace(line, pr, pr.BranchNamespaces, p.str("a namespace"))
			return
		}
		b := p.str("a branch name")
		if !strings.HasPrefix(b, "refs/heads/") {
			b = "refs/heads/" + b
		}
		pr.Branches = append(pr.Branches, b)
	default:
		p.fail("syntax error: unexpected %v in protect options", p.tok)
	}
}

func (p *parser) addNamespace(line int, pr *Protect, list []string, ns string) []string {
	ns = p.namespace(line, ns)
	for _, l := range [][]string{pr.TagNamespaces, pr.BranchNamespaces} {
		for _, have := range l {
			if have == ns {
				p.errorf(line, "duplicate protected namespace %s", ns)
				return list
			}
		}
	}
	return append(list, ns)
}

func (p *parser) notifyOption(n *Notify) {
	line := p.tok.line
	switch {
	case p.is("branch"):
		p.advance()
		b := p.str("a branch name")
		if !strings.HasPrefix(b, "refs/heads/") {
			b = "refs/heads/" + b
		}
		n.Branches = append(n.Branches, b)
	case p.is("reference"):
		p.advance()
		p.expect("namespace")
		n.Namespaces = append(n.Namespaces, p.namespace(line, p.str("a namespace")))
	case p.is("email"):
		p.advance()
		e := &Email{}
		if p.is("from") {
			p.advance()
			e.From = p.str("a sender address")
		}
		p.expect("to")
		e.To = p.str("a recipient address")
		if p.is("reply") {
			p.advance()
			p.expect("to")
			e.ReplyTo = p.str("a reply-to address")
		}
		if p.is("relay") {
			p.advance()
			e.Relay = p.str("a relay host")
			if p.is("port") {
				p.advance()
				e.Port = p.strOrNumber("a port")
			}
		}
		if max(len(e.From), len(e.To), len(e.ReplyTo), len(e.Relay), len(e.Port)) > maxNotifyField {
			p.errorf(line, "email notification field longer than %d bytes", maxNotifyField)
		}
		for _, have := range n.Emails {
			if have.To == e.To {
				p.errorf(line, "duplicate email notification recipient %s", e.To)
			}
		}
		n.Emails = append(n.Emails, *e)
	case p.is("url"):
		p.advance()
		u := &URL{URL: p.str("a URL")}
		if p.is("method") {
			p.advance()
			u.Method = p.str("an HTTP method")
		}
		if p.is("auth") {
			p.advance()
			u.Auth = p.str("an auth label")
			if p.is("insecure") {
				p.advance()
				u.Insecure = true
			}
		}
		if p.is("hmac") {
			p.advance()
			u.HMAC = p.str("an hmac label")
		}
		if p.is("body") {
			p.advance()
			u.BodyKind = p.str("a body kind (json, form or text)")
			u.Body = p.str("a body template")
		}
		p.checkURL(n, line, u)
		n.URLs = append(n.URLs, *u)
	default:
		p.fail("syntax error: unexpected %v in notify options", p.tok)
	}
}

// Bounds of notification settings (ipc.MaxURL, ipc.MaxSecret).
const (
	maxNotifyField = 2048
	maxSecret      = 1024
)

// badURL reports whether s does not parse as a URL, or has spaces or
// control characters.
func badURL(s string) bool {
	_, err := url.Parse(s)
	return err != nil || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f })
}

// checkURL checks a url notification target.
func (p *parser) checkURL(n *Notify, line int, u *URL) {
	rest, tls := strings.CutPrefix(u.URL, "https://")
	ok := tls
	if !ok {
		rest, ok = strings.CutPrefix(u.URL, "http://")
	}
	host, path, _ := strings.Cut(rest, "/")
	_, terr := webhook.Parse(webhook.URL, u.URL)
	switch {
	case !ok:
		p.errorf(line, "invalid notification URL (http:// or https:// only): %s", u.URL)
	case host == "" || path == "":
		p.errorf(line, "notification URL needs a host and a path: %s", u.URL)
	case strings.Contains(host, "@"):
		// They would go in clear over http and into the spool and
		// the logs.
		p.errorf(line, "credentials in a notification URL: give them in the secrets file with 'auth': %s", host[strings.LastIndexByte(host, '@')+1:])
	case strings.Contains(u.URL, "$") && terr != nil:
		p.errorf(line, "notification %v", terr)
	case badURL(u.URL):
		p.errorf(line, "invalid notification URL: %s", u.URL)
	case u.Auth != "" && !tls && !u.Insecure:
		p.errorf(line, "refusing to send credentials over plain http without 'insecure': %s", u.URL)
	case len(u.URL) > maxNotifyField:
		p.errorf(line, "notification URL longer than %d bytes", maxNotifyField)
	case terr != nil:
		p.errorf(line, "notification %v", terr)
	}
	p.checkRequest(line, u)
	for _, have := range n.URLs {
		if have.URL == u.URL {
			p.errorf(line, "duplicate notification URL %s", u.URL)
		}
	}
	if s := p.opts.Secrets; s != nil {
		if a, ok := s.Auth[u.Auth]; u.Auth != "" && !ok {
			p.errorf(line, "no auth secret '%s' defined", u.Auth)
		} else if ok {
			u.AuthUser, u.AuthPassword = a.User, a.Password
		}
		if k, ok := s.HMAC[u.HMAC]; u.HMAC != "" && !ok {
			p.errorf(line, "no hmac secret '%s' defined", u.HMAC)
		} else if ok {
			u.HMACKey = k
		}
		if max(len(u.AuthUser), len(u.AuthPassword), len(u.HMACKey)) > maxSecret {
			p.errorf(line, "notification secrets longer than %d bytes", maxSecret)
		}
	} else if u.Auth != "" || u.HMAC != "" {
		p.errorf(line, "notification credentials need a secrets file")
	}
}

// checkRequest checks a url target's method and body template, as the
// notify process will expand it (checkURL checks the URL's).
func (p *parser) checkRequest(line int, u *URL) {
	if u.Method != "" {
		if err := webhook.CheckMethod(u.Method, u.BodyKind != ""); err != nil {
			p.errorf(line, "notification method: %v", err)
		}
	}
	if u.BodyKind == "" {
		return
	}
	k, ok := webhook.BodyKind(u.BodyKind)
	if !ok {
		p.errorf(line, "unknown notification body kind %q (json, form or text)", clipText(u.BodyKind, 16))
		return
	}
	if _, err := webhook.Parse(k, u.Body); err != nil {
		p.errorf(line, "notification body: %v", err)
	}
}

// clipText cuts s to n bytes for a message.
func clipText(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
