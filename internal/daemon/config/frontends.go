package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/ssh"
)

// Defaults of the front-ends' settings.
const (
	DefaultHostKey          = "/var/lib/gotd/ssh_host_ed25519_key"
	DefaultECDSAHostKey     = "/var/lib/gotd/ssh_host_ecdsa_key"
	DefaultHandshakeTimeout = 30 * time.Second
	DefaultBodyLimit        = 1 << 30
)

// DefaultHostKeys are the SSH host keys without an "ssh hostkey" line:
// ed25519, and ECDSA for clients without ed25519 (JSch).
var DefaultHostKeys = []string{DefaultHostKey, DefaultECDSAHostKey}

// Listen is a network front-end's listening address.
type Listen struct {
	Address string // "" for every address
	Port    int
	// Certificate and Key make an http listener serve HTTPS.
	Certificate, Key string
	Line             int
}

// Addr is the address for net.Listen.
func (l Listen) Addr() string { return net.JoinHostPort(l.Address, strconv.Itoa(l.Port)) }

// Account is a user of the built-in front-ends, declared in gotd.conf.
type Account struct {
	Name   string
	Groups []string
	Keys   []string // authorized_keys lines, as written
	Line   int
	// From the secrets file.
	Password string   // bcrypt hash, "" for none
	Tokens   []string // "sha256:<hex>"
}

// FindAccount returns the account called name, or nil.
func (c *Config) FindAccount(name string) *Account {
	for _, a := range c.Accounts {
		if a.Name == name {
			return a
		}
	}
	return nil
}

// Identity is how the rules see the account: by its name and groups,
// never by a number.
func (a *Account) Identity() Identity {
	return Identity{User: a.Name, UID: -1, Groups: a.Groups}
}

// listenFrontend parses "listen ssh|git|http|metrics on ADDRESS port N
// [tls certificate PATH key PATH]" after "listen".
func (p *parser) listenFrontend() {
	kind, line := p.tok.text, p.tok.line
	p.advance()
	p.expect("on")
	l := Listen{Line: line}
	if p.punct("*") {
		p.advance()
	} else if a := p.str("an address"); a != "*" {
		l.Address = a
	}
	p.expect("port")
	if p.tok.kind != tokNumber {
		p.fail("syntax error: expected a port number, found %v", p.tok)
	}
	if n := p.tok.num; n < 1 || n > 65535 {
		p.errorf(line, "invalid port %d", n)
	} else {
		l.Port = int(n)
	}
	p.advance()
	if p.is("tls") {
		if kind != "http" {
			p.fail("tls is only for http listeners")
		}
		p.advance()
		p.expect("certificate")
		l.Certificate = p.frontendPath(line, "certificate", p.str("a certificate path"))
		if !p.is("key") {
			p.fail("syntax error: expected 'key', found %v", p.tok)
		}
		p.advance()
		l.Key = p.frontendPath(line, "key", p.str("a key path"))
	}
	for _, ls := range [][]Listen{p.cfg.SSH, p.cfg.Git, p.cfg.HTTP, p.cfg.Metrics} {
		for _, have := range ls {
			if have.Address == l.Address && have.Port == l.Port {
				p.errorf(line, "duplicate listener %s", l.Addr())
			}
		}
	}
	switch kind {
	case "ssh":
		p.cfg.SSH = append(p.cfg.SSH, l)
	case "git":
		p.cfg.Git = append(p.cfg.Git, l)
	case "metrics":
		p.cfg.Metrics = append(p.cfg.Metrics, l)
	default:
		p.cfg.HTTP = append(p.cfg.HTTP, l)
	}
}

// frontendPath checks an absolute path of a file that should exist.
func (p *parser) frontendPath(line int, what, path string) string {
	path = p.cleanPath(line, what, path)
	if _, err := os.Stat(path); err != nil {
		p.cfg.Warnings = append(p.cfg.Warnings, fmt.Sprintf("%s:%d: %s %s: %v", p.file, line, what, path, err))
	}
	return path
}

// accountName reports whether name is a valid account name: 1 to 64
// letters, digits, '.', '_' or '-'. (A loop, not a regular expression
// compiled at package initialisation, which every gotd process paid at
// its start.)
func accountName(name string) bool {
	if len(name) == 0 || len(name) > 64 {
		return false
	}
	for _, c := range []byte(name) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// account parses "account NAME { group G; key K }".
func (p *parser) account() {
	line := p.tok.line
	p.advance()
	name := p.strOrNumber("an account name")
	switch {
	case !accountName(name):
		p.errorf(line, "invalid account name: %s", name)
	case strings.Trim(name, "0123456789") == "":
		p.errorf(line, "account name cannot be a number: %s", name)
	case name == "anonymous":
		p.errorf(line, "account name 'anonymous' is reserved for unauthenticated clients")
	case p.cfg.FindAccount(name) != nil:
		p.errorf(line, "duplicate account '%s'", name)
	}
	a := &Account{Name: name, Line: line}
	p.cfg.Accounts = append(p.cfg.Accounts, a)
	p.newlines()
	if !p.punct("{") {
		p.fail("syntax error: expected '{' after account name")
	}
	p.block(func() { p.accountOption(a) })
}

func (p *parser) accountOption(a *Account) {
	line := p.tok.line
	switch {
	case p.is("group"):
		p.advance()
		g := strings.TrimPrefix(p.strOrNumber("a group name"), ":")
		if g == "" {
			p.errorf(line, "empty group name")
		}
		a.Groups = append(a.Groups, g)
	case p.is("key"):
		p.advance()
		k := strings.TrimSpace(p.str("a public key"))
		if _, _, _, rest, err := ssh.ParseAuthorizedKey([]byte(k)); err != nil || len(rest) > 0 {
			p.errorf(line, "invalid public key for account %s", a.Name)
		}
		a.Keys = append(a.Keys, k)
	default:
		p.fail("syntax error: unexpected %v in account options", p.tok)
	}
}

// size parses a number of bytes with an optional K, M or G suffix.
func (p *parser) size() int64 {
	line := p.tok.line
	var n int64
	switch p.tok.kind {
	case tokNumber:
		n = p.tok.num
	case tokWord:
		t := p.tok.text
		shift := 0
		switch t[len(t)-1] {
		case 'k', 'K':
			shift = 10
		case 'm', 'M':
			shift = 20
		case 'g', 'G':
			shift = 30
		default:
			p.fail("invalid size: %s", t)
		}
		v, err := strconv.ParseInt(t[:len(t)-1], 10, 64)
		if err != nil || v > 1<<(62-shift) {
			p.fail("invalid size: %s", t)
		}
		n = v << shift
	default:
		p.fail("syntax error: expected a size, found %v", p.tok)
	}
	p.advance()
	if n <= 0 {
		p.errorf(line, "invalid size: %d", n)
		return DefaultBodyLimit
	}
	return n
}

// checkFrontends runs the front-end checks that need the whole file
// and the secrets.
func (p *parser) checkFrontends() {
	c := p.cfg
	if len(c.SSHHostKeys) == 0 {
		c.SSHHostKeys = slices.Clone(DefaultHostKeys)
	}
	for name, line := range p.limitLines {
		if name == "anonymous" || c.FindAccount(name) != nil {
			continue
		}
		if p.opts.UserExists != nil && !p.opts.UserExists(name) {
			p.errorf(line, "user %s not found", name)
		}
	}
	s := p.opts.Secrets
	if s == nil {
		return
	}
	for name, hash := range s.Passwords {
		if a := c.FindAccount(name); a != nil {
			a.Password = hash
		} else {
			// Named where it is: the secrets file, not this one.
			c.Warnings = append(c.Warnings, fmt.Sprintf("%s: password for unknown account %s", s.where("password", name), name))
		}
	}
	for name, tokens := range s.Tokens {
		if a := c.FindAccount(name); a != nil {
			a.Tokens = tokens
		} else {
			c.Warnings = append(c.Warnings, fmt.Sprintf("%s: token for unknown account %s", s.where("token", name), name))
		}
	}
	if w := mixedCosts(c.Accounts); w != "" {
		c.Warnings = append(c.Warnings, s.File+": "+w)
	}
}

// mixedCosts warns of password hashes of different bcrypt costs: every
// HTTP authentication costs one comparison at the highest (unknown and
// token-only accounts included), so that accounts cannot be told apart
// by the time of a failure, except those whose hash is cheaper.
func mixedCosts(accounts []*Account) string {
	var low *Account
	lowCost, high := 0, 0
	for _, a := range accounts {
		cost, err := bcrypt.Cost([]byte(a.Password))
		if err != nil {
			continue
		}
		if low == nil || cost < lowCost {
			low, lowCost = a, cost
		}
		high = max(high, cost)
	}
	if low == nil || lowCost == high {
		return ""
	}
	return fmt.Sprintf("password hashes of bcrypt costs %d to %d: a failed authentication of %s (cost %d) is faster than of other names, which tells it exists; hash the passwords at one cost",
		lowCost, high, low.Name, lowCost)
}

// checkPasswordHash checks a bcrypt hash.
func checkPasswordHash(h string) error {
	if !strings.HasPrefix(h, "$2a$") && !strings.HasPrefix(h, "$2b$") && !strings.HasPrefix(h, "$2y$") {
		return fmt.Errorf("password hash must be bcrypt ($2a$, $2b$ or $2y$)")
	}
	if _, err := bcrypt.Cost([]byte(h)); err != nil {
		return fmt.Errorf("bad password hash: %v", err)
	}
	return nil
}

// checkTokenHash checks "sha256:" and 64 lowercase hex digits.
func checkTokenHash(h string) error {
	hexSum, ok := strings.CutPrefix(h, "sha256:")
	if b, err := hex.DecodeString(hexSum); !ok || err != nil || len(b) != sha256.Size || strings.ToLower(hexSum) != hexSum {
		return fmt.Errorf("token hash must be sha256: and 64 lowercase hex digits")
	}
	return nil
}
