package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"gotd/internal/daemon/ipc"
)

func TestVerify(t *testing.T) {
	const cost = bcrypt.MinCost + 1
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), cost)
	dummy, _ := bcrypt.GenerateFromPassword(nil, cost)
	sum := sha256.Sum256([]byte("tok"))
	token := "sha256:" + hex.EncodeToString(sum[:])
	// What the parent sends for each kind of account.
	password := ipc.Verify{Hash: string(hash), Password: true}
	both := ipc.Verify{Hash: string(hash), Password: true, Tokens: []string{token}}
	tokenOnly := ipc.Verify{Hash: string(dummy), Tokens: []string{token}}
	unknown := ipc.Verify{Hash: string(dummy)}
	for _, c := range []struct {
		name   string
		v      ipc.Verify
		secret string
		want   bool
	}{
		{"password", password, "pw", true},
		{"password, wrong", password, "PW", false},
		{"password, token given", password, "tok", false},
		{"both, password", both, "pw", true},
		{"both, token", both, "tok", true},
		{"both, empty", both, "", false},
		{"token only", tokenOnly, "tok", true},
		{"token only, wrong", tokenOnly, "tok ", false},
		// The dummy hash is of nothing: it must not let an empty
		// password in.
		{"token only, empty", tokenOnly, "", false},
		{"unknown", unknown, "pw", false},
		{"unknown, empty", unknown, "", false},
	} {
		c.v.Secret = c.secret
		before := hashes.Load()
		if got := Verify(&c.v); got != c.want {
			t.Errorf("%s: Verify(%q) = %v; want %v", c.name, c.secret, got, c.want)
		}
		// One bcrypt comparison, at the cost of the hash given, on
		// every path: what tells the paths apart is not their time.
		if n := hashes.Load() - before; n != 1 {
			t.Errorf("%s: %d bcrypt comparisons; want 1", c.name, n)
		}
		if got, _ := bcrypt.Cost([]byte(c.v.Hash)); got != cost {
			t.Errorf("%s: hash of cost %d; want %d", c.name, got, cost)
		}
	}
}
