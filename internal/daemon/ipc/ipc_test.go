package ipc

import (
	"bytes"
	"gotd/internal/policy"
	"reflect"
	"strings"
	"testing"

	"gotd/internal/daemon/msg"
)

// messages has one value of every type, fields set.
func messages() []Message {
	return []Message{
		&Hello{Service: "git-upload-pack", Repo: "project.git", Protocol: "version=2", SSHRemote: "[2001:db8::1]:50000"},
		&Stream{Client: 7, Output: true},
		&Control{Command: "info"},
		&Done{Status: StatusRefused, Reason: ReasonNoRepo, Message: "no such repository"},
		&Text{Text: "gotd PID: 1\n"},
		&Connect{Client: 9, UID: 1000, GID: 1000, PID: 42, Via: ViaHTTP, Mode: ModeStateless, Account: "flan", Secret: "hunter2", Remote: "127.0.0.1:5000",
			Hello: Hello{Service: "git-receive-pack", Repo: "r"}},
		&ControlConnect{Client: 1, UID: 0, Control: Control{Command: "upkeep", Repo: "project.git"}},
		&Disconnect{Client: 3},
		&Held{Client: ClientID(ViaSocket, func(uint32) bool { return false }), UID: 1000},
		&Halt{},
		&Ready{},
		&Limits{Default: 4, Total: 1024, PendingTotal: 256, PendingPerUser: 32, UIDs: []uint32{1000}, PerUID: []uint32{16}, Control: []uint32{0}, ControlGIDs: []uint32{10}},
		&AuthRequest{UID: 1000, GID: 100, Repo: "r", Groups: true, Rules: []Rule{{Write: true, Ident: "alice"}, {Deny: true, Ident: ":staff"}}},
		&Verify{Secret: "hunter2", Hash: "$2a$10$abc", Password: true, Tokens: []string{"sha256:00"}},
		&Verdict{OK: true},
		&AuthResult{Access: 3, User: "alice", Groups: []string{"wheel", "dev"}, GIDs: []uint32{0, 1001}},
		&Start{Client: 5, Repo: "r", Path: "/git/r.git", Protocol: "version=2", User: "alice", Timeout: 3600, Mode: ModeAdvertise,
			Quarantine: "/git/r.git/objects/incoming-1", Branches: []string{"refs/heads/main"}, BranchNamespaces: []string{}, TagNamespaces: []string{"refs/tags/"},
			Notify: true, NotifyBranches: []string{"refs/heads/main"}, NotifyNamespaces: []string{}, Hidden: []string{"refs/internal/"},
			Push: policy.Push{Refs: []policy.RefRule{{Deny: true, Namespace: "refs/tags/"}, {Delete: true, Namespace: "refs/heads/"}},
				MaxBlobSize: 10 << 20, DenyBinary: true, NoMerges: []string{"refs/heads/main"}, Rebase: []string{"refs/heads/team/"}, MaxRebase: 7},
			MaxPackSize: 1 << 30, MaxObjects: 100000, MinFree: 1 << 30, MaxObjectSize: 300 << 20, MemoryLimit: 256 << 20,
			Deadline: 1796000000123456789, MinRate: 1024, RateInterval: 30, MirrorNamespaces: []string{"refs/notes/"}},
		&Failed{Message: "pack is truncated", Bytes: 100},
		&MirrorStart{Name: "r", Path: "/git/r.git", URL: "https://example.org/r.git", Quarantine: "/git/r.git/objects/incoming-2",
			AuthUser: "u", AuthPassword: "p", KeyFile: "/k/id", KnownHosts: "/k/known", HostKeys: []string{"ssh-ed25519 AAAA"},
			Timeout: 3600, MaxPackSize: 1 << 30, MaxObjects: 9, MaxObjectSize: 1 << 20, MinFree: 1 << 20, MemoryLimit: 256 << 20, CA: []byte("-----BEGIN CERTIFICATE"), Namespaces: []string{"refs/heads/", "refs/notes/"}},
		&MirrorRef{Name: "refs/heads/main", Old: make([]byte, 20), New: bytes.Repeat([]byte{1}, 20)},
		&MirrorFetched{PackIndexed: PackIndexed{Pack: "/q/p.pack", Index: "/q/p.idx", Count: 3, Checksum: make([]byte, 20)}, Head: "refs/heads/main"},
		&RecvPack{},
		&Progress{Stage: "resolving deltas", Done: 1, Total: 2},
		&PackIndexed{Pack: "/q/p.pack", Index: "/q/p.idx", Rev: "/q/p.rev", Count: 3, Checksum: make([]byte, 20), Bytes: 4096},
		&SessionEnd{Status: StatusFailed, Error: "pack is truncated", Abuse: true, LsRefs: 1, Fetches: 1, Wants: 2, Haves: 3, Objects: 4, Bytes: 5,
			Commands: 12, Updated: 1, Updates: []Update{
				{Name: "refs/heads/main", Old: make([]byte, 20), New: bytes.Repeat([]byte{1}, 20), Move: "created"},
				{Name: "refs/heads/x", Old: bytes.Repeat([]byte{2}, 32), New: make([]byte, 32), Refused: "deletion prohibited"}}},
		&Notification{Repo: "r", User: "alice", Note: []byte(`{"ref":{}}`)},
		&Frontend{HandshakeTimeout: 30, RequestTimeout: 3600, BodyLimit: 1 << 30, Default: 4, Total: 1024, PendingTotal: 512, PendingPerAddress: 32,
			MinRate: 1024, RateInterval: 30,
			Names: []string{"anonymous"}, PerName: []uint32{64}},
		&Account{Name: "flan", Keys: []string{"ssh-ed25519 AAAA flan@host"}, Password: "$2b$10$x", Tokens: []string{"sha256:00"}},
		&AccountsEnd{},
		&Credential{Kind: CredTLS, Listener: 1, Cert: []byte("cert"), Key: []byte("key")},
		&PushNote{Note: []byte(`{"ref":{}}`)},
		&NotifySettings{Spool: "/var/db/gotd/notify", Host: "git.example.com", Timeout: 60},
		&NotifyRepo{Name: "r", Branches: []string{"refs/heads/main"}, Namespaces: []string{"refs/tags/"}},
		&NotifyTarget{Repo: "r", Kind: TargetURL, From: "f", To: "t", ReplyTo: "rt", Relay: "mx", Port: "25",
			URL: "https://h/p", User: "u", Password: "p", HMAC: "k", Method: "PUT", BodyKind: "json", Body: `{"ref": ${ref}}`},
		&NotifyStatus{Queued: 3},
		&ReloadPaths{Config: "/etc/gotd.conf", Secrets: "/etc/gotd-secrets.conf"},
		&ReloadFile{Kind: ReloadOther, Path: "/etc/ssl/git.pem"},
		&ReloadEnd{},
		&ReloadBind{Addr: "127.0.0.1:9419"},
		&ReloadSocket{Addr: "127.0.0.1:9419", Error: "address already in use"},
		&SessionStats{Kind: KindClone, In: 300, Out: 1 << 30},
		&MetricsScrape{Seq: 7},
		testMetrics(),
		&UpkeepStart{Path: "/git/r.git", Name: "r", Grace: 14 * 24 * 3600, Full: true, Packs: 16, LooseRefs: 50},
		&UpkeepDone{Status: UpkeepFailed, Objects: 300, Packs: 12, Pruned: 2, Young: 1, Message: "upkeep: write pack: no space left on device", Refs: 70},
		&WebStart{Account: "flan", Timeout: 30, MemoryLimit: 256 << 20, Repos: 2,
			Transports: []WebTransport{{Scheme: "ssh", Port: 2222, User: "flan"}, {Scheme: "https", Host: "::1", Port: 443}},
			MinRate:    1024, RateInterval: 30},
		&WebRepo{Name: "r", Path: "/git/r.git", Description: "a <b>repository</b>", Hidden: []string{"refs/internal/"}},
		&WebRequest{Client: 9},
		&SendStart{Path: "/git/r.git", Name: "r", URL: "ssh://git@h/r.git", AuthUser: "u", AuthPassword: "p", Key: []byte("-----BEGIN"),
			KnownHosts: "/etc/gotd/known_hosts", HostKeys: []string{"ssh-ed25519 AAAA"}, All: true, NoLease: true, Timeout: 3600, CA: []byte("-----BEGIN CERTIFICATE")},
		&SendRefs{Refs: []SendRef{{Name: "refs/heads/main", ID: make([]byte, 20), Queued: true}, {Name: "refs/tags/v1", ID: []byte{}, Status: "the target moved it"}}},
		&SendGo{},
		&SendDone{Status: SendFailed, Message: "remote: connection refused"},
	}
}

// testMetrics is a Metrics message with every table of its size and
// distinct values.
func testMetrics() *Metrics {
	m := &Metrics{Seq: 7, Serving: true, Start: 1796000000123456789, Active: 3, Queued: 2}
	n := uint64(1)
	fill := func(size int) []uint64 {
		t := make([]uint64, size)
		for i := range t {
			t[i], n = n, n+1
		}
		return t
	}
	m.Connections, m.Requests, m.Refusals = fill(MetricVias*MetricOutcomes), fill(NumKinds*MetricOutcomes), fill(MetricReasons)
	m.In, m.Out = fill(MetricVias), fill(MetricVias)
	m.Durations, m.DurationSums = fill(NumKinds*(MetricBuckets+1)), fill(NumKinds)
	for range MetricRoles {
		m.Processes = append(m.Processes, uint32(n))
		n++
	}
	return m
}

// TestMetricsBounds checks that tables of another size, unknown kinds
// and byte counts out of bounds are refused on receipt.
func TestMetricsBounds(t *testing.T) {
	bad := map[string]Message{
		"short table":       func() Message { m := testMetrics(); m.Refusals = m.Refusals[1:]; return m }(),
		"long table":        func() Message { m := testMetrics(); m.Durations = append(m.Durations, 1); return m }(),
		"missing role":      func() Message { m := testMetrics(); m.Processes = m.Processes[1:]; return m }(),
		"negative start":    func() Message { m := testMetrics(); m.Start = -1; return m }(),
		"unknown kind":      &SessionStats{Kind: NumKinds},
		"too many bytes":    &SessionStats{Kind: KindPush, In: MaxStreamBytes + 1},
		"failed bytes":      &Failed{Bytes: 1 << 63},
		"indexed bytes":     &PackIndexed{Bytes: 1 << 63},
		"upkeep path":       &UpkeepStart{Path: "r.git", Grace: 1},
		"no grace":          &UpkeepStart{Path: "/r.git"},
		"long grace":        &UpkeepStart{Path: "/r.git", Grace: MaxUpkeepGrace + 1},
		"upkeep packs":      &UpkeepStart{Path: "/r.git", Grace: 1, Packs: MaxUpkeepPacks + 1},
		"upkeep refs":       &UpkeepStart{Path: "/r.git", Grace: 1, LooseRefs: MaxUpkeepPacks + 1},
		"upkeep refs count": &UpkeepDone{Refs: MaxUpkeepCount + 1},
		"upkeep status":     &UpkeepDone{Status: 4},
		"upkeep count":      &UpkeepDone{Pruned: MaxUpkeepCount + 1},
		"web timeout":       &WebStart{Repos: 1},
		"web repos":         &WebStart{Timeout: 1, Repos: MaxWebRepos + 1},
		"web scheme":        &WebStart{Timeout: 1, Transports: []WebTransport{{Scheme: "file", Port: 1}}},
		"web port":          &WebStart{Timeout: 1, Transports: []WebTransport{{Scheme: "git", Port: 65536}}},
		"web host":          &WebStart{Timeout: 1, Transports: []WebTransport{{Scheme: "git", Host: "a/b", Port: 1}}},
		"web path":          &WebRepo{Name: "r", Path: "r.git"},
		"web hidden":        &WebRepo{Name: "r", Path: "/r.git", Hidden: []string{"refs/x"}},
		"send path":         &SendStart{Path: "r.git", URL: "git://h/r", Timeout: 1},
		"send no URL":       &SendStart{Path: "/r.git", Timeout: 1},
		"send timeout":      &SendStart{Path: "/r.git", URL: "git://h/r", Timeout: MaxSendTimeout + 1},
		"send known":        &SendStart{Path: "/r.git", URL: "git://h/r", KnownHosts: "kh", Timeout: 1},
		"send ref name":     &SendRefs{Refs: []SendRef{{Name: "HEAD"}}},
		"send ref id":       &SendRefs{Refs: []SendRef{{Name: "refs/heads/a", ID: make([]byte, 19)}}},
		"send status":       &SendDone{Status: 2},
		"web rate":          &WebStart{Timeout: 1, MinRate: 1024},
		"mirror namespace":  &MirrorStart{Path: "/r.git", Quarantine: "/r.git/objects/q", URL: "git://h/r", Timeout: 1, Namespaces: []string{"refs/notes"}},
		"start namespace":   &Start{Path: "/r.git", MirrorNamespaces: []string{"heads/"}},
	}
	for name, m := range bad {
		var e msg.Encoder
		m.encode(&e)
		got := reflect.New(reflect.TypeOf(m).Elem()).Interface().(Message)
		if err := Decode(msg.Msg{Type: m.Type(), Data: e.Data()}, got); err == nil {
			t.Errorf("%s: got no error, want one", name)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	seen := map[msg.Type]bool{}
	for _, m := range messages() {
		if seen[m.Type()] {
			t.Errorf("type %d used twice", m.Type())
		}
		seen[m.Type()] = true
		var e msg.Encoder
		m.encode(&e)
		got := reflect.New(reflect.TypeOf(m).Elem()).Interface().(Message)
		if err := Decode(msg.Msg{Type: m.Type(), Data: e.Data()}, got); err != nil {
			t.Fatalf("%T: %v", m, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("%T: got %+v, want %+v", m, got, m)
		}
		// Every byte counts: shorter and longer payloads are refused.
		if d := e.Data(); len(d) > 0 {
			if err := Decode(msg.Msg{Type: m.Type(), Data: d[:len(d)-1]}, got); err == nil {
				t.Errorf("%T: truncated payload accepted", m)
			}
		}
		if err := Decode(msg.Msg{Type: m.Type(), Data: append(e.Data(), 0)}, got); err == nil {
			t.Errorf("%T: trailing byte accepted", m)
		}
	}
	if err := Decode(msg.Msg{Type: TypeHello}, &Done{}); err == nil {
		t.Error("message of another type accepted")
	}
}

// TestStartMemoryLimit checks that a memory budget out of its bounds
// is refused on receipt.
func TestStartMemoryLimit(t *testing.T) {
	for limit, ok := range map[uint64]bool{0: true, MinMemoryLimit: true, 256 << 20: true, MaxMemoryLimit: true,
		1: false, MinMemoryLimit - 1: false, MaxMemoryLimit + 1: false} {
		var e msg.Encoder
		(&Start{Path: "/r", MemoryLimit: limit}).encode(&e)
		if err := Decode(msg.Msg{Type: TypeStart, Data: e.Data()}, &Start{}); (err == nil) != ok {
			t.Errorf("memory limit %d: %v", limit, err)
		}
	}
}

// TestModeMirrorParentOnly: no client's Connect may carry ModeMirror,
// which only the parent gives session_write.
func TestModeMirrorParentOnly(t *testing.T) {
	for _, tc := range []struct {
		mode uint32
		ok   bool
	}{{ModeFull, true}, {ModeStateless, true}, {ModeMirror, false}, {numModes, false}} {
		var e msg.Encoder
		(&Connect{Via: ViaGit, Mode: tc.mode}).encode(&e)
		if err := Decode(msg.Msg{Type: TypeConnect, Data: e.Data()}, &Connect{}); (err == nil) != tc.ok {
			t.Errorf("Connect with mode %d: got %v; want ok %v", tc.mode, err, tc.ok)
		}
	}
	var e msg.Encoder
	(&Start{Path: "/r", Mode: ModeMirror}).encode(&e)
	if err := Decode(msg.Msg{Type: TypeStart, Data: e.Data()}, &Start{}); err != nil {
		t.Errorf("Start with ModeMirror: %v", err)
	}
}

// FuzzDecode feeds arbitrary payloads to every message type: gotsh and
// gotctl's messages reach listen from any local user.
func FuzzDecode(f *testing.F) {
	for _, m := range messages() {
		var e msg.Encoder
		m.encode(&e)
		f.Add(uint16(m.Type()), e.Data())
	}
	f.Fuzz(func(t *testing.T, typ uint16, data []byte) {
		for _, m := range messages() {
			if msg.Type(typ) != m.Type() {
				continue
			}
			got := reflect.New(reflect.TypeOf(m).Elem()).Interface().(Message)
			if Decode(msg.Msg{Type: m.Type(), Data: data}, got) != nil {
				return
			}
			// What decodes encodes back to the same bytes.
			var e msg.Encoder
			got.encode(&e)
			if string(e.Data()) != string(data) {
				t.Fatalf("%T: re-encoding differs", m)
			}
		}
	})
}

// TestSSHRemote checks the client address gotsh reads from
// SSH_CONNECTION and its check on receipt (issue 20: OpenSSH users were
// logged with remote="").
func TestSSHRemote(t *testing.T) {
	for _, tc := range []struct{ env, want string }{
		{"192.0.2.7 50123 127.0.0.1 22", "192.0.2.7:50123"},
		{"2001:db8::1 50123 2001:db8::2 22", "[2001:db8::1]:50123"},
		{"fe80::1%eth0 2222 fe80::2%eth0 22", "[fe80::1%eth0]:2222"},
		{"", ""},
		{"192.0.2.7 50123 127.0.0.1", ""},
		{"192.0.2.7  50123 127.0.0.1 22", ""},
		{"192.0.2.7 0 127.0.0.1 22", ""},
		{"192.0.2.7 65536 127.0.0.1 22", ""},
		{"192.0.2.7 -1 127.0.0.1 22", ""},
		{"host.example 50123 127.0.0.1 22", ""},
		{"192.0.2.7\n 50123 127.0.0.1 22", ""},
		{"1.2.3.4 5 " + strings.Repeat("6", 300) + " 22", ""},
	} {
		if got := SSHConnectionRemote(tc.env); got != tc.want {
			t.Errorf("SSHConnectionRemote(%q) = %q; want %q", tc.env, got, tc.want)
		}
	}
	for remote, ok := range map[string]bool{"": true, "192.0.2.7:50123": true, "[2001:db8::1]:22": true,
		"192.0.2.7": false, "192.0.2.7:x": false, "[::ffff:1.2.3.4]:1": true, "::1:22": false, "1.2.3.4:22 ": false,
		"\x1b[31m:22": false, "[2001:db8:0::1]:22": false} {
		var e msg.Encoder
		(&Hello{Service: "git-upload-pack", Repo: "r", SSHRemote: remote}).encode(&e)
		if err := Decode(msg.Msg{Type: TypeHello, Data: e.Data()}, &Hello{}); (err == nil) != ok {
			t.Errorf("Hello with remote %q: got %v; want accepted %v", remote, err, ok)
		}
	}
}

// TestSessionEndBounds checks that a session's report is refused on
// receipt when its updates are out of their bounds.
func TestSessionEndBounds(t *testing.T) {
	id := make([]byte, 20)
	many := make([]Update, MaxUpdates+1)
	for i := range many {
		many[i] = Update{Name: "refs/heads/b", Old: id, New: id}
	}
	for _, tc := range []struct {
		name string
		m    SessionEnd
		ok   bool
	}{
		{"none", SessionEnd{}, true},
		{"listed", SessionEnd{Commands: 11, Updated: 11, Updates: many[:MaxUpdates]}, true},
		{"too many", SessionEnd{Commands: 11, Updated: 11, Updates: many}, false},
		{"more listed than sent", SessionEnd{Commands: 1, Updated: 1, Updates: many[:2]}, false},
		{"more updated than sent", SessionEnd{Commands: 1, Updated: 2}, false},
		{"not a reference", SessionEnd{Commands: 1, Updates: []Update{{Name: "HEAD", Old: id, New: id}}}, false},
		{"ids of two formats", SessionEnd{Commands: 1, Updates: []Update{{Name: "refs/heads/b", Old: id, New: make([]byte, 32)}}}, false},
		{"short id", SessionEnd{Commands: 1, Updates: []Update{{Name: "refs/heads/b", Old: id[:4], New: id[:4]}}}, false},
		{"bad status", SessionEnd{Status: StatusRefused}, false},
	} {
		var e msg.Encoder
		tc.m.encode(&e)
		if err := Decode(msg.Msg{Type: TypeSessionEnd, Data: e.Data()}, &SessionEnd{}); (err == nil) != tc.ok {
			t.Errorf("%s: got %v; want accepted %v", tc.name, err, tc.ok)
		}
	}
}
