// Package config reads gotd.conf, the daemon's configuration, in the
// grammar of OpenBSD gotd.conf(5) so that files written for it work
// unchanged, and gotd-secrets.conf, the credentials notifications use.
//
// Parse collects every error with its file and line, as `gotd -n`
// reports them. The result also answers the questions the daemon asks
// of it: which repository a client names, and what a user may do there
// (the last matching permit or deny rule wins; with none the repository
// is as good as absent).
package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Defaults of gotd.conf(5).
const (
	DefaultFile          = "/etc/gotd.conf"
	DefaultSecrets       = "/etc/gotd-secrets.conf"
	DefaultSocket        = "/var/run/gotd.sock"
	DefaultUser          = "_gotd"
	DefaultTimeout       = time.Hour
	DefaultUserLimit     = 4
	DefaultNotifyTimeout = time.Minute
	MaxClients           = 1024
	// Connections waiting for their first message (a request, an SSH or
	// TLS handshake), in all and per user or remote address; a public
	// mirror's legitimate clients are through theirs in a round trip
	// or two.
	DefaultPendingTotal      = 512
	DefaultPendingPerUser    = 32
	DefaultPendingPerAddress = 32
	MaxPending               = 65536
	DefaultShutdownTimeout   = 30 * time.Second
	// DefaultMemoryLimit is the memory budget of each process that
	// serves one client; MinMemoryLimit the least a configuration may
	// set (a process needs some 10 MiB to start).
	DefaultMemoryLimit = 256 << 20
	MinMemoryLimit     = 32 << 20
)

// Config is a parsed gotd.conf.
type Config struct {
	File string
	// ListenOn is the unix socket gotd listens on for gotsh.
	ListenOn string
	// User is the account the daemon's children run as.
	User string
	// ControlGroup names the group (or gid, as written) whose members
	// may use gotctl besides root; "" for none.
	ControlGroup string
	// RequestTimeout bounds the wait for each request of a client.
	RequestTimeout time.Duration
	// Pace bounds a request as a whole: its deadline and the minimum
	// transfer rate (pace.go).
	Pace Pace
	// UserLimits holds per-user connection limits by user name (or
	// numeric uid as written); others get DefaultUserLimit.
	UserLimits map[string]int
	// PendingTotal bounds the connections that have not yet sent their
	// request (gotsh) or finished their handshake (network), for the
	// socket and for each front-end; PendingPerUser and
	// PendingPerAddress bound them per uid on the socket and per remote
	// address (per /64 for IPv6) on the network.
	PendingTotal, PendingPerUser, PendingPerAddress int
	// ShutdownTimeout bounds the wait for clients at gotctl stop; those
	// still connected then are ended.
	ShutdownTimeout time.Duration
	Repositories    []*Repository
	// SSH, Git and HTTP are the network front-ends' listeners.
	SSH, Git, HTTP []Listen
	// Metrics are the metrics process's listeners (Prometheus text
	// format at /metrics, a health check at /healthz).
	Metrics []Listen
	// SSHHostKey is the SSH front-end's first private host key file;
	// SSHHostKeys are all of them, one per key type, offered together
	// (several "ssh hostkey" lines, or DefaultHostKeys).
	SSHHostKey  string
	SSHHostKeys []string
	// HandshakeTimeout bounds an SSH handshake, an HTTP request's
	// header and a git:// request line.
	HandshakeTimeout time.Duration
	// BodyLimit bounds an HTTP request body, decompressed.
	BodyLimit int64
	// MemoryLimit is the memory budget of each process that serves
	// one client (session and repo processes).
	MemoryLimit int64
	// Accounts are the front-ends' users.
	Accounts []*Account
	// NotifySpool is the directory of the notification queue;
	// NotifyTimeout bounds one attempt to deliver a notification.
	NotifySpool   string
	NotifyTimeout time.Duration
	// Upkeep is the top-level upkeep directive (UpkeepFor resolves a
	// repository's settings).
	Upkeep Upkeep
	// MirrorSpool is "mirror spool", the push mirrors' queue; ""
	// while the default stands (MirrorSpoolDir).
	MirrorSpool string
	// Warnings are problems that do not stop the daemon (a repository
	// path that does not exist yet, an unused macro).
	Warnings []string
	// Lines are the lines of the top-level directives "user", "control
	// group", "ssh hostkey" and "notify spool", by those names, for
	// messages about what they name (gotd -n); absent while the default
	// stands.
	Lines map[string]int
}

// Repository is a repository block.
type Repository struct {
	Name string
	Path string
	Line int
	// Rules in file order; the last one matching a user decides.
	Rules   []Rule
	Protect Protect
	Notify  Notify
	// Hidden are the reference namespaces of "hide namespace" lines,
	// ending in "/".
	Hidden []string
	Push   Push
	// Upkeep is the repository's upkeep directive.
	Upkeep Upkeep
	// MirrorTo are its push mirrors ("mirror to" lines, mirrorto.go).
	MirrorTo []MirrorTo
	// Mirror is its "mirror from" directive, nil for none: the
	// repository is a pull mirror, which refuses pushes.
	Mirror *Mirror
	// Description is the "description" line's text, shown on the web
	// pages ("": the repository's description file).
	Description string
}

// MaxDescription bounds a repository's description.
const MaxDescription = 1024

// Rule is a permit or deny line.
type Rule struct {
	Deny  bool
	Write bool // permit rw (false: permit ro)
	// Ident is a user name, a numeric uid, ":group", ":gid" or
	// "anonymous" (clients of the unauthenticated front-ends).
	Ident string
}

// Protect holds a repository's protected references.
type Protect struct {
	Branches         []string // full names, refs/heads/…
	BranchNamespaces []string // ending in "/"
	TagNamespaces    []string // ending in "/"
}

// Notify is a repository's notification settings (all its notify
// blocks together).
type Notify struct {
	// Branches and Namespaces filter the references notified about;
	// both empty means every reference.
	Branches   []string
	Namespaces []string
	Emails     []Email
	URLs       []URL
}

// HasTargets reports whether n sends anything.
func (n *Notify) HasTargets() bool { return len(n.Emails)+len(n.URLs) > 0 }

// Wants reports whether a change of reference ref is to be notified: it
// is one of the branches or in one of the namespaces, or neither is
// given.
func (n *Notify) Wants(ref string) bool {
	if len(n.Branches)+len(n.Namespaces) == 0 {
		return true
	}
	for _, b := range n.Branches {
		if ref == b {
			return true
		}
	}
	for _, ns := range n.Namespaces {
		if strings.HasPrefix(ref, ns) {
			return true
		}
	}
	return false
}

// Email is an "email" notification target.
type Email struct {
	From, To, ReplyTo string
	Relay, Port       string
}

// URL is a "url" notification target.
type URL struct {
	URL      string
	Auth     string // label of an auth entry in the secrets file
	Insecure bool   // allow auth over plain http
	HMAC     string // label of an hmac entry
	// AuthUser, AuthPassword and HMACKey are the labels' secrets.
	AuthUser, AuthPassword, HMACKey string

	// URL may have placeholders (webhook.Parse). Method is "" for
	// POST; BodyKind ("json", "form" or "text") and Body are the body's
	// template, "" for the JSON document.
	Method, BodyKind, Body string
}

// NotifyTargets reports whether any repository has notification
// targets: only then is the notification queue needed.
func (c *Config) NotifyTargets() bool {
	for _, r := range c.Repositories {
		if r.Notify.HasTargets() {
			return true
		}
	}
	return false
}

// Error is every problem Parse found, one "file:line: message" each.
type Error struct{ Problems []string }

func (e *Error) Error() string { return strings.Join(e.Problems, "\n") }

// Options control Parse.
type Options struct {
	// Secrets, if not nil, is the parsed secrets file that auth and
	// hmac labels must name.
	Secrets *Secrets
	// UserExists, if set, tells whether a user named in "connection
	// limit user" exists, when it is not an account or anonymous; nil
	// skips the check.
	UserExists func(name string) bool
	// GroupExists, if set, tells whether the group named by "control
	// group" exists; nil skips the check.
	GroupExists func(name string) bool
}

// ParseFile reads and parses the file at path. The file must not be a
// symbolic link.
func ParseFile(path string, opts Options) (*Config, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		return nil, fmt.Errorf("%s: is a symbolic link", path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return Parse(path, data, opts)
}

// Parse parses the configuration data read from file (the name is used
// in messages).
func Parse(file string, data []byte, opts Options) (*Config, error) {
	p := &parser{
		file: file,
		cfg: &Config{File: file, ListenOn: DefaultSocket, User: DefaultUser,
			RequestTimeout: DefaultTimeout, Pace: DefaultPace, UserLimits: map[string]int{},
			SSHHostKey: DefaultHostKey, NotifySpool: DefaultSpool, NotifyTimeout: DefaultNotifyTimeout, HandshakeTimeout: DefaultHandshakeTimeout, BodyLimit: DefaultBodyLimit,
			PendingTotal: DefaultPendingTotal, PendingPerUser: DefaultPendingPerUser, PendingPerAddress: DefaultPendingPerAddress,
			ShutdownTimeout: DefaultShutdownTimeout, MemoryLimit: DefaultMemoryLimit, Lines: map[string]int{}},
		opts:       opts,
		macros:     map[string]string{},
		used:       map[string]bool{},
		defs:       map[string]int{},
		limitLines: map[string]int{},
	}
	p.lex = &lexer{src: data, line: 1, macros: p.macros, used: p.used, errf: p.errorf}
	p.advance()
	p.file_()
	p.check()
	p.checkFrontends()
	if len(p.errs) > 0 {
		return nil, &Error{Problems: p.errs}
	}
	return p.cfg, nil
}

// FindRepository returns the repository a client's name selects: name
// itself, or name with ".git" added or removed.
func (c *Config) FindRepository(name string) *Repository {
	name = strings.TrimPrefix(name, "/")
	for _, r := range c.Repositories {
		if r.Name == name || r.Name == name+".git" || r.Name+".git" == name {
			return r
		}
	}
	return nil
}

// UserLimit returns the connection limit of a user.
func (c *Config) UserLimit(name string, uid int) int {
	if n, ok := c.UserLimits[name]; ok {
		return n
	}
	if n, ok := c.UserLimits[fmt.Sprint(uid)]; ok {
		return n
	}
	return DefaultUserLimit
}

// Access is what a user may do in a repository.
type Access int

const (
	// NoAccess: no rule matches; the client is told the repository
	// does not exist.
	NoAccess Access = iota
	// Denied: a deny rule matched.
	Denied
	Read
	ReadWrite
)

// Identity is who a client is, as the rules match it.
type Identity struct {
	User string // "" for an anonymous client
	UID  int    // -1 for a front-end's account

	Groups    []string // names
	GIDs      []int
	Anonymous bool
}

// Access evaluates the repository's rules for id: the last matching
// rule wins.
func (r *Repository) Access(id Identity) Access {
	a := NoAccess
	for _, rule := range r.Rules {
		if !rule.matches(id) {
			continue
		}
		switch {
		case rule.Deny:
			a = Denied
		case rule.Write:
			a = ReadWrite
		default:
			a = Read
		}
	}
	return a
}

func (rule Rule) matches(id Identity) bool { return id.Is(rule.Ident) }

// Is reports whether id is what ident names: a user name, a numeric
// uid, ":group", ":gid" or "anonymous".
func (id Identity) Is(ident string) bool {
	if id.Anonymous {
		return ident == "anonymous"
	}
	if g, ok := strings.CutPrefix(ident, ":"); ok {
		for _, n := range id.Groups {
			if n == g {
				return true
			}
		}
		for _, gid := range id.GIDs {
			if fmt.Sprint(gid) == g {
				return true
			}
		}
		return false
	}
	return ident == id.User || id.UID >= 0 && ident == fmt.Sprint(id.UID)
}

// IsAny reports whether id is one of idents.
func (id Identity) IsAny(idents []string) bool {
	for _, ident := range idents {
		if id.Is(ident) {
			return true
		}
	}
	return false
}

// maxStartLists bounds the reference names and namespaces of a
// repository, which its sessions receive in one message of at most
// 64 KiB.
const maxStartLists = 48 << 10

// maxStartCount bounds each list of a repository's start message
// (ipc.MaxRefs).
const maxStartCount = 4096

// startCount returns the length of the longest list of r's start
// message.
func (r *Repository) startCount() int {
	return max(len(r.Protect.Branches), len(r.Protect.BranchNamespaces), len(r.Protect.TagNamespaces),
		len(r.Notify.Branches), len(r.Notify.Namespaces), len(r.Hidden), len(r.Push.Refs), len(r.Push.Merges), len(r.Push.Rebases))
}

// startSize counts the bytes of r's reference names and namespaces as
// a session's start message carries them.
func (r *Repository) startSize() int {
	n := 0
	for _, l := range [][]string{r.Protect.Branches, r.Protect.BranchNamespaces, r.Protect.TagNamespaces,
		r.Notify.Branches, r.Notify.Namespaces, r.Hidden} {
		for _, s := range l {
			n += len(s) + 4
		}
	}
	for _, rule := range r.Push.Refs {
		n += len(rule.Namespace) + 12
	}
	for _, m := range append(r.Push.Merges, r.Push.Rebases...) {
		n += len(m.Ref) + 4
	}
	return n
}

// check runs the checks that need the whole file.
func (p *parser) check() {
	c := p.cfg
	if len(c.Repositories) == 0 {
		p.errorf(0, "no repository defined in configuration file")
	}
	seen := map[string]bool{}
	for _, r := range c.Repositories {
		if seen[r.Name] {
			p.errorf(r.Line, "duplicate repository '%s'", r.Name)
		}
		seen[r.Name] = true
		if n := r.startCount(); n > maxStartCount {
			p.errorf(r.Line, "repository \"%s\": more than %d lines of one kind among protect, notify, hide and push", r.Name, maxStartCount)
		}
		if n := r.startSize(); n > maxStartLists {
			p.errorf(r.Line, "repository \"%s\": protect, notify, hide and push lines total %d bytes, more than %d", r.Name, n, maxStartLists)
		}
		if r.Path == "" {
			p.errorf(r.Line, "repository \"%s\": no path provided", r.Name)
		} else if _, err := os.Stat(r.Path); errors.Is(err, os.ErrNotExist) {
			c.Warnings = append(c.Warnings, fmt.Sprintf("%s:%d: repository \"%s\": %s does not exist", p.file, r.Line, r.Name, r.Path))
		} else if r.Access(Identity{Anonymous: true}) < Read && openToOthers(r.Path) {
			c.Warnings = append(c.Warnings, fmt.Sprintf("%s:%d: repository \"%s\": other local users can read %s, though no rule lets anonymous read it (chmod -R o-rwx)", p.file, r.Line, r.Name, r.Path))
		}
	}
	if c.User == "nobody" || c.User == "65534" {
		// Every service running as nobody could read and write what
		// gotd writes, signal its processes and, were it let, control
		// it (issue 19).
		c.Warnings = append(c.Warnings, fmt.Sprintf("%s: user %s is shared with other services: give gotd an account of its own", p.file, c.User))
	}
	var unused []string
	for name, line := range p.defs {
		if !p.used[name] {
			unused = append(unused, fmt.Sprintf("%s:%d: macro '%s' not used", p.file, line, name))
		}
	}
	sort.Strings(unused)
	c.Warnings = append(c.Warnings, unused...)
}

// openToOthers reports whether users who are neither the owner nor in
// the group of a repository can reach its objects: they may search
// every directory down to its objects directory, and so open any file
// there that grants them read (C Git writes objects 0444 under the
// usual umask).
func openToOthers(repo string) bool {
	dirs := []string{filepath.Join(repo, "objects"), repo}
	for d := filepath.Dir(repo); ; d = filepath.Dir(d) {
		dirs = append(dirs, d)
		if d == filepath.Dir(d) {
			break
		}
	}
	for _, d := range dirs {
		fi, err := os.Stat(d)
		if err != nil || fi.Mode()&0o001 == 0 {
			return false
		}
	}
	return true
}

// cleanPath checks that path is absolute and cleans it.
func (p *parser) cleanPath(line int, what, path string) string {
	if !filepath.IsAbs(path) {
		p.errorf(line, "%s must be an absolute path: %s", what, path)
		return path
	}
	return filepath.Clean(path)
}
