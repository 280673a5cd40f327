package ipc

import (
	"strings"

	"gotd/internal/daemon/msg"
)

// Message types of push mirrors' send processes, numbered apart from
// the others.
const (
	TypeSendStart msg.Type = iota + 0x300
	TypeSendRefs
	TypeSendGo
	TypeSendDone
)

// Bounds of the send messages.
const (
	// MaxSendRefs bounds the references of one SendRefs message (the
	// parent splits longer lists, and the message's size bounds them
	// too).
	MaxSendRefs = 4096
	// MaxSendTimeout bounds SendStart.Timeout, in seconds (a day).
	MaxSendTimeout = 24 * 3600
)

// SendStart: parent → send, the first message the parent sends a send
// process: the repository, which the process opens before it confines
// itself, and the one target it sends to, with that target's
// credentials only. SendRefs follow, then SendGo.
type SendStart struct {
	Path string // MaxPath, absolute
	Name string // MaxRepoName, for its log lines
	URL  string // MaxURL
	// AuthUser and AuthPassword are HTTP basic authentication's
	// (MaxSecret each); Key is the SSH private key (MaxPEM),
	// KnownHosts a known_hosts file (MaxPath) and HostKeys pinned
	// keys (MaxKeys of MaxKey).
	AuthUser, AuthPassword string
	Key                    []byte
	KnownHosts             string
	HostKeys               []string
	// All sends every branch and tag, not only the queued references;
	// NoLease overwrites whatever the target holds (the first send to
	// a target).
	All, NoLease bool
	// Timeout bounds the whole send, in seconds: 1 to MaxSendTimeout.
	Timeout uint64
	// CA is the PEM certificates an https target's certificate is
	// verified against instead of the system's roots (MaxCA; empty:
	// the system's).
	CA []byte
}

func (*SendStart) Type() msg.Type { return TypeSendStart }
func (m *SendStart) encode(e *msg.Encoder) {
	e.String(m.Path).String(m.Name).String(m.URL).String(m.AuthUser).String(m.AuthPassword).Bytes(m.Key).
		String(m.KnownHosts).Strings(m.HostKeys).Uint32(boolU32(m.All)).Uint32(boolU32(m.NoLease)).Uint64(m.Timeout)
	e.Bytes(m.CA)
}
func (m *SendStart) decode(d *msg.Decoder) {
	m.Path, m.Name, m.URL = d.String(MaxPath), d.String(MaxRepoName), d.String(MaxURL)
	m.AuthUser, m.AuthPassword, m.Key = d.String(MaxSecret), d.String(MaxSecret), d.Bytes(MaxPEM)
	m.KnownHosts, m.HostKeys = d.String(MaxPath), d.Strings(MaxKeys, MaxKey)
	m.All, m.NoLease, m.Timeout = getBool(d), getBool(d), d.Uint64()
	m.CA = d.Bytes(MaxCA)
	switch {
	case !strings.HasPrefix(m.Path, "/"):
		d.Fail("repository path not absolute")
	case m.URL == "":
		d.Fail("no URL")
	case m.KnownHosts != "" && !strings.HasPrefix(m.KnownHosts, "/"):
		d.Fail("known_hosts path not absolute")
	case m.Timeout == 0 || m.Timeout > MaxSendTimeout:
		d.Fail("timeout out of range")
	}
}

// SendRef is one reference of a SendRefs message.
//
// Parent → send: Queued marks a reference to send; ID is the value gotd
// last set at the target (the lease), empty when it set none.
// Send → parent: ID is the value the target holds once the send is
// done, as far as the send knows (empty: none), and Status is "" when
// the target holds the repository's value, else why not (MaxMessage).
type SendRef struct {
	Name   string // MaxUpdateName
	ID     []byte // empty, or an object id (20 or 32 bytes)
	Queued bool
	Status string
}

// SendRefs: parent → send, after SendStart, the queued references and
// the lease values, in as many messages as they need; send → parent,
// before SendDone, the outcome of every reference it sent.
type SendRefs struct {
	Refs []SendRef // MaxSendRefs
}

func (*SendRefs) Type() msg.Type { return TypeSendRefs }
func (m *SendRefs) encode(e *msg.Encoder) {
	e.Uint32(uint32(len(m.Refs)))
	for _, r := range m.Refs {
		e.String(r.Name).Bytes(r.ID).Uint32(boolU32(r.Queued)).String(r.Status)
	}
}
func (m *SendRefs) decode(d *msg.Decoder) {
	n := d.Uint32()
	if n > MaxSendRefs {
		d.Fail("too many references")
		return
	}
	for i := uint32(0); i < n; i++ {
		r := SendRef{Name: d.String(MaxUpdateName), ID: d.Bytes(MaxChecksum), Queued: getBool(d), Status: d.String(MaxMessage)}
		if l := len(r.ID); l != 0 && l != 20 && l != 32 {
			d.Fail("bad object id length")
		}
		if !strings.HasPrefix(r.Name, "refs/") {
			d.Fail("bad reference name")
		}
		m.Refs = append(m.Refs, r)
	}
}

// SendGo: parent → send, after the last SendRefs: send now.
type SendGo struct{}

func (*SendGo) Type() msg.Type      { return TypeSendGo }
func (*SendGo) encode(*msg.Encoder) {}
func (*SendGo) decode(*msg.Decoder) {}

// Outcomes of a send (SendDone.Status).
const (
	SendOK     = iota // the target took every update it was asked for (SendRefs say which it refused)
	SendFailed        // no update was made (the target unreachable, refused the pack, …): Message says why
	numSendStatus
)

// SendDone: send → parent, the last message of a send process.
type SendDone struct {
	Status  uint32
	Message string // MaxMessage; with SendFailed
}

func (*SendDone) Type() msg.Type { return TypeSendDone }
func (m *SendDone) encode(e *msg.Encoder) {
	e.Uint32(m.Status).String(m.Message)
}
func (m *SendDone) decode(d *msg.Decoder) {
	m.Status, m.Message = d.Uint32(), d.String(MaxMessage)
	if m.Status >= numSendStatus {
		d.Fail("bad send status")
	}
}
