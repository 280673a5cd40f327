package parent

import (
	"crypto/sha256"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"gotd/internal/daemon/admit"
	"gotd/internal/daemon/config"
	"gotd/internal/daemon/ipc"
	"gotd/internal/daemon/msg"
)

// Bounds of the verification of HTTP credentials.
const (
	// knownTTL is how long verified credentials are remembered, so
	// that the several requests of one clone or push pay for one
	// bcrypt comparison; at most maxKnown are.
	knownTTL = 5 * time.Minute
	maxKnown = 4096
	// maxVerifyQueue bounds the clients waiting for a verifier.
	maxVerifyQueue = 256
	// failureBurst failed authentications are allowed from an address
	// (admit.AddressKey), and one more every failureRefill; beyond,
	// its clients are refused without a comparison.
	failureBurst  = 10
	failureRefill = 6 * time.Second
	maxAddresses  = 4096
)

// maxVerifying is how many auth processes verify credentials at once:
// the bcrypt work of any number of clients takes at most half the
// machine.
var maxVerifying = max(1, runtime.NumCPU()/2)

// verifier is the parent's state of HTTP authentication: the
// credentials verified lately, the failures per address, the auth
// processes verifying and the clients waiting for one.
type verifier struct {
	known    map[[32]byte]time.Time
	failures *admit.Buckets
	running  int
	queue    []uint32
	// dummy is a bcrypt hash of nothing at the cost of the accounts'
	// password hashes, compared with for accounts that have none.
	dummy     string
	dummyCost int
	refusals  *admit.Summary
}

func newVerifier(d *daemon) *verifier {
	return &verifier{
		known:    map[[32]byte]time.Time{},
		failures: admit.NewBuckets(failureBurst, failureRefill, maxAddresses),
		refusals: &admit.Summary{Log: d.log, Level: slog.LevelWarn},
	}
}

// hashCost is the cost every verification pays: that of the accounts'
// password hashes (the highest, when they differ), bcrypt's default
// when none has one.
func hashCost(cfg *config.Config) int {
	cost := 0
	for _, a := range cfg.Accounts {
		if c, err := bcrypt.Cost([]byte(a.Password)); err == nil && c > cost {
			cost = c
		}
	}
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	return cost
}

// claimed checks the identity c's source claims (claim) and has it
// verified when that is for an auth process to say. It returns false
// when c was refused or waits for the verdict.
func (d *daemon) claimed(c *client) bool {
	m := &c.connect
	why, verify := claim(d.cfg, m)
	switch {
	case verify:
		d.verify(c)
		return false
	case why == "":
		return true
	}
	// A front-end that claims what it cannot know has been taken over,
	// or is broken: said once per client, which is refused.
	d.log.Error("identity refused: the front-end claims "+why, "client", c.id, "transport", viaNames[m.Via],
		"remote", m.Remote, "account", m.Account)
	d.deny(c, ipc.ReasonDenied, "permission denied")
	return false
}

// claim checks the identity in m against what its source can
// establish: listen and gitd nothing but anonymous (listen's clients
// are their uid), sshd an account that has a key, httpd an account
// with the secret its client presented, which an auth process must
// verify (verify true). why says what is wrong with a claim refused.
func claim(cfg *config.Config, m *ipc.Connect) (why string, verify bool) {
	switch {
	case m.Account == "" && m.Secret == "":
		return "", false // anonymous, which every source may be
	case m.Via == ipc.ViaSSH && m.Secret == "":
		if a := cfg.FindAccount(m.Account); a != nil && len(a.Keys) > 0 {
			return "", false
		}
		return "an account without a key", false
	case m.Via == ipc.ViaHTTP && m.Account != "":
		return "", true
	}
	return "an account it cannot authenticate", false
}

// verify has c's credentials checked: at once when they were verified
// lately, otherwise by an auth process once one is free; c goes on
// with lookup when they prove its account.
func (d *daemon) verify(c *client) {
	v := d.verifier
	key := d.credentialsKey(&c.connect)
	if until, ok := v.known[key]; ok && time.Now().Before(until) {
		d.lookup(c)
		return
	}
	addr := admit.AddressKey(addrString(c.connect.Remote))
	if !v.failures.Allow(addr) {
		v.refusals.Add("authentication refused: too many failures", addr)
		d.deny(c, ipc.ReasonRateLimited, "too many failed authentications: try again later")
		return
	}
	if len(v.queue) >= maxVerifyQueue {
		v.refusals.Add("authentication refused: too many waiting", addr)
		d.deny(c, ipc.ReasonBusy, "too many connections to the server, try again later")
		return
	}
	// The wait for a verifier counts in auth's time: a client waits
	// at most authTimeout in all.
	c.state = stateAuth
	v.queue = append(v.queue, c.id)
	id := c.id
	time.AfterFunc(authTimeout, func() { d.events <- event{authTimeout: id} })
	d.nextVerify()
}

// nextVerify starts auth processes for the clients waiting, up to
// maxVerifying at once.
func (d *daemon) nextVerify() {
	v := d.verifier
	for v.running < maxVerifying && len(v.queue) > 0 {
		c := d.clients[v.queue[0]]
		v.queue = v.queue[1:]
		if c == nil || c.state != stateAuth || c.auth != nil {
			continue // gone while waiting
		}
		if err := d.startVerify(c); err != nil {
			d.log.Error("cannot start auth", "client", c.id, "err", err)
			d.refuse(c, ipc.ReasonInternal, "internal server error", err.Error())
		}
	}
}

// startVerify sends c's credentials to a new auth process.
func (d *daemon) startVerify(c *client) error {
	v := d.verifier
	req, err := v.request(d.cfg, &c.connect)
	if err != nil {
		return err
	}
	auth, err := d.spawn(RoleAuth, c.id, nil)
	if err != nil {
		return err
	}
	c.auth, c.verifying = auth, true
	v.running++
	d.log.Debug("verifying", "client", c.id, "running", v.running, "waiting", len(v.queue))
	if err := ipc.Send(auth.ch, req, nil); err != nil {
		return fmt.Errorf("parent: %w", err)
	}
	return nil
}

// request is what auth is sent to verify m's secret: the account's
// password hash, or a hash of nothing at the same cost for an account
// without a password or no account at all, and its tokens.
func (v *verifier) request(cfg *config.Config, m *ipc.Connect) (*ipc.Verify, error) {
	if cost := hashCost(cfg); v.dummy == "" || v.dummyCost != cost {
		// Made once per cost, in the parent: an auth process making it
		// would pay for two hashes.
		h, err := bcrypt.GenerateFromPassword(nil, cost)
		if err != nil {
			return nil, fmt.Errorf("parent: %w", err)
		}
		v.dummy, v.dummyCost = string(h), cost
	}
	req := &ipc.Verify{Secret: m.Secret, Hash: v.dummy}
	if a := cfg.FindAccount(m.Account); a != nil {
		req.Tokens = a.Tokens
		if a.Password != "" {
			req.Hash, req.Password = a.Password, true
		}
	}
	return req, nil
}

// verifyDone frees c's verifier's place for the next client; called
// once its answer has come or it has exited.
func (d *daemon) verifyDone(c *client) {
	if !c.verifying {
		return
	}
	c.verifying = false
	d.verifier.running--
	d.nextVerify()
}

// verdict goes on with c if its credentials prove its account.
func (d *daemon) verdict(c *client, raw msg.Msg) error {
	if c.state != stateAuth || !c.verifying {
		return fmt.Errorf("verdict out of turn")
	}
	var m ipc.Verdict
	if _, err := ipc.Check(raw, &m, false); err != nil {
		return err
	}
	c.auth.kill() // its work is done
	d.verifyDone(c)
	v := d.verifier
	if !m.OK {
		addr := admit.AddressKey(addrString(c.connect.Remote))
		v.failures.Take(addr)
		v.refusals.Add("authentication failed", addr, "account", c.connect.Account)
		d.deny(c, ipc.ReasonUnauthenticated, "authentication failed")
		return nil
	}
	if len(v.known) >= maxKnown {
		clear(v.known)
	}
	v.known[d.credentialsKey(&c.connect)] = time.Now().Add(knownTTL)
	d.lookup(c)
	return nil
}

// credentialsKey names an account's credentials as a client presented
// them and as the configuration has them: a verdict is reused only for
// the same secret and the same hashes.
func (d *daemon) credentialsKey(m *ipc.Connect) [32]byte {
	var hashes string
	if a := d.cfg.FindAccount(m.Account); a != nil {
		hashes = a.Password + "\x00" + strings.Join(a.Tokens, " ")
	}
	return sha256.Sum256([]byte(m.Account + "\x00" + m.Secret + "\x00" + hashes))
}

// deny refuses c before any Git data, logged by the caller.
func (d *daemon) deny(c *client, reason uint32, clientMsg string) {
	if c.refusal == "" {
		c.refusal, c.reason = clientMsg, reason
		c.rec.logged = true
	}
	d.fail(c, "")
	d.maybeDone(c)
}

// addrString is a net.Addr of "host:port".
type addrString string

func (a addrString) Network() string { return "tcp" }
func (a addrString) String() string  { return string(a) }
