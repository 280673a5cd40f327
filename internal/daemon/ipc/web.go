package ipc

import (
	"strings"

	"gotd/internal/daemon/msg"
)

// ServiceWeb is the service of a web page request (Hello.Service from
// httpd): the parent hands its stream to the web process of the
// visitor instead of starting a session.
const ServiceWeb = "web"

// Bounds of the web messages.
const (
	MaxWebRepos       = 1 << 16 // repositories of one web process
	MaxWebTransports  = 64      // clone URLs shown per repository
	MaxWebDescription = 1024    // a repository's description
)

// WebTransport is a listener that clones, for the clone URLs of the
// pages: Scheme is "ssh", "git", "http" or "https"; Host the listener's
// address, "" for every address (the page uses the host the browser
// asked for).
type WebTransport struct {
	Scheme string // MaxMethod
	Host   string // MaxHost
	Port   uint32 // 1 to 65535
	User   string // MaxUser, for ssh://; "" for none
}

// WebStart: parent → web, the first message on its channel: whom the
// process serves and the Repos WebRepo messages that follow, the
// repositories that visitor may read, which the process opens before
// it confines itself to them.
type WebStart struct {
	// Account is the visitor, "" for anonymous ones.
	Account string // MaxUser
	// Timeout bounds each request, in seconds (1 or more).
	Timeout uint32
	// MemoryLimit is the process's memory budget in bytes (0: none;
	// else MinMemoryLimit to MaxMemoryLimit).
	MemoryLimit uint64
	Repos       uint32 // at most MaxWebRepos
	Transports  []WebTransport
	// MinRate bytes of an answer must leave in every RateInterval
	// seconds, or the request is ended (0: no bound): the
	// configuration's minimum rate, as for fetches.
	MinRate      uint64
	RateInterval uint32
}

func (*WebStart) Type() msg.Type { return TypeWebStart }
func (m *WebStart) encode(e *msg.Encoder) {
	e.String(m.Account).Uint32(m.Timeout).Uint64(m.MemoryLimit).Uint32(m.Repos)
	e.Uint32(uint32(len(m.Transports)))
	for _, t := range m.Transports {
		e.String(t.Scheme).String(t.Host).Uint32(t.Port).String(t.User)
	}
	e.Uint64(m.MinRate).Uint32(m.RateInterval)
}
func (m *WebStart) decode(d *msg.Decoder) {
	m.Account, m.Timeout, m.MemoryLimit, m.Repos = d.String(MaxUser), d.Uint32(), d.Uint64(), d.Uint32()
	if m.Timeout == 0 || m.Repos > MaxWebRepos {
		d.Fail("bad web start")
	}
	if m.MemoryLimit != 0 && (m.MemoryLimit < MinMemoryLimit || m.MemoryLimit > MaxMemoryLimit) {
		d.Fail("bad memory limit")
	}
	n := d.Uint32()
	if n > MaxWebTransports {
		d.Fail("too many transports")
		return
	}
	for range n {
		t := WebTransport{Scheme: d.String(MaxMethod), Host: d.String(MaxHost), Port: d.Uint32(), User: d.String(MaxUser)}
		switch {
		case t.Scheme != "ssh" && t.Scheme != "git" && t.Scheme != "http" && t.Scheme != "https":
			d.Fail("bad transport scheme")
		case t.Port == 0 || t.Port > 65535:
			d.Fail("bad transport port")
		case strings.ContainsAny(t.Host+t.User, "/@ \x00"):
			d.Fail("bad transport host")
		}
		m.Transports = append(m.Transports, t)
	}
	m.MinRate, m.RateInterval = d.Uint64(), d.Uint32()
	if m.MinRate > MaxMinRate || m.MinRate != 0 && m.RateInterval == 0 {
		d.Fail("bad minimum rate")
	}
}

// MaxMinRate bounds the minimum rates of WebStart and Frontend.
const MaxMinRate = 1 << 62

// WebRepo: parent → web, one repository the visitor may read, after
// WebStart.
type WebRepo struct {
	Name        string   // MaxRepoName: the configured name
	Path        string   // MaxPath, absolute
	Description string   // MaxWebDescription; "" for the repository's description file
	Hidden      []string // MaxRefs namespaces, each ending in "/"
}

func (*WebRepo) Type() msg.Type { return TypeWebRepo }
func (m *WebRepo) encode(e *msg.Encoder) {
	e.String(m.Name).String(m.Path).String(m.Description).Strings(m.Hidden)
}
func (m *WebRepo) decode(d *msg.Decoder) {
	m.Name, m.Path, m.Description = d.String(MaxRepoName), d.String(MaxPath), d.String(MaxWebDescription)
	m.Hidden = d.Strings(MaxRefs, MaxPath)
	if m.Name == "" || !strings.HasPrefix(m.Path, "/") {
		d.Fail("bad web repository")
	}
	for _, ns := range m.Hidden {
		if !strings.HasPrefix(ns, "refs/") || !strings.HasSuffix(ns, "/") {
			d.Fail("bad hidden namespace")
		}
	}
}

// WebRequest: parent → web; fd: the stream of one page request from
// httpd, an HTTP/1.1 request to answer on it, which the web process
// closes when it has answered.
type WebRequest struct {
	Client uint32
}

func (*WebRequest) Type() msg.Type          { return TypeWebRequest }
func (m *WebRequest) encode(e *msg.Encoder) { e.Uint32(m.Client) }
func (m *WebRequest) decode(d *msg.Decoder) { m.Client = d.Uint32() }
