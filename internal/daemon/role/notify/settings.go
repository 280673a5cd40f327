package notify

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	"gotd/internal/daemon/config"
	"gotd/internal/daemon/files"
	"gotd/internal/daemon/ipc"
	"gotd/internal/daemon/msg"
)

// Settings are what the parent tells the notify process: where its
// queue lives, the host name its mail is sent as, and the targets of
// every repository that has some.
type Settings struct {
	Spool, Host string
	// Timeout bounds one delivery attempt.
	Timeout time.Duration
	Repos   map[string]*Repo
}

// Repo is one repository's notification settings.
type Repo struct {
	ipc.NotifyRepo
	Emails []EmailTarget
	URLs   []HTTPTarget
}

// defaultTimeout bounds one delivery attempt (connection, request and
// answer) when the settings do not.
const defaultTimeout = time.Minute

func (s *Settings) timeout() time.Duration {
	if s.Timeout <= 0 {
		return defaultTimeout
	}
	return s.Timeout
}

// Wants reports whether a change of ref is to be notified.
func (r *Repo) Wants(ref string) bool {
	n := config.Notify{Branches: r.Branches, Namespaces: r.Namespaces}
	return n.Wants(ref)
}

// Messages are the messages that tell a notify process cfg's settings,
// with host as the mail host name and user the daemon's user (the
// default sender is user@host, as OpenBSD gotd's).
func Messages(cfg *config.Config, host, user string) []ipc.Message {
	s := &ipc.NotifySettings{Host: host, Timeout: uint32(cfg.NotifyTimeout / time.Second)}
	if cfg.NotifyTargets() {
		s.Spool = cfg.NotifySpool
	}
	ms := []ipc.Message{s}
	for _, r := range cfg.Repositories {
		n := &r.Notify
		if !n.HasTargets() {
			continue
		}
		ms = append(ms, &ipc.NotifyRepo{Name: r.Name, Branches: n.Branches, Namespaces: n.Namespaces})
		for _, e := range n.Emails {
			from := e.From
			if from == "" {
				from = user + "@" + host
			}
			ms = append(ms, &ipc.NotifyTarget{Repo: r.Name, Kind: ipc.TargetEmail, From: from, To: e.To, ReplyTo: e.ReplyTo, Relay: e.Relay, Port: e.Port})
		}
		for _, u := range n.URLs {
			ms = append(ms, &ipc.NotifyTarget{Repo: r.Name, Kind: ipc.TargetURL, URL: u.URL, User: u.AuthUser, Password: u.AuthPassword, HMAC: u.HMACKey,
				Method: u.Method, BodyKind: u.BodyKind, Body: u.Body})
		}
	}
	return append(ms, &ipc.AccountsEnd{})
}

// ReadSettings receives settings from the parent: NotifySettings, the
// repositories and their targets, AccountsEnd.
func ReadSettings(c *msg.Conn) (*Settings, error) {
	var first ipc.NotifySettings
	if _, err := ipc.Recv(c, &first, false); err != nil {
		return nil, fmt.Errorf("notify: settings: %w", err)
	}
	return readRest(c, &first)
}

// readRest receives what follows a NotifySettings.
func readRest(c *msg.Conn, first *ipc.NotifySettings) (*Settings, error) {
	s := newSettings(first)
	for {
		raw, err := c.Recv()
		if err != nil {
			return nil, fmt.Errorf("notify: settings: %w", err)
		}
		var m ipc.Message
		switch raw.Type {
		case ipc.TypeAccountsEnd:
			_, err = ipc.Check(raw, &ipc.AccountsEnd{}, false)
			return s, err
		case ipc.TypeNotifyRepo:
			m = &ipc.NotifyRepo{}
		case ipc.TypeNotifyTarget:
			m = &ipc.NotifyTarget{}
		default:
			if raw.File != nil {
				raw.File.Close()
			}
			return nil, fmt.Errorf("notify: settings: unexpected message %d", raw.Type)
		}
		if _, err := ipc.Check(raw, m, false); err != nil {
			return nil, fmt.Errorf("notify: settings: %w", err)
		}
		if err := s.add(m); err != nil {
			return nil, err
		}
	}
}

// SettingsOf returns the settings that ms, as Messages makes them, tell.
func SettingsOf(ms []ipc.Message) (*Settings, error) {
	first, ok := ms[0].(*ipc.NotifySettings)
	if !ok {
		return nil, fmt.Errorf("notify: settings: %T first", ms[0])
	}
	s := newSettings(first)
	for _, m := range ms[1 : len(ms)-1] {
		if err := s.add(m); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func newSettings(m *ipc.NotifySettings) *Settings {
	return &Settings{Spool: m.Spool, Host: m.Host, Timeout: time.Duration(m.Timeout) * time.Second, Repos: map[string]*Repo{}}
}

// add records a NotifyRepo or a NotifyTarget.
func (s *Settings) add(m ipc.Message) error {
	switch m := m.(type) {
	case *ipc.NotifyRepo:
		s.Repos[m.Name] = &Repo{NotifyRepo: *m}
	case *ipc.NotifyTarget:
		r := s.Repos[m.Repo]
		if r == nil {
			return fmt.Errorf("notify: settings: target of unknown repository %q", m.Repo)
		}
		if m.Kind == ipc.TargetEmail {
			r.Emails = append(r.Emails, EmailTarget{Relay: m.Relay, Port: m.Port, From: m.From, To: m.To, ReplyTo: m.ReplyTo})
			break
		}
		h, err := newHTTPTarget(m)
		if err != nil {
			return fmt.Errorf("notify: settings: target %s: %w", m.URL, err)
		}
		r.URLs = append(r.URLs, h)
	default:
		return fmt.Errorf("notify: settings: unexpected %T", m)
	}
	return nil
}

// dnsPort is where name servers answer over TCP (long answers).
const dnsPort = 53

// Ports lists the TCP ports s's targets connect to, sorted, with DNS's:
// the notify process may connect to no others.
func (s *Settings) Ports() []uint16 {
	ports := []uint16{dnsPort}
	add := func(p uint16) {
		if !slices.Contains(ports, p) {
			ports = append(ports, p)
		}
	}
	for _, r := range s.Repos {
		for _, e := range r.Emails {
			add(servicePort(e.Port, smtpPort))
		}
		for _, t := range r.URLs {
			u, err := url.Parse(t.URL)
			if err != nil {
				continue
			}
			def := "80"
			if u.Scheme == "https" {
				def = "443"
			}
			add(servicePort(u.Port(), def))
		}
	}
	slices.Sort(ports)
	return ports
}

// servicePort resolves a port number or service name (def if empty).
func servicePort(p, def string) uint16 {
	if p == "" {
		p = def
	}
	if n, err := strconv.ParseUint(p, 10, 16); err == nil {
		return uint16(n)
	}
	n, err := net.LookupPort("tcp", p)
	if err != nil {
		n, _ = strconv.Atoi(def)
	}
	return uint16(n)
}

// PrepareSpool creates the spool directory dir (mode 0700) if it does
// not exist, with the parents it lacks (mode 0755, so that the daemon's
// user can pass through them: root's when run as root), gives dir to
// uid and gid when run as root, and checks that it is a directory, not
// a symbolic link, owned by uid and only its owner's, and that uid and
// gid can reach it.
func PrepareSpool(dir string, uid, gid int) error {
	if err := files.MakeDirs(dir, 0o700); err != nil { // parents 0755
		return fmt.Errorf("notify spool: %w", err)
	}
	if os.Geteuid() == 0 {
		if err := os.Lchown(dir, uid, gid); err != nil {
			return fmt.Errorf("notify spool: %w", err)
		}
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("notify spool: %w", err)
	}
	st, _ := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.IsDir():
		return fmt.Errorf("notify spool: %s is not a directory", dir)
	case fi.Mode().Perm()&0o077 != 0:
		return fmt.Errorf("notify spool: %s is accessible to others than its owner (mode %v)", dir, fi.Mode().Perm())
	case st != nil && int(st.Uid) != uid:
		return fmt.Errorf("notify spool: %s is not owned by the daemon's user", dir)
	}
	return reachable(dir, uid, gid)
}

// reachable checks, when run as root, that uid, with gid its only
// group, may search every directory above dir, by their modes: the
// daemon's processes run so.
func reachable(dir string, uid, gid int) error {
	if os.Geteuid() != 0 || uid == 0 {
		return nil
	}
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("notify spool: %w", err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		perm := fi.Mode().Perm()
		search := perm&0o001 != 0
		switch {
		case int(st.Uid) == uid:
			search = perm&0o100 != 0
		case int(st.Gid) == gid:
			search = perm&0o010 != 0
		}
		if !search {
			return fmt.Errorf("notify spool: the daemon's user cannot enter %s (mode %v): chmod a+x %s", p, perm, p)
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}
