package parent

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"gotd/internal/daemon/config"
	"gotd/internal/daemon/ipc"
)

// testAccounts are a password account, a token-only one and an SSH-only
// one; cost is their password hash's cost.
func testAccounts(t *testing.T, cost int) *config.Config {
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), cost)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("tok"))
	token := "sha256:" + hex.EncodeToString(sum[:])
	return &config.Config{Accounts: []*config.Account{
		{Name: "alice", Password: string(hash), Tokens: []string{token}, Keys: []string{"ssh-ed25519 AAAA alice"}},
		{Name: "bot", Tokens: []string{token}},
		{Name: "carol", Keys: []string{"ssh-ed25519 AAAA carol"}},
	}}
}

// TestFrontendAccounts checks that httpd is sent no password or token
// hash, and each front-end only the accounts it may claim.
func TestFrontendAccounts(t *testing.T) {
	cfg := testAccounts(t, bcrypt.MinCost)
	for _, c := range []struct {
		via  uint32
		want string
	}{
		{ipc.ViaHTTP, "alice bot"},
		{ipc.ViaSSH, "alice carol"},
		{ipc.ViaGit, ""},
	} {
		var names []string
		for _, m := range frontendAccounts(cfg, c.via) {
			names = append(names, m.Name)
			if m.Password != "" || len(m.Tokens) > 0 {
				t.Errorf("via %d: %s sent with its hashes", c.via, m.Name)
			}
			if c.via != ipc.ViaSSH && len(m.Keys) > 0 {
				t.Errorf("via %d: %s sent with its keys", c.via, m.Name)
			}
		}
		if got := strings.Join(names, " "); got != c.want {
			t.Errorf("via %d: got %q; want %q", c.via, got, c.want)
		}
	}
}

// TestVerifyRequest checks that auth compares with a hash of the
// accounts' cost whether the account has a password, only tokens, no
// HTTP credentials at all or does not exist.
func TestVerifyRequest(t *testing.T) {
	const cost = bcrypt.MinCost + 1
	cfg := testAccounts(t, cost)
	v := &verifier{}
	for _, c := range []struct {
		account  string
		password bool
		tokens   int
	}{
		{"alice", true, 1},
		{"bot", false, 1},
		{"carol", false, 0},
		{"nobody", false, 0},
	} {
		req, err := v.request(cfg, &ipc.Connect{Account: c.account, Secret: "pw"})
		if err != nil {
			t.Fatal(err)
		}
		got, err := bcrypt.Cost([]byte(req.Hash))
		if err != nil || got != cost {
			t.Errorf("%s: hash of cost %d (%v); want %d", c.account, got, err, cost)
		}
		if req.Password != c.password || len(req.Tokens) != c.tokens || req.Secret != "pw" {
			t.Errorf("%s: got password %v, %d tokens, secret %q; want %v, %d, %q",
				c.account, req.Password, len(req.Tokens), req.Secret, c.password, c.tokens, "pw")
		}
	}
	if hashCost(&config.Config{}) != bcrypt.DefaultCost {
		t.Errorf("without passwords: cost %d; want bcrypt's default", hashCost(&config.Config{}))
	}
}

// TestClaim checks which identities each source may claim.
func TestClaim(t *testing.T) {
	cfg := testAccounts(t, bcrypt.MinCost)
	for _, c := range []struct {
		via             uint32
		account, secret string
		refused, verify bool
	}{
		{ipc.ViaSocket, "", "", false, false},
		{ipc.ViaSocket, "alice", "", true, false},
		{ipc.ViaGit, "", "", false, false},
		{ipc.ViaGit, "alice", "", true, false},
		{ipc.ViaGit, "alice", "pw", true, false},
		{ipc.ViaSSH, "alice", "", false, false},
		{ipc.ViaSSH, "carol", "", false, false},
		{ipc.ViaSSH, "bot", "", true, false}, // no key
		{ipc.ViaSSH, "nobody", "", true, false},
		{ipc.ViaSSH, "alice", "pw", true, false},
		{ipc.ViaHTTP, "", "", false, false},
		{ipc.ViaHTTP, "", "pw", true, false},
		{ipc.ViaHTTP, "alice", "pw", false, true},
		{ipc.ViaHTTP, "alice", "", false, true}, // verified, and fails
		{ipc.ViaHTTP, "nobody", "pw", false, true},
	} {
		why, verify := claim(cfg, &ipc.Connect{Via: c.via, Account: c.account, Secret: c.secret})
		if (why != "") != c.refused || verify != c.verify {
			t.Errorf("via %d, %q with %q: got refused %q, verify %v; want refused %v, verify %v",
				c.via, c.account, c.secret, why, verify, c.refused, c.verify)
		}
	}
}
