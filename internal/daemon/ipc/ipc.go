// Package ipc defines every message gotd's processes exchange, and the
// clients of its socket (gotsh, gotctl) with it: one Go type per
// message, each documented with its sender, its receiver and the file
// descriptor it carries, every variable-length field with its bound.
// Messages travel on msg channels; Recv decodes one and refuses a
// message of another type, of the wrong size, with a field over its
// bound, or with a descriptor where none belongs (or none where one
// must be). What a process does on such a message is its role's
// business: drop that client, log why, go on serving the others.
package ipc

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"gotd/internal/policy"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"gotd/internal/daemon/msg"
)

// Bounds of variable-length fields.
const (
	MaxService  = 32   // "git-upload-pack", "git-receive-pack", "git-upload-archive"
	MaxRepoName = 1024 // a repository's name as the client gave it
	MaxPath     = 4096 // a path on the server
	MaxProtocol = 256  // GIT_PROTOCOL
	MaxUser     = 256  // a user or group name
	MaxMessage  = 1024 // a message for a client or operator
	MaxRules    = 4096 // permit and deny rules of one repository
	MaxRefs     = 4096 // protected references and namespaces, of each kind
	MaxText     = 32 << 10
	MaxChecksum = 64
	MaxRemote   = 128     // a peer's network address
	MaxKeys     = 256     // SSH public keys of one account
	MaxKey      = 8 << 10 // one authorized_keys line, or one password hash
	MaxPEM      = 60 << 10
	MaxCA       = 32 << 10 // a mirror's CA certificates, PEM (config.MaxMirrorCA)
	MaxNote     = 60 << 10 // a push note's JSON document (pushnote.MaxSize)
	MaxURL      = 2048     // a notification URL
	MaxTemplate = 8 << 10  // a notification's body template (webhook.MaxTemplate)
	MaxMethod   = 16       // an HTTP method, or a body kind
	MaxSecret   = 1024     // a notification credential, or a password an HTTP client presented
	MaxHost     = 255      // a host name
)

// Message types. The numbering is private to one build: gotsh, gotctl
// and gotd must come from the same release.
const (
	TypeHello msg.Type = iota + 1
	TypeStream
	TypeControl
	TypeDone
	TypeText
	TypeConnect
	TypeControlConnect
	TypeDisconnect
	TypeHalt
	TypeLimits
	TypeAuthRequest
	TypeAuthResult
	TypeStart
	TypeFailed
	TypeRecvPack
	TypeProgress
	TypePackIndexed
	TypeSessionEnd
	TypeNotification
	TypeFrontend
	TypeAccount
	TypeAccountsEnd
	TypeCredential
	TypePushNote
	TypeNotifySettings
	TypeNotifyRepo
	TypeNotifyTarget
	TypeNotifyStatus
	TypeHeld
	TypeVerify
	TypeVerdict
	TypeReady
	TypeSessionStats
	TypeMetricsScrape
	TypeMetrics
	TypeUpkeepStart
	TypeUpkeepDone
	TypeMirrorStart
	TypeMirrorRef
	TypeMirrorFetched
	TypeWebStart
	TypeWebRepo
	TypeWebRequest
)

// Message is one of the types below.
type Message interface {
	Type() msg.Type
	encode(e *msg.Encoder)
	decode(d *msg.Decoder)
}

// Errors of Recv.
var (
	ErrUnexpected = errors.New("ipc: unexpected message")
	ErrNoFile     = errors.New("ipc: descriptor missing")
	ErrFile       = errors.New("ipc: descriptor not allowed")
)

// Send sends m, with f if not nil.
func Send(c *msg.Conn, m Message, f *os.File) error {
	var e msg.Encoder
	m.encode(&e)
	return c.Send(msg.Msg{Type: m.Type(), Data: e.Data(), File: f})
}

// Decode decodes raw into m, which must be of raw's type. The caller
// keeps raw.File.
func Decode(raw msg.Msg, m Message) error {
	if raw.Type != m.Type() {
		return fmt.Errorf("%w: type %d, want %d", ErrUnexpected, raw.Type, m.Type())
	}
	d := msg.NewDecoder(raw.Data)
	m.decode(d)
	if err := d.Finish(); err != nil {
		return fmt.Errorf("ipc: message type %d: %w", raw.Type, err)
	}
	return nil
}

// Recv receives a message of m's type into m. withFile says whether it
// must carry a descriptor (returned) or must not; on any error a
// received descriptor is closed.
func Recv(c *msg.Conn, m Message, withFile bool) (*os.File, error) {
	raw, err := c.Recv()
	if err != nil {
		return nil, err
	}
	return Check(raw, m, withFile)
}

// Check decodes a received message into m as Recv does.
func Check(raw msg.Msg, m Message, withFile bool) (*os.File, error) {
	err := Decode(raw, m)
	switch {
	case err != nil:
	case withFile && raw.File == nil:
		err = ErrNoFile
	case !withFile && raw.File != nil:
		err = ErrFile
	}
	if err != nil {
		if raw.File != nil {
			raw.File.Close()
		}
		return nil, err
	}
	return raw.File, nil
}

func boolU32(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

// Hello: gotsh → listen, first message on a new connection. Then two
// Stream messages carry gotsh's standard input and output.
type Hello struct {
	Service  string // MaxService
	Repo     string // MaxRepoName
	Protocol string // MaxProtocol: GIT_PROTOCOL as sshd passed it
	// SSHRemote is the OpenSSH client's address as gotsh read it from
	// SSH_CONNECTION (SSHConnectionRemote), "" when unknown: a
	// "host:port" of MaxRemote bytes at most, refused on receipt if it
	// is anything else. The local user that runs gotsh chooses it: it
	// is for logs, never for a decision.
	SSHRemote string
}

func (*Hello) Type() msg.Type { return TypeHello }
func (m *Hello) encode(e *msg.Encoder) {
	e.String(m.Service).String(m.Repo).String(m.Protocol).String(m.SSHRemote)
}
func (m *Hello) decode(d *msg.Decoder) {
	m.Service, m.Repo, m.Protocol = d.String(MaxService), d.String(MaxRepoName), d.String(MaxProtocol)
	m.SSHRemote = d.String(MaxRemote)
	if m.SSHRemote != "" {
		if ap, err := netip.ParseAddrPort(m.SSHRemote); err != nil || ap.String() != m.SSHRemote {
			d.Fail("bad remote address")
		}
	}
}

// maxSSHConnection bounds the SSH_CONNECTION value SSHConnectionRemote
// reads: two addresses and two ports.
const maxSSHConnection = 2*MaxRemote + 16

// SSHConnectionRemote returns the client's address in an
// SSH_CONNECTION value ("client-address client-port server-address
// server-port", as OpenSSH sets it) as Hello.SSHRemote carries it
// ("192.0.2.1:50000", "[2001:db8::1]:50000"), or "" when v is not of
// that form.
func SSHConnectionRemote(v string) string {
	if len(v) > maxSSHConnection {
		return ""
	}
	f := strings.Split(v, " ")
	if len(f) != 4 {
		return ""
	}
	addr, err := netip.ParseAddr(f[0])
	if err != nil {
		return ""
	}
	port, err := strconv.ParseUint(f[1], 10, 16)
	if err != nil || port == 0 {
		return ""
	}
	r := netip.AddrPortFrom(addr, uint16(port)).String()
	if len(r) > MaxRemote {
		return ""
	}
	return r
}

// Stream: gotsh → listen → parent, and parent → session_read
// (SendStreams); fd: one direction of the client's Git stream (gotsh's
// standard input, then its standard output). Client is 0 from gotsh,
// the client's id from listen and the parent.
type Stream struct {
	Client uint32
	Output bool
}

func (*Stream) Type() msg.Type { return TypeStream }
func (m *Stream) encode(e *msg.Encoder) {
	e.Uint32(m.Client).Uint32(boolU32(m.Output))
}
func (m *Stream) decode(d *msg.Decoder) {
	m.Client = d.Uint32()
	m.Output = getBool(d)
}

// Control: gotctl → listen, the only message of a control connection.
type Control struct {
	Command string // MaxService: "info", "stop", "reload", "upkeep", "sync"
	// Repo is the repository of "upkeep" and "sync" as the caller named it
	// (MaxRepoName), "" for the other commands.
	Repo string
}

func (*Control) Type() msg.Type          { return TypeControl }
func (m *Control) encode(e *msg.Encoder) { e.String(m.Command).String(m.Repo) }
func (m *Control) decode(d *msg.Decoder) {
	m.Command, m.Repo = d.String(MaxService), d.String(MaxRepoName)
}

// Status of Done.
const (
	StatusOK      = 0
	StatusFailed  = 1 // the session failed; the client was told in the protocol if it could be
	StatusRefused = 2 // refused before any Git data: Message is for the client
)

// Reasons of a refusal (Done.Reason), for front-ends that answer with
// a status of their own (HTTP).
const (
	ReasonNone   = iota
	ReasonNoRepo // no such repository, or no rule for the user
	ReasonDenied // a deny rule, or a read-only user pushing
	ReasonBusy   // over a connection limit
	ReasonBadRequest
	ReasonInternal
	ReasonUnauthenticated // credentials that do not prove the account
	ReasonRateLimited     // too many failed authentications or requests from the address
	numReasons
)

// Done: parent → gotsh, a front-end or gotctl, the last message of a
// connection.
type Done struct {
	Status  uint32
	Reason  uint32 // with StatusRefused
	Message string // MaxMessage; fixed texts, never client bytes
}

func (*Done) Type() msg.Type { return TypeDone }
func (m *Done) encode(e *msg.Encoder) {
	e.Uint32(m.Status).Uint32(m.Reason).String(m.Message)
}
func (m *Done) decode(d *msg.Decoder) {
	m.Status, m.Reason, m.Message = d.Uint32(), d.Uint32(), d.String(MaxMessage)
	if m.Status > StatusRefused || m.Reason >= numReasons {
		d.Fail("bad status")
	}
}

// Text: parent → gotctl, output of a command, in pieces.
type Text struct {
	Text string // MaxText
}

func (*Text) Type() msg.Type          { return TypeText }
func (m *Text) encode(e *msg.Encoder) { e.String(m.Text) }
func (m *Text) decode(d *msg.Decoder) { m.Text = d.String(MaxText) }

// Where a client came from (Connect.Via): the unix socket (gotsh), or
// one of the network front-ends.
const (
	ViaSocket = iota
	ViaSSH
	ViaGit
	ViaHTTP
	numVia
)

// How a session serves its client's stream (Connect.Mode, Start.Mode).
const (
	ModeFull      = iota // a whole conversation: gotsh, SSH, git://
	ModeAdvertise        // smart HTTP info/refs: the advertisement only
	ModeStateless        // smart HTTP POST: one request, no advertisement
	ModeArchive          // git-upload-archive: a whole conversation (Start.Mode only, set by the parent)
	ModeDumb             // a dumb HTTP GET: one file (protocol/dumb's frames), from httpd for git-upload-pack
	ModeMirror           // Start only: session_write moves a pull mirror's references (MirrorFetched), no client
	numModes
)

// Connect: listen or a front-end → parent; fd: the connection to gotsh,
// or the front-end's end of a channel on which the parent answers only
// with Done. Two Stream messages for the same client follow.
type Connect struct {
	Client        uint32
	UID, GID, PID uint32 // the peer's credentials (SO_PEERCRED); 0 from a front-end
	Via           uint32
	Mode          uint32
	// Account is the account a front-end claims for the client; "" is
	// anonymous. The parent accepts only what the front-end can
	// establish: nothing from gitd and listen, an account with a key
	// from sshd, and from httpd an account whose Secret a verifier
	// confirms for this client.
	Account string // MaxUser
	// Secret is the password or token an HTTP client presented for
	// Account; "" from the other sources.
	Secret string // MaxSecret
	Remote string // MaxRemote: the peer's address, for logs
	Hello
}

func (*Connect) Type() msg.Type { return TypeConnect }
func (m *Connect) encode(e *msg.Encoder) {
	e.Uint32(m.Client).Uint32(m.UID).Uint32(m.GID).Uint32(m.PID).Uint32(m.Via).Uint32(m.Mode)
	e.String(m.Account).String(m.Secret).String(m.Remote)
	m.Hello.encode(e)
}
func (m *Connect) decode(d *msg.Decoder) {
	m.Client, m.UID, m.GID, m.PID = d.Uint32(), d.Uint32(), d.Uint32(), d.Uint32()
	m.Via, m.Mode = d.Uint32(), d.Uint32()
	m.Account, m.Secret, m.Remote = d.String(MaxUser), d.String(MaxSecret), d.String(MaxRemote)
	m.Hello.decode(d)
	// ModeArchive is the parent's to choose, from the service;
	// ModeMirror is the parent's alone: no client has it.
	if m.Via >= numVia || m.Mode >= numModes || m.Mode == ModeArchive || m.Mode == ModeMirror {
		d.Fail("bad front-end or mode")
	}
}

// ClientID makes a new client id for a connection that came via: the
// top two bits name the source, so that listen and the front-ends never
// choose the same id; taken says which ids the source still uses.
func ClientID(via uint32, taken func(uint32) bool) uint32 {
	for {
		var b [4]byte
		rand.Read(b[:])
		id := via<<30 | binary.BigEndian.Uint32(b[:])>>2
		if id != 0 && !taken(id) {
			return id
		}
	}
}

// Via is the source of a client id made by ClientID.
func Via(id uint32) uint32 { return id >> 30 }

// ControlConnect: listen → parent; fd: the connection to gotctl.
type ControlConnect struct {
	Client uint32
	UID    uint32
	Control
}

func (*ControlConnect) Type() msg.Type { return TypeControlConnect }
func (m *ControlConnect) encode(e *msg.Encoder) {
	e.Uint32(m.Client).Uint32(m.UID)
	m.Control.encode(e)
}
func (m *ControlConnect) decode(d *msg.Decoder) {
	m.Client, m.UID = d.Uint32(), d.Uint32()
	m.Control.decode(d)
}

// Disconnect: parent → listen: a client is gone; its connection no
// longer counts against the limits.
type Disconnect struct {
	Client uint32
}

func (*Disconnect) Type() msg.Type          { return TypeDisconnect }
func (m *Disconnect) encode(e *msg.Encoder) { e.Uint32(m.Client) }
func (m *Disconnect) decode(d *msg.Decoder) { m.Client = d.Uint32() }

// Held: parent → listen, after Limits when listen is started again: a
// client of the socket that is still connected, so that it counts
// against its user's limit and its id is not given again.
type Held struct {
	Client, UID uint32
}

func (*Held) Type() msg.Type          { return TypeHeld }
func (m *Held) encode(e *msg.Encoder) { e.Uint32(m.Client).Uint32(m.UID) }
func (m *Held) decode(d *msg.Decoder) {
	m.Client, m.UID = d.Uint32(), d.Uint32()
	if Via(m.Client) != ViaSocket || m.Client == 0 {
		d.Fail("not a client of the socket")
	}
}

// Halt: parent → listen and the front-ends: stop accepting connections
// (gotctl stop, or a front-end replaced at a reload). A front-end
// answers with Halt once its listeners are closed.
type Halt struct{}

func (*Halt) Type() msg.Type        { return TypeHalt }
func (*Halt) encode(*msg.Encoder)   {}
func (*Halt) decode(d *msg.Decoder) {}

// Ready: listen, notify, sshd, gitd, httpd → parent: the process has
// confined itself and is about to serve; at start the parent reports
// the daemon started (and lets gotd's foreground process exit) only
// once each has said so.
type Ready struct{}

func (*Ready) Type() msg.Type        { return TypeReady }
func (*Ready) encode(*msg.Encoder)   {}
func (*Ready) decode(d *msg.Decoder) {}

// Limits: parent → listen, at start and after a reload: connections
// allowed per user and in all, and connections allowed to wait for
// their request (pending) per user and in all.
type Limits struct {
	Default, Total               uint32
	PendingTotal, PendingPerUser uint32
	// UIDs and PerUID are parallel, at most MaxRules long.
	UIDs, PerUID []uint32
	// Control lists the uids allowed to use gotctl, at most 2: root,
	// and the daemon's user only when that user started it (no other
	// could). ControlGIDs, at most 1, is the "control group": a caller
	// with it as primary or supplementary group may use gotctl too.
	Control     []uint32
	ControlGIDs []uint32
}

func (*Limits) Type() msg.Type { return TypeLimits }
func (m *Limits) encode(e *msg.Encoder) {
	e.Uint32(m.Default).Uint32(m.Total).Uint32(m.PendingTotal).Uint32(m.PendingPerUser)
	e.Uint32s(m.UIDs).Uint32s(m.PerUID).Uint32s(m.Control).Uint32s(m.ControlGIDs)
}
func (m *Limits) decode(d *msg.Decoder) {
	m.Default, m.Total, m.PendingTotal, m.PendingPerUser = d.Uint32(), d.Uint32(), d.Uint32(), d.Uint32()
	m.UIDs, m.PerUID, m.Control, m.ControlGIDs = d.Uint32s(MaxRules), d.Uint32s(MaxRules), d.Uint32s(2), d.Uint32s(1)
	if len(m.UIDs) != len(m.PerUID) {
		d.Fail("limits of different lengths")
	}
}

// Rule is a permit or deny line, as config.Rule.
type Rule struct {
	Deny, Write bool
	Ident       string // MaxUser
}

// AuthRequest: parent → auth; fd: the client's connection, whose peer
// auth checks again against UID.
type AuthRequest struct {
	UID, GID uint32
	Repo     string // MaxRepoName, for the log
	Rules    []Rule // MaxRules
	// Groups asks for the user's groups in the answer: the push
	// policy has rules naming groups.
	Groups bool
}

func (*AuthRequest) Type() msg.Type { return TypeAuthRequest }
func (m *AuthRequest) encode(e *msg.Encoder) {
	e.Uint32(m.UID).Uint32(m.GID).String(m.Repo).Uint32(boolU32(m.Groups)).Uint32(uint32(len(m.Rules)))
	for _, r := range m.Rules {
		e.Uint32(boolU32(r.Deny)).Uint32(boolU32(r.Write)).String(r.Ident)
	}
}
func (m *AuthRequest) decode(d *msg.Decoder) {
	m.UID, m.GID, m.Repo, m.Groups = d.Uint32(), d.Uint32(), d.String(MaxRepoName), getBool(d)
	n := d.Uint32()
	if n > MaxRules {
		d.Fail("too many rules")
		return
	}
	for i := uint32(0); i < n; i++ {
		m.Rules = append(m.Rules, Rule{Deny: getBool(d), Write: getBool(d), Ident: d.String(MaxUser)})
	}
}

// Verify: parent → auth, instead of AuthRequest, for a client of
// httpd that presented Secret: auth compares it with Tokens (SHA-256
// hashes, MaxKeys of MaxKey) and with Hash (a bcrypt hash, MaxKey),
// which is the account's password hash when Password is set, and
// otherwise a hash of nothing at the same cost, so that every answer
// costs one bcrypt comparison whether or not the account exists or has
// a password.
type Verify struct {
	Secret   string // MaxSecret
	Hash     string // MaxKey
	Password bool
	Tokens   []string
}

func (*Verify) Type() msg.Type { return TypeVerify }
func (m *Verify) encode(e *msg.Encoder) {
	e.String(m.Secret).String(m.Hash).Uint32(boolU32(m.Password)).Strings(m.Tokens)
}
func (m *Verify) decode(d *msg.Decoder) {
	m.Secret, m.Hash, m.Password, m.Tokens = d.String(MaxSecret), d.String(MaxKey), getBool(d), d.Strings(MaxKeys, MaxKey)
}

// Verdict: auth → parent, the only message of an auth process that was
// sent Verify: whether the secret proves the account.
type Verdict struct {
	OK bool
}

func (*Verdict) Type() msg.Type          { return TypeVerdict }
func (m *Verdict) encode(e *msg.Encoder) { e.Uint32(boolU32(m.OK)) }
func (m *Verdict) decode(d *msg.Decoder) { m.OK = getBool(d) }

// AuthResult: auth → parent, the only message of an auth process.
type AuthResult struct {
	Access uint32 // config.Access
	User   string // MaxUser: the name of UID
	// Groups and GIDs are the user's groups, when asked for, which the
	// parent matches the push policy's identities against; at most
	// MaxGroups each and MaxGroupBytes of names together.
	Groups []string
	GIDs   []uint32
}

// Bounds of the groups an AuthResult carries.
const (
	MaxGroups     = 1024
	MaxGroupBytes = 32 << 10
)

func (*AuthResult) Type() msg.Type { return TypeAuthResult }
func (m *AuthResult) encode(e *msg.Encoder) {
	e.Uint32(m.Access).String(m.User).Strings(m.Groups).Uint32s(m.GIDs)
}
func (m *AuthResult) decode(d *msg.Decoder) {
	m.Access, m.User, m.Groups, m.GIDs = d.Uint32(), d.String(MaxUser), d.Strings(MaxGroups, MaxUser), d.Uint32s(MaxGroups)
	if GroupBytes(m.Groups) > MaxGroupBytes {
		d.Fail("group names too long")
	}
}

// GroupBytes counts the bytes of group names as an AuthResult bounds
// them.
func GroupBytes(groups []string) int {
	n := 0
	for _, g := range groups {
		n += len(g) + 4
	}
	return n
}

// Start: parent → session_read, session_write or repo_write, the
// first message on its channel: the client and repository it serves.
type Start struct {
	Client   uint32
	Repo     string // MaxRepoName: the configured name
	Path     string // MaxPath
	Protocol string // MaxProtocol
	User     string // MaxUser
	// Timeout bounds the wait for each request of the client, in
	// seconds.
	Timeout uint32
	Mode    uint32 // ModeFull, ModeAdvertise, ModeStateless, ModeArchive or ModeDumb
	// Quarantine is the push's quarantine directory, which the parent
	// created in objects/ and removes when the client is gone
	// (session_write, repo_write: the only place it may write).
	Quarantine string // MaxPath
	// Protected references (session_write), each list MaxRefs long.
	Branches, BranchNamespaces, TagNamespaces []string
	// Notify says whether the repository has notification targets
	// (session_write); NotifyBranches and NotifyNamespaces (MaxRefs
	// each) are the references they want told about, both empty: all.
	Notify                           bool
	NotifyBranches, NotifyNamespaces []string
	// Hidden are the repository's hidden reference namespaces
	// (MaxRefs), ending in "/".
	Hidden []string
	// Push is the repository's push policy for this client
	// (session_write; MaxRefs rules and namespaces); MaxPackSize,
	// MaxObjects and MinFree bound the pack (repo_write; 0: none),
	// MaxObjectSize each of its objects and delta results (repo_write;
	// 0: the protocol's default).
	Push                             policy.Push
	MaxPackSize, MaxObjects, MinFree uint64
	MaxObjectSize                    uint64
	// MemoryLimit is the process's memory budget in bytes (0: none;
	// else MinMemoryLimit to MaxMemoryLimit).
	MemoryLimit uint64
	// Deadline ends the client's request, in Unix nanoseconds (0:
	// none); MinRate bytes must move each way in every RateInterval
	// seconds the server waits on the client (0: no minimum). The
	// parent fixes the deadline once, so that the session and repo
	// processes of a client end at the same instant (stream.Limits).
	Deadline     int64
	MinRate      uint64
	RateInterval uint32
	// MirrorNamespaces are the namespaces a pull mirror follows
	// (ModeMirror), each "refs/…/" (MaxRefs; empty: refs/heads/ and
	// refs/tags/).
	MirrorNamespaces []string
}

// Bounds of Start.MemoryLimit.
const (
	MinMemoryLimit = 32 << 20
	MaxMemoryLimit = 1 << 48
)

func (*Start) Type() msg.Type { return TypeStart }
func (m *Start) encode(e *msg.Encoder) {
	e.Uint32(m.Client).String(m.Repo).String(m.Path).String(m.Protocol).String(m.User).Uint32(m.Timeout).Uint32(m.Mode).String(m.Quarantine)
	e.Strings(m.Branches).Strings(m.BranchNamespaces).Strings(m.TagNamespaces)
	e.Uint32(boolU32(m.Notify)).Strings(m.NotifyBranches).Strings(m.NotifyNamespaces)
	e.Strings(m.Hidden)
	e.Uint32(uint32(len(m.Push.Refs)))
	for _, r := range m.Push.Refs {
		e.Uint32(boolU32(r.Deny)).Uint32(boolU32(r.Delete)).String(r.Namespace)
	}
	e.Uint64(uint64(m.Push.MaxBlobSize)).Uint32(boolU32(m.Push.DenyBinary)).Strings(m.Push.NoMerges)
	e.Uint64(m.MaxPackSize).Uint64(m.MaxObjects).Uint64(m.MinFree).Uint64(m.MaxObjectSize)
	e.Uint64(m.MemoryLimit)
	e.Uint64(uint64(m.Deadline)).Uint64(m.MinRate).Uint32(m.RateInterval)
	e.Strings(m.Push.Rebase).Uint32(uint32(m.Push.MaxRebase))
	e.Strings(m.MirrorNamespaces)
}
func (m *Start) decode(d *msg.Decoder) {
	m.Client, m.Repo, m.Path, m.Protocol, m.User = d.Uint32(), d.String(MaxRepoName), d.String(MaxPath), d.String(MaxProtocol), d.String(MaxUser)
	m.Timeout, m.Mode, m.Quarantine = d.Uint32(), d.Uint32(), d.String(MaxPath)
	if m.Mode >= numModes {
		d.Fail("bad mode")
	}
	m.Branches, m.BranchNamespaces, m.TagNamespaces = d.Strings(MaxRefs, MaxPath), d.Strings(MaxRefs, MaxPath), d.Strings(MaxRefs, MaxPath)
	m.Notify, m.NotifyBranches, m.NotifyNamespaces = getBool(d), d.Strings(MaxRefs, MaxPath), d.Strings(MaxRefs, MaxPath)
	m.Hidden = d.Strings(MaxRefs, MaxPath)
	for _, ns := range m.Hidden {
		if !strings.HasPrefix(ns, "refs/") || !strings.HasSuffix(ns, "/") {
			d.Fail("bad hidden namespace")
		}
	}
	n := d.Uint32()
	if n > MaxRefs {
		d.Fail("too many reference rules")
		return
	}
	for range n {
		r := policy.RefRule{Deny: getBool(d), Delete: getBool(d), Namespace: d.String(MaxPath)}
		if !strings.HasPrefix(r.Namespace, "refs/") {
			d.Fail("bad reference rule")
		}
		m.Push.Refs = append(m.Push.Refs, r)
	}
	blob := d.Uint64()
	if blob > 1<<62 {
		d.Fail("bad blob size")
	}
	m.Push.MaxBlobSize, m.Push.DenyBinary, m.Push.NoMerges = int64(blob), getBool(d), d.Strings(MaxRefs, MaxPath)
	for _, ref := range m.Push.NoMerges {
		if !strings.HasPrefix(ref, "refs/") {
			d.Fail("bad merge rule")
		}
	}
	m.MaxPackSize, m.MaxObjects, m.MinFree, m.MaxObjectSize = d.Uint64(), d.Uint64(), d.Uint64(), d.Uint64()
	if m.MaxPackSize > 1<<62 || m.MaxObjects > 1<<32-1 || m.MinFree > 1<<62 || m.MaxObjectSize > 1<<62 {
		d.Fail("bad pack bounds")
	}
	m.MemoryLimit = d.Uint64()
	if m.MemoryLimit != 0 && (m.MemoryLimit < MinMemoryLimit || m.MemoryLimit > MaxMemoryLimit) {
		d.Fail("bad memory limit")
	}
	deadline := d.Uint64()
	m.MinRate, m.RateInterval = d.Uint64(), d.Uint32()
	if deadline > 1<<63-1 || m.MinRate > 1<<62 {
		d.Fail("bad pace")
	}
	m.Deadline = int64(deadline)
	m.Push.Rebase = d.Strings(MaxRefs, MaxPath)
	for _, ref := range m.Push.Rebase {
		if !strings.HasPrefix(ref, "refs/heads/") {
			d.Fail("bad rebase rule")
		}
	}
	maxRebase := d.Uint32()
	if maxRebase > 1<<16 {
		d.Fail("bad rebase bound")
	}
	m.Push.MaxRebase = int(maxRebase)
	m.MirrorNamespaces = d.Strings(MaxRefs, MaxPath)
	if !mirrorNamespaces(m.MirrorNamespaces) {
		d.Fail("bad mirror namespace")
	}
}

// InNamespaces reports whether the reference name is in one of the
// namespaces nss (each ending in "/").
func InNamespaces(name string, nss []string) bool {
	for _, ns := range nss {
		if strings.HasPrefix(name, ns) {
			return true
		}
	}
	return false
}

// mirrorNamespaces reports whether every namespace of a pull mirror's
// is "refs/…/".
func mirrorNamespaces(nss []string) bool {
	for _, ns := range nss {
		if !strings.HasPrefix(ns, "refs/") || !strings.HasSuffix(ns, "/") {
			return false
		}
	}
	return true
}

// Failed: repo_write → its session: the request failed; Message is
// what the client may be told. Bytes is how many bytes of the client's
// stream moved before, for the metrics.
type Failed struct {
	Message string // MaxMessage
	Bytes   uint64
}

func (*Failed) Type() msg.Type          { return TypeFailed }
func (m *Failed) encode(e *msg.Encoder) { e.String(m.Message).Uint64(m.Bytes) }
func (m *Failed) decode(d *msg.Decoder) {
	m.Message, m.Bytes = d.String(MaxMessage), d.Uint64()
	if m.Bytes > MaxStreamBytes {
		d.Fail("bad byte count")
	}
}

// RecvPack: session_write → repo_write; fd: the client's input, at the
// first byte of the pack.
type RecvPack struct{}

func (*RecvPack) Type() msg.Type      { return TypeRecvPack }
func (*RecvPack) encode(*msg.Encoder) {}
func (*RecvPack) decode(*msg.Decoder) {}

// Progress: repo_write → session_write, while indexing.
type Progress struct {
	Stage       string // MaxService
	Done, Total uint32
}

func (*Progress) Type() msg.Type { return TypeProgress }
func (m *Progress) encode(e *msg.Encoder) {
	e.String(m.Stage).Uint32(m.Done).Uint32(m.Total)
}
func (m *Progress) decode(d *msg.Decoder) {
	m.Stage, m.Done, m.Total = d.String(MaxService), d.Uint32(), d.Uint32()
}

// PackIndexed: repo_write → session_write: the pack is verified and
// indexed in the quarantine directory. Bytes is how many bytes of the
// client's stream it read, for the metrics.
type PackIndexed struct {
	Pack, Index, Rev string // MaxPath each
	Count, ThinBases uint32
	Checksum         []byte // MaxChecksum
	Bytes            uint64
}

func (*PackIndexed) Type() msg.Type { return TypePackIndexed }
func (m *PackIndexed) encode(e *msg.Encoder) {
	e.String(m.Pack).String(m.Index).String(m.Rev).Uint32(m.Count).Uint32(m.ThinBases).Bytes(m.Checksum)
	e.Uint64(m.Bytes)
}
func (m *PackIndexed) decode(d *msg.Decoder) {
	m.Pack, m.Index, m.Rev = d.String(MaxPath), d.String(MaxPath), d.String(MaxPath)
	m.Count, m.ThinBases, m.Checksum = d.Uint32(), d.Uint32(), d.Bytes(MaxChecksum)
	if m.Bytes = d.Uint64(); m.Bytes > MaxStreamBytes {
		d.Fail("bad byte count")
	}
}

// SessionEnd: session_read or session_write → parent, its last
// message: how the session ended and what the client's request did,
// for the parent's record of the request.
type SessionEnd struct {
	Status uint32 // StatusOK or StatusFailed
	// Error is what the client was told when the session failed: a
	// fixed text of the server's (MaxMessage), never the client's bytes.
	Error string
	// A fetch: the reference listings sent (ls-refs commands, or the
	// advertisement of versions 0 and 1), the packs sent, and the
	// wants, haves and objects of those packs.
	LsRefs, Fetches       uint32
	Wants, Haves, Objects uint32
	// Bytes were sent to the client (a fetch) or received from it (a
	// push), the pack included.
	Bytes uint64
	// A push: its commands, how many moved their references, and the
	// first MaxUpdates of them as the session chose to tell them.
	Commands, Updated uint32
	Updates           []Update
	// Abuse: the request failed as no well-behaved client's does (over
	// its bounds, malformed, too slow); the parent counts those of
	// anonymous clients against their address.
	Abuse bool
}

// Bounds of SessionEnd's updates.
const (
	MaxUpdates    = 10
	MaxUpdateName = 1024 // a longer reference is counted, not listed
)

// Update is one command of a push, for the log.
type Update struct {
	Name     string // MaxUpdateName
	Old, New []byte // object ids, MaxChecksum each; all zeros for none
	// Move is how the reference moved, "" when it did not (MaxService);
	// Refused why not (MaxMessage), a fixed text of the server's.
	Move    string
	Refused string
}

func (*SessionEnd) Type() msg.Type { return TypeSessionEnd }
func (m *SessionEnd) encode(e *msg.Encoder) {
	e.Uint32(m.Status).String(m.Error).Uint32(m.LsRefs).Uint32(m.Fetches)
	e.Uint32(m.Wants).Uint32(m.Haves).Uint32(m.Objects).Uint64(m.Bytes)
	e.Uint32(m.Commands).Uint32(m.Updated).Uint32(uint32(len(m.Updates)))
	for _, u := range m.Updates {
		e.String(u.Name).Bytes(u.Old).Bytes(u.New).String(u.Move).String(u.Refused)
	}
	abuse := uint32(0)
	if m.Abuse {
		abuse = 1
	}
	e.Uint32(abuse)
}
func (m *SessionEnd) decode(d *msg.Decoder) {
	m.Status, m.Error, m.LsRefs, m.Fetches = d.Uint32(), d.String(MaxMessage), d.Uint32(), d.Uint32()
	m.Wants, m.Haves, m.Objects, m.Bytes = d.Uint32(), d.Uint32(), d.Uint32(), d.Uint64()
	m.Commands, m.Updated = d.Uint32(), d.Uint32()
	if m.Status > StatusFailed || m.Updated > m.Commands {
		d.Fail("bad session end")
	}
	n := d.Uint32()
	if n > MaxUpdates || n > m.Commands {
		d.Fail("too many updates")
		return
	}
	for range n {
		u := Update{Name: d.String(MaxUpdateName), Old: d.Bytes(MaxChecksum), New: d.Bytes(MaxChecksum),
			Move: d.String(MaxService), Refused: d.String(MaxMessage)}
		if !strings.HasPrefix(u.Name, "refs/") || len(u.Old) != len(u.New) || (len(u.Old) != 20 && len(u.Old) != 32) {
			d.Fail("bad update")
		}
		m.Updates = append(m.Updates, u)
	}
	switch d.Uint32() {
	case 0:
	case 1:
		m.Abuse = true
	default:
		d.Fail("bad session end")
	}
}

// PushNote: session_write → parent, after the references moved and
// before SessionEnd, one per moved reference that the repository's
// notify settings want told: the pushnote document (JSON).
type PushNote struct {
	Note []byte // MaxNote
}

func (*PushNote) Type() msg.Type          { return TypePushNote }
func (m *PushNote) encode(e *msg.Encoder) { e.Bytes(m.Note) }
func (m *PushNote) decode(d *msg.Decoder) { m.Note = d.Bytes(MaxNote) }

// Notification: parent → notify: a push note of a session_write, with
// the repository and user the parent knows the client by.
type Notification struct {
	Repo, User string // MaxRepoName, MaxUser
	Note       []byte // MaxNote
}

func (*Notification) Type() msg.Type { return TypeNotification }
func (m *Notification) encode(e *msg.Encoder) {
	e.String(m.Repo).String(m.User).Bytes(m.Note)
}
func (m *Notification) decode(d *msg.Decoder) {
	m.Repo, m.User, m.Note = d.String(MaxRepoName), d.String(MaxUser), d.Bytes(MaxNote)
}

// NotifySettings: parent → notify, when it starts and after a reload:
// the spool directory of its queue ("" when no repository has targets)
// and the host name mail is sent as. NotifyRepo and NotifyTarget
// messages follow, then AccountsEnd.
type NotifySettings struct {
	Spool   string // MaxPath
	Host    string // MaxHost
	Timeout uint32 // seconds one delivery attempt may take
}

func (*NotifySettings) Type() msg.Type { return TypeNotifySettings }
func (m *NotifySettings) encode(e *msg.Encoder) {
	e.String(m.Spool).String(m.Host).Uint32(m.Timeout)
}
func (m *NotifySettings) decode(d *msg.Decoder) {
	m.Spool, m.Host, m.Timeout = d.String(MaxPath), d.String(MaxHost), d.Uint32()
}

// NotifyRepo: parent → notify, after NotifySettings: a repository with
// notification targets and the references it notifies about (branches
// and namespaces, MaxRefs each; both empty: all).
type NotifyRepo struct {
	Name                 string // MaxRepoName
	Branches, Namespaces []string
}

func (*NotifyRepo) Type() msg.Type { return TypeNotifyRepo }
func (m *NotifyRepo) encode(e *msg.Encoder) {
	e.String(m.Name).Strings(m.Branches).Strings(m.Namespaces)
}
func (m *NotifyRepo) decode(d *msg.Decoder) {
	m.Name, m.Branches, m.Namespaces = d.String(MaxRepoName), d.Strings(MaxRefs, MaxPath), d.Strings(MaxRefs, MaxPath)
}

// Kinds of NotifyTarget.
const (
	TargetEmail = iota
	TargetURL
	numTargets
)

// NotifyTarget: parent → notify, after its repository's NotifyRepo: one
// email or url target, with the credentials of the secrets file.
type NotifyTarget struct {
	Repo string // MaxRepoName
	Kind uint32
	// Email: sender (defaulted by the parent), recipient, reply-to,
	// relay and port ("" for the defaults), each MaxURL.
	From, To, ReplyTo, Relay, Port string
	// URL: the URL (MaxURL), basic auth and HMAC key (MaxSecret each).
	URL, User, Password, HMAC string
	// URL: the method ("" for POST) and body kind ("" for the JSON
	// document), MaxMethod each, and the body template (MaxTemplate).
	Method, BodyKind, Body string
}

func (*NotifyTarget) Type() msg.Type { return TypeNotifyTarget }
func (m *NotifyTarget) encode(e *msg.Encoder) {
	e.String(m.Repo).Uint32(m.Kind).String(m.From).String(m.To).String(m.ReplyTo).String(m.Relay).String(m.Port)
	e.String(m.URL).String(m.User).String(m.Password).String(m.HMAC)
	e.String(m.Method).String(m.BodyKind).String(m.Body)
}
func (m *NotifyTarget) decode(d *msg.Decoder) {
	m.Repo, m.Kind = d.String(MaxRepoName), d.Uint32()
	m.From, m.To, m.ReplyTo, m.Relay, m.Port = d.String(MaxURL), d.String(MaxURL), d.String(MaxURL), d.String(MaxURL), d.String(MaxURL)
	m.URL, m.User, m.Password, m.HMAC = d.String(MaxURL), d.String(MaxSecret), d.String(MaxSecret), d.String(MaxSecret)
	m.Method, m.BodyKind, m.Body = d.String(MaxMethod), d.String(MaxMethod), d.String(MaxTemplate)
	if m.Kind >= numTargets {
		d.Fail("unknown notification target")
	}
}

// NotifyStatus: notify → parent, whenever its queue changed: what
// gotctl info reports.
type NotifyStatus struct {
	Queued uint32 // deliveries waiting in the queue
}

func (*NotifyStatus) Type() msg.Type          { return TypeNotifyStatus }
func (m *NotifyStatus) encode(e *msg.Encoder) { e.Uint32(m.Queued) }
func (m *NotifyStatus) decode(d *msg.Decoder) { m.Queued = d.Uint32() }

// Frontend: parent → sshd, gitd or httpd, at start and after a
// reload, before any Account: how to treat connections. The front-end
// uses the new settings once AccountsEnd arrives.
type Frontend struct {
	HandshakeTimeout, RequestTimeout uint32 // seconds
	BodyLimit                        uint64 // bytes of an HTTP request body
	// Default and Total are connection limits per identity and in all;
	// Names and PerName (parallel, MaxRules) are the configured ones.
	Default, Total uint32
	Names          []string // MaxUser each
	PerName        []uint32
	// PendingTotal and PendingPerAddress bound the connections not yet
	// through their handshake, in all and per remote address (per /64
	// for IPv6).
	PendingTotal, PendingPerAddress uint32
	// MinRate bytes of an answer relayed from a web process must reach
	// the client in every RateInterval seconds (0: no bound).
	MinRate      uint64
	RateInterval uint32
}

func (*Frontend) Type() msg.Type { return TypeFrontend }
func (m *Frontend) encode(e *msg.Encoder) {
	e.Uint32(m.HandshakeTimeout).Uint32(m.RequestTimeout).Uint64(m.BodyLimit)
	e.Uint32(m.Default).Uint32(m.Total).Strings(m.Names).Uint32s(m.PerName)
	e.Uint32(m.PendingTotal).Uint32(m.PendingPerAddress)
	e.Uint64(m.MinRate).Uint32(m.RateInterval)
}
func (m *Frontend) decode(d *msg.Decoder) {
	m.HandshakeTimeout, m.RequestTimeout, m.BodyLimit = d.Uint32(), d.Uint32(), d.Uint64()
	m.Default, m.Total, m.Names, m.PerName = d.Uint32(), d.Uint32(), d.Strings(MaxRules, MaxUser), d.Uint32s(MaxRules)
	m.PendingTotal, m.PendingPerAddress = d.Uint32(), d.Uint32()
	m.MinRate, m.RateInterval = d.Uint64(), d.Uint32()
	if m.MinRate > MaxMinRate || m.MinRate != 0 && m.RateInterval == 0 {
		d.Fail("bad minimum rate")
	}
	if len(m.Names) != len(m.PerName) {
		d.Fail("limits of different lengths")
	}
}

// Account: parent → sshd, httpd, after Frontend: one account and its
// credentials (public keys for SSH; a bcrypt password hash and token
// hashes for HTTP).
type Account struct {
	Name     string   // MaxUser
	Keys     []string // MaxKeys of MaxKey
	Password string   // MaxKey
	Tokens   []string // MaxKeys of MaxKey
}

func (*Account) Type() msg.Type { return TypeAccount }
func (m *Account) encode(e *msg.Encoder) {
	e.String(m.Name).Strings(m.Keys).String(m.Password).Strings(m.Tokens)
}
func (m *Account) decode(d *msg.Decoder) {
	m.Name, m.Keys, m.Password, m.Tokens = d.String(MaxUser), d.Strings(MaxKeys, MaxKey), d.String(MaxKey), d.Strings(MaxKeys, MaxKey)
}

// AccountsEnd: parent → sshd, httpd, gitd, notify: the settings are
// complete.
type AccountsEnd struct{}

func (*AccountsEnd) Type() msg.Type      { return TypeAccountsEnd }
func (*AccountsEnd) encode(*msg.Encoder) {}
func (*AccountsEnd) decode(*msg.Decoder) {}

// Kinds of Credential.
const (
	CredHostKey = iota // sshd: the host's private key
	CredTLS            // httpd: a listener's certificate chain and key
	numCreds
)

// Credential: parent → sshd or httpd, at start and after a reload,
// before Frontend: a private key, PEM-encoded, and for TLS the
// certificate chain of the listener with index Listener (the order of
// the listeners the front-end inherited).
type Credential struct {
	Kind     uint32
	Listener uint32
	Cert     []byte // MaxPEM together with Key
	Key      []byte
}

func (*Credential) Type() msg.Type { return TypeCredential }
func (m *Credential) encode(e *msg.Encoder) {
	e.Uint32(m.Kind).Uint32(m.Listener).Bytes(m.Cert).Bytes(m.Key)
}
func (m *Credential) decode(d *msg.Decoder) {
	m.Kind, m.Listener, m.Cert = d.Uint32(), d.Uint32(), d.Bytes(MaxPEM)
	m.Key = d.Bytes(MaxPEM - len(m.Cert))
	if m.Kind >= numCreds {
		d.Fail("unknown credential")
	}
}

// Descriptors a child process finds open when it starts, passed by the
// parent as it executes the child.
const (
	FDParent = 3 // the channel to the parent (every child)
	FDPeer   = 4 // session_write ⇄ repo_write channel (closed for session_read); listen: the listening socket; front-ends: the first listening socket, the others follow
	FDInput  = 5 // session_write: the client's input (session_read receives its streams, SendStreams)
	FDOutput = 6 // session_write: the client's output
)

// Inherited returns the channel the child found open at fd.
func Inherited(fd int, name string) *msg.Conn {
	return msg.FromFile(os.NewFile(uintptr(fd), name))
}

// ClientFile returns the client's stream found at fd, made
// non-blocking so that reads can have deadlines (a pipe from sshd, a
// socket from a front-end).
func ClientFile(fd int, name string) *os.File {
	unix.SetNonblock(fd, true)
	return os.NewFile(uintptr(fd), name)
}

// getBool reads a boolean: 0 or 1, nothing else.
func getBool(d *msg.Decoder) bool {
	v := d.Uint32()
	if v > 1 {
		d.Fail("bad boolean")
	}
	return v == 1
}

// MaxUpkeepGrace bounds UpkeepStart.Grace (ten years, as gotd.conf's
// bound).
const MaxUpkeepGrace = 10 * 365 * 24 * 3600

// UpkeepStart: parent → upkeep, the first and only message the parent
// sends an upkeep process: the repository to tidy, which the process
// opens before it confines itself to it.
type UpkeepStart struct {
	Path string // MaxPath, absolute
	Name string // MaxRepoName, for its log lines
	// Grace is how long unreachable objects are kept, in seconds:
	// from 1 to MaxUpkeepGrace.
	Grace uint64
	// Full asks for a full repack (gotctl upkeep); without it the run
	// repacks geometrically, and fully only if that leaves more than
	// Packs packs (at most MaxUpkeepPacks; 0: no threshold).
	Full  bool
	Packs uint32
	// LooseRefs: the references are packed when more than this many
	// are loose (at most MaxUpkeepPacks; 0: whenever one is).
	LooseRefs uint32
}

// MaxUpkeepPacks bounds UpkeepStart.Packs (as gotd.conf's bound).
const MaxUpkeepPacks = 1 << 24

func (*UpkeepStart) Type() msg.Type { return TypeUpkeepStart }
func (m *UpkeepStart) encode(e *msg.Encoder) {
	e.String(m.Path).String(m.Name).Uint64(m.Grace).Uint32(boolU32(m.Full)).Uint32(m.Packs).Uint32(m.LooseRefs)
}
func (m *UpkeepStart) decode(d *msg.Decoder) {
	m.Path, m.Name, m.Grace = d.String(MaxPath), d.String(MaxRepoName), d.Uint64()
	m.Full, m.Packs, m.LooseRefs = getBool(d), d.Uint32(), d.Uint32()
	if m.Packs > MaxUpkeepPacks {
		d.Fail("pack threshold out of range")
	}
	if m.LooseRefs > MaxUpkeepPacks {
		d.Fail("loose references threshold out of range")
	}
	if !strings.HasPrefix(m.Path, "/") {
		d.Fail("repository path not absolute")
	}
	if m.Grace == 0 || m.Grace > MaxUpkeepGrace {
		d.Fail("grace period out of range")
	}
}

// Outcomes of an upkeep run (UpkeepDone.Status).
const (
	UpkeepOK       = iota // repacked; what could go is gone
	UpkeepBusy            // another repack held the repository, or pushes kept moving references: nothing removed
	UpkeepPrecious        // extensions.preciousObjects: the repository left as it is
	UpkeepFailed          // Message says why
	numUpkeepStatus
)

// MaxUpkeepCount bounds the counts of UpkeepDone.
const MaxUpkeepCount = 1 << 40

// UpkeepDone: upkeep → parent, the last message of an upkeep process:
// what its run did.
type UpkeepDone struct {
	Status uint32
	// Objects is how many objects the new pack holds; Packs how many
	// packs were removed; Pruned how many unreachable objects were
	// removed and Young how many were kept for their grace period.
	Objects, Packs, Pruned, Young uint64
	Message                       string // MaxMessage; with UpkeepFailed
	// Refs is how many loose references were packed.
	Refs uint64
}

func (*UpkeepDone) Type() msg.Type { return TypeUpkeepDone }
func (m *UpkeepDone) encode(e *msg.Encoder) {
	e.Uint32(m.Status).Uint64(m.Objects).Uint64(m.Packs).Uint64(m.Pruned).Uint64(m.Young).String(m.Message).Uint64(m.Refs)
}
func (m *UpkeepDone) decode(d *msg.Decoder) {
	m.Status = d.Uint32()
	m.Objects, m.Packs, m.Pruned, m.Young = d.Uint64(), d.Uint64(), d.Uint64(), d.Uint64()
	m.Message = d.String(MaxMessage)
	m.Refs = d.Uint64()
	if m.Status >= numUpkeepStatus {
		d.Fail("bad upkeep status")
	}
	if m.Objects > MaxUpkeepCount || m.Packs > MaxUpkeepCount || m.Pruned > MaxUpkeepCount || m.Young > MaxUpkeepCount || m.Refs > MaxUpkeepCount {
		d.Fail("upkeep count out of range")
	}
}

// Message types of gotctl reload, numbered apart from the others.
const (
	TypeReloadPaths msg.Type = iota + 0x100
	TypeReloadFile
	TypeReloadEnd
	TypeReloadBind
	TypeReloadSocket
)

// MaxReloadFiles bounds the files one reload passes: the
// configuration, the secrets file, certificates, keys and host keys.
const MaxReloadFiles = 256

// ReloadPaths: parent → gotctl, the first answer to a reload: the
// files the daemon was started with, which gotctl opens unless its
// caller named others.
type ReloadPaths struct {
	Config  string // MaxPath
	Secrets string // MaxPath
}

func (*ReloadPaths) Type() msg.Type { return TypeReloadPaths }
func (m *ReloadPaths) encode(e *msg.Encoder) {
	e.String(m.Config).String(m.Secrets)
}
func (m *ReloadPaths) decode(d *msg.Decoder) {
	m.Config, m.Secrets = d.String(MaxPath), d.String(MaxPath)
}

// Kinds of ReloadFile.
const (
	ReloadConfig  = iota // gotd.conf
	ReloadSecrets        // gotd-secrets.conf
	ReloadOther          // a file gotd.conf names: a certificate, a key, a host key
	numReloadKinds
)

// ReloadFile: gotctl → parent, with the descriptor of a file the
// reload reads, opened by gotctl with its caller's privileges (the
// daemon's user may not read it), and the path it was opened at. At
// most MaxReloadFiles, then ReloadEnd.
type ReloadFile struct {
	Kind uint32
	Path string // MaxPath
}

func (*ReloadFile) Type() msg.Type { return TypeReloadFile }
func (m *ReloadFile) encode(e *msg.Encoder) {
	e.Uint32(m.Kind).String(m.Path)
}
func (m *ReloadFile) decode(d *msg.Decoder) {
	m.Kind, m.Path = d.Uint32(), d.String(MaxPath)
	if m.Kind >= numReloadKinds {
		d.Fail("unknown kind of file")
	}
}

// ReloadEnd: gotctl → parent, after the last ReloadFile.
type ReloadEnd struct{}

func (*ReloadEnd) Type() msg.Type        { return TypeReloadEnd }
func (*ReloadEnd) encode(*msg.Encoder)   {}
func (*ReloadEnd) decode(d *msg.Decoder) {}

// ReloadBind: parent → gotctl, a listening address of the new
// configuration that the daemon has no socket for ("host:port", as
// config.Listen.Addr makes it). gotctl binds it only if the
// configuration it read lists it, and answers with ReloadSocket.
type ReloadBind struct {
	Addr string // MaxRemote
}

func (*ReloadBind) Type() msg.Type          { return TypeReloadBind }
func (m *ReloadBind) encode(e *msg.Encoder) { e.String(m.Addr) }
func (m *ReloadBind) decode(d *msg.Decoder) { m.Addr = d.String(MaxRemote) }

// ReloadSocket: gotctl → parent, the answer to ReloadBind: the bound
// listening socket as its descriptor, or, without one, why it could
// not be bound.
type ReloadSocket struct {
	Addr  string // MaxRemote
	Error string // MaxMessage; "" when the descriptor is passed
}

func (*ReloadSocket) Type() msg.Type { return TypeReloadSocket }
func (m *ReloadSocket) encode(e *msg.Encoder) {
	e.String(m.Addr).String(m.Error)
}
func (m *ReloadSocket) decode(d *msg.Decoder) {
	m.Addr, m.Error = d.String(MaxRemote), d.String(MaxMessage)
}

// MaxStreamBytes bounds a count of bytes of a client's stream.
const MaxStreamBytes = 1 << 62

// Kinds of request, as the metrics count them (SessionStats.Kind).
const (
	KindLsRefs  = iota // no pack moved: references listed (ls-remote, an HTTP advertisement, a negotiation round)
	KindFetch          // a pack sent to a client that had objects in common with the repository
	KindClone          // a pack sent to a client that had none
	KindPush           // a receive-pack conversation
	KindArchive        // an upload-archive conversation
	NumKinds
)

// SessionStats: session_read or session_write → parent, just before
// SessionEnd: what the request was, and the bytes of the client's
// stream the session and its repo process read (In) and wrote (Out).
type SessionStats struct {
	Kind    uint32
	In, Out uint64 // MaxStreamBytes each
}

func (*SessionStats) Type() msg.Type { return TypeSessionStats }
func (m *SessionStats) encode(e *msg.Encoder) {
	e.Uint32(m.Kind).Uint64(m.In).Uint64(m.Out)
}
func (m *SessionStats) decode(d *msg.Decoder) {
	m.Kind, m.In, m.Out = d.Uint32(), d.Uint64(), d.Uint64()
	if m.Kind >= NumKinds || m.In > MaxStreamBytes || m.Out > MaxStreamBytes {
		d.Fail("bad session stats")
	}
}

// MetricsScrape: metrics → parent: a client of the metrics listener
// asks; the parent answers with Metrics of the same Seq.
type MetricsScrape struct {
	Seq uint32
}

func (*MetricsScrape) Type() msg.Type          { return TypeMetricsScrape }
func (m *MetricsScrape) encode(e *msg.Encoder) { e.Uint32(m.Seq) }
func (m *MetricsScrape) decode(d *msg.Decoder) { m.Seq = d.Uint32() }

// Sizes of the tables of Metrics. Every table has exactly its size;
// the metrics package names the rows (transports, kinds, outcomes,
// reasons, roles, bucket bounds), so no label value travels here.
const (
	MetricVias     = numVia
	MetricOutcomes = StatusRefused + 1 // indexed by Done.Status
	MetricReasons  = numReasons
	MetricBuckets  = 13 // duration buckets with a finite bound; one more counts the rest
	MetricRoles    = 12 // the roles of the parent package
)

// Metrics: parent → metrics, the answer to MetricsScrape: the parent's
// counts since it started (counters) and its state now (gauges).
type Metrics struct {
	Seq     uint32
	Serving bool   // the daemon takes new clients (not stopping)
	Start   int64  // when the daemon started, Unix nanoseconds
	Active  uint32 // clients connected now
	Queued  uint32 // notifications waiting
	// Connections[via*MetricOutcomes+status]: clients done, by source
	// and outcome.
	Connections []uint64
	// Requests[kind*MetricOutcomes+status]: requests done, by kind and
	// outcome.
	Requests []uint64
	// Refusals[reason]: clients refused, by Done.Reason.
	Refusals []uint64
	// In[via], Out[via]: bytes of the clients' streams.
	In, Out []uint64
	// Durations[kind*(MetricBuckets+1)+b]: requests served (not
	// refused) of each kind whose duration fell in bucket b (not
	// cumulative; the last bucket has no upper bound), and
	// DurationSums[kind] their total in nanoseconds.
	Durations    []uint64
	DurationSums []uint64
	// Processes[role]: the parent's children running, by role.
	Processes []uint32
}

func (*Metrics) Type() msg.Type { return TypeMetrics }
func (m *Metrics) encode(e *msg.Encoder) {
	e.Uint32(m.Seq).Uint32(boolU32(m.Serving)).Uint64(uint64(m.Start)).Uint32(m.Active).Uint32(m.Queued)
	for _, t := range [][]uint64{m.Connections, m.Requests, m.Refusals, m.In, m.Out, m.Durations, m.DurationSums} {
		e.Uint32(uint32(len(t)))
		for _, v := range t {
			e.Uint64(v)
		}
	}
	e.Uint32s(m.Processes)
}
func (m *Metrics) decode(d *msg.Decoder) {
	m.Seq, m.Serving, m.Start = d.Uint32(), getBool(d), int64(d.Uint64())
	m.Active, m.Queued = d.Uint32(), d.Uint32()
	tables := []struct {
		t    *[]uint64
		size int
	}{
		{&m.Connections, MetricVias * MetricOutcomes},
		{&m.Requests, NumKinds * MetricOutcomes},
		{&m.Refusals, MetricReasons},
		{&m.In, MetricVias},
		{&m.Out, MetricVias},
		{&m.Durations, NumKinds * (MetricBuckets + 1)},
		{&m.DurationSums, NumKinds},
	}
	for _, tb := range tables {
		if n := d.Uint32(); n != uint32(tb.size) {
			d.Fail("metrics table of the wrong size")
			return
		}
		*tb.t = make([]uint64, tb.size)
		for i := range *tb.t {
			(*tb.t)[i] = d.Uint64()
		}
	}
	if m.Processes = d.Uint32s(MetricRoles); len(m.Processes) != MetricRoles {
		d.Fail("metrics table of the wrong size")
	}
	if m.Start < 0 {
		d.Fail("bad start time")
	}
}

// Bounds of a pull mirror's sync.
const (
	// MaxMirrorRefs bounds the MirrorRef messages of one sync (the
	// remote package's default bound on an upstream's references).
	MaxMirrorRefs = 1_000_000
	// MaxMirrorURL bounds MirrorStart.URL (gotd.conf's bound).
	MaxMirrorURL = 2048
)

// MirrorStart: parent → fetch, the first and only message the parent
// sends a fetch process: the upstream of one pull mirror, what the
// transport needs to reach it, and the quarantine the pack goes to.
// Credentials are this mirror's own: no other's reach the process.
type MirrorStart struct {
	Name string // MaxRepoName, for its log lines
	Path string // MaxPath, absolute: the repository, read only
	URL  string // MaxMirrorURL, without credentials
	// Quarantine is the directory of the repository's objects
	// directory, made by the parent, where the pack is indexed (the
	// only place the process writes).
	Quarantine string // MaxPath
	// AuthUser and AuthPassword are sent to an http(s) upstream
	// (MaxSecret each; both "" for none).
	AuthUser, AuthPassword string
	// KeyFile is the SSH private key, KnownHosts a known_hosts file
	// (MaxPath each, absolute or ""), HostKeys pinned host keys in
	// authorized_keys format (MaxKeys of MaxKey).
	KeyFile, KnownHosts string
	HostKeys            []string
	// Timeout bounds the whole sync, in seconds (1 to 1<<31).
	Timeout uint32
	// MaxPackSize, MaxObjects, MaxObjectSize and MinFree bound the pack
	// as a push's are bounded (0: the protocol's defaults; MinFree 0:
	// no guard).
	MaxPackSize, MaxObjects, MaxObjectSize, MinFree uint64
	// MemoryLimit is the process's memory budget in bytes (0: none;
	// else MinMemoryLimit to MaxMemoryLimit).
	MemoryLimit uint64
	// CA is the PEM certificates an https upstream's certificate is
	// verified against instead of the system's roots (MaxCA; empty:
	// the system's).
	CA []byte
	// Namespaces are the namespaces followed, each "refs/…/" (MaxRefs;
	// empty: refs/heads/ and refs/tags/).
	Namespaces []string
}

func (*MirrorStart) Type() msg.Type { return TypeMirrorStart }
func (m *MirrorStart) encode(e *msg.Encoder) {
	e.String(m.Name).String(m.Path).String(m.URL).String(m.Quarantine)
	e.String(m.AuthUser).String(m.AuthPassword).String(m.KeyFile).String(m.KnownHosts).Strings(m.HostKeys)
	e.Uint32(m.Timeout).Uint64(m.MaxPackSize).Uint64(m.MaxObjects).Uint64(m.MaxObjectSize).Uint64(m.MinFree).Uint64(m.MemoryLimit)
	e.Bytes(m.CA).Strings(m.Namespaces)
}
func (m *MirrorStart) decode(d *msg.Decoder) {
	m.Name, m.Path, m.URL, m.Quarantine = d.String(MaxRepoName), d.String(MaxPath), d.String(MaxMirrorURL), d.String(MaxPath)
	m.AuthUser, m.AuthPassword = d.String(MaxSecret), d.String(MaxSecret)
	m.KeyFile, m.KnownHosts, m.HostKeys = d.String(MaxPath), d.String(MaxPath), d.Strings(MaxKeys, MaxKey)
	m.Timeout = d.Uint32()
	m.MaxPackSize, m.MaxObjects, m.MaxObjectSize, m.MinFree, m.MemoryLimit = d.Uint64(), d.Uint64(), d.Uint64(), d.Uint64(), d.Uint64()
	m.CA = d.Bytes(MaxCA)
	m.Namespaces = d.Strings(MaxRefs, MaxPath)
	if !mirrorNamespaces(m.Namespaces) {
		d.Fail("bad mirror namespace")
	}
	for _, p := range []string{m.Path, m.Quarantine} {
		if !strings.HasPrefix(p, "/") {
			d.Fail("path not absolute")
		}
	}
	for _, p := range []string{m.KeyFile, m.KnownHosts} {
		if p != "" && !strings.HasPrefix(p, "/") {
			d.Fail("path not absolute")
		}
	}
	if m.URL == "" || m.Timeout == 0 || m.Timeout > 1<<31 {
		d.Fail("bad mirror")
	}
	if m.MaxPackSize > 1<<62 || m.MaxObjects > 1<<32-1 || m.MaxObjectSize > 1<<62 || m.MinFree > 1<<62 {
		d.Fail("bad pack bounds")
	}
	if m.MemoryLimit != 0 && (m.MemoryLimit < MinMemoryLimit || m.MemoryLimit > MaxMemoryLimit) {
		d.Fail("bad memory limit")
	}
}

// MirrorRef: fetch → session_write (ModeMirror), one per reference the
// sync moves (at most MaxMirrorRefs), before MirrorFetched: its full
// name and its value before and after (object ids, empty for none:
// created, deleted). The receiver checks each name and old value.
type MirrorRef struct {
	Name     string // MaxPath
	Old, New []byte // MaxChecksum each
}

func (*MirrorRef) Type() msg.Type { return TypeMirrorRef }
func (m *MirrorRef) encode(e *msg.Encoder) {
	e.String(m.Name).Bytes(m.Old).Bytes(m.New)
}
func (m *MirrorRef) decode(d *msg.Decoder) {
	m.Name, m.Old, m.New = d.String(MaxPath), d.Bytes(MaxChecksum), d.Bytes(MaxChecksum)
	if len(m.Old) == 0 && len(m.New) == 0 {
		d.Fail("reference update without values")
	}
}

// MirrorFetched: fetch → session_write (ModeMirror), after the
// MirrorRefs: the pack that brings what they need, indexed in the
// quarantine (its files named as PackIndexed names them; Pack "" when
// nothing moved), and the bytes read from the upstream. A failed fetch
// sends Failed instead, whose Message is for the operator.
type MirrorFetched struct {
	PackIndexed
	Head string // MaxPath: the upstream HEAD's target, "" if unknown
}

func (*MirrorFetched) Type() msg.Type { return TypeMirrorFetched }
func (m *MirrorFetched) encode(e *msg.Encoder) {
	m.PackIndexed.encode(e)
	e.String(m.Head)
}
func (m *MirrorFetched) decode(d *msg.Decoder) {
	m.PackIndexed.decode(d)
	m.Head = d.String(MaxPath)
}
