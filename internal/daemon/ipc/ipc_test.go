package ipc

import (
	"gotd/internal/policy"
	"reflect"
	"testing"

	"gotd/internal/daemon/msg"
)

// messages has one value of every type, fields set.
func messages() []Message {
	return []Message{
		&Hello{Service: "git-upload-pack", Repo: "project.git", Protocol: "version=2"},
		&Stream{Client: 7, Output: true},
		&Control{Command: "info"},
		&Done{Status: StatusRefused, Reason: ReasonNoRepo, Message: "no such repository"},
		&Text{Text: "gotd PID: 1\n"},
		&Connect{Client: 9, UID: 1000, GID: 1000, PID: 42, Via: ViaHTTP, Mode: ModeStateless, Account: "flan", Secret: "hunter2", Remote: "127.0.0.1:5000",
			Hello: Hello{Service: "git-receive-pack", Repo: "r"}},
		&ControlConnect{Client: 1, UID: 0, Control: Control{Command: "stop"}},
		&Disconnect{Client: 3},
		&Held{Client: ClientID(ViaSocket, func(uint32) bool { return false }), UID: 1000},
		&Halt{},
		&Limits{Default: 4, Total: 1024, PendingTotal: 256, PendingPerUser: 32, UIDs: []uint32{1000}, PerUID: []uint32{16}, Control: []uint32{0}, ControlGIDs: []uint32{10}},
		&AuthRequest{UID: 1000, GID: 100, Repo: "r", Groups: true, Rules: []Rule{{Write: true, Ident: "alice"}, {Deny: true, Ident: ":staff"}}},
		&Verify{Secret: "hunter2", Hash: "$2a$10$abc", Password: true, Tokens: []string{"sha256:00"}},
		&Verdict{OK: true},
		&AuthResult{Access: 3, User: "alice", Groups: []string{"wheel", "dev"}, GIDs: []uint32{0, 1001}},
		&Start{Client: 5, Repo: "r", Path: "/git/r.git", Protocol: "version=2", User: "alice", Timeout: 3600, Mode: ModeAdvertise,
			Quarantine: "/git/r.git/objects/incoming-1", Branches: []string{"refs/heads/main"}, BranchNamespaces: []string{}, TagNamespaces: []string{"refs/tags/"},
			Notify: true, NotifyBranches: []string{"refs/heads/main"}, NotifyNamespaces: []string{}, Hidden: []string{"refs/internal/"},
			Push: policy.Push{Refs: []policy.RefRule{{Deny: true, Namespace: "refs/tags/"}, {Delete: true, Namespace: "refs/heads/"}},
				MaxBlobSize: 10 << 20, DenyBinary: true, NoMerges: []string{"refs/heads/main"}},
			MaxPackSize: 1 << 30, MaxObjects: 100000, MinFree: 1 << 30, MaxObjectSize: 300 << 20, MemoryLimit: 256 << 20,
			Deadline: 1796000000123456789, MinRate: 1024, RateInterval: 30},
		&Failed{Message: "pack is truncated"},
		&RecvPack{},
		&Progress{Stage: "resolving deltas", Done: 1, Total: 2},
		&PackIndexed{Pack: "/q/p.pack", Index: "/q/p.idx", Rev: "/q/p.rev", Count: 3, Checksum: make([]byte, 20)},
		&SessionEnd{Status: StatusOK},
		&Notification{Repo: "r", User: "alice", Note: []byte(`{"ref":{}}`)},
		&Frontend{HandshakeTimeout: 30, RequestTimeout: 3600, BodyLimit: 1 << 30, Default: 4, Total: 1024, PendingTotal: 512, PendingPerAddress: 32,
			Names: []string{"anonymous"}, PerName: []uint32{64}},
		&Account{Name: "flan", Keys: []string{"ssh-ed25519 AAAA flan@host"}, Password: "$2b$10$x", Tokens: []string{"sha256:00"}},
		&AccountsEnd{},
		&Credential{Kind: CredTLS, Listener: 1, Cert: []byte("cert"), Key: []byte("key")},
		&PushNote{Note: []byte(`{"ref":{}}`)},
		&NotifySettings{Spool: "/var/db/gotd/notify", Host: "git.example.com", Timeout: 60},
		&NotifyRepo{Name: "r", Branches: []string{"refs/heads/main"}, Namespaces: []string{"refs/tags/"}},
		&NotifyTarget{Repo: "r", Kind: TargetURL, From: "f", To: "t", ReplyTo: "rt", Relay: "mx", Port: "25",
			URL: "https://h/p", User: "u", Password: "p", HMAC: "k"},
		&NotifyStatus{Queued: 3},
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
