package parent

import (
	"time"

	"gotd/internal/daemon/admit"
	"gotd/internal/daemon/ipc"
)

// Requests of anonymous network clients that fail as no well-behaved
// client's do (over their bounds, malformed, too slow: SessionEnd.Abuse)
// spend tokens of their address (admit.AddressKey). Each such request
// costs a session process (its start, its reading of what it refuses),
// and a client that sends them one after another, each refused at once,
// keeps that many processes busy however cheap each refusal is: under
// "load held" four connections flooding ls-refs requests over their
// bound took 0.7 of the machine's two cores (issue 18). Past failedBurst failures, and
// one more every failedRefill, the address's requests are refused
// before a process is started. Wants of what the repository does not
// offer (a hidden reference, a branch a push just moved) and failures
// of the server itself cost nothing: a TestHiddenRefs clone was refused
// after ten such wants when they counted.
const (
	failedBurst  = 10
	failedRefill = 2 * time.Second
	// failedMessage is what a client refused so is told.
	failedMessage = "too many failed requests from this address: try again later"
)

// failedBuckets returns the buckets of failed requests, made at first
// use.
func (d *daemon) failedBuckets() *admit.Buckets {
	if d.failed == nil {
		d.failed = admit.NewBuckets(failedBurst, failedRefill, maxAddresses)
	}
	return d.failed
}

// tooManyFailed refuses c, and returns true, when it is an anonymous
// network client whose address has no failure left.
func (d *daemon) tooManyFailed(c *client) bool {
	key, ok := failedKey(c)
	if !ok || d.failedBuckets().Allow(key) {
		return false
	}
	d.refuse(c, ipc.ReasonRateLimited, failedMessage, "too many failed requests")
	return true
}

// noteFailed spends a token of c's address when c is an anonymous
// network client whose session ended failed as no well-behaved
// client's does (SessionEnd.Abuse): over the request's bounds,
// malformed or too slow, not a want of a hidden reference or the
// server's own fault.
func (d *daemon) noteFailed(c *client, end *ipc.SessionEnd) {
	if key, ok := failedKey(c); ok && end.Status == ipc.StatusFailed && end.Abuse {
		d.failedBuckets().Take(key)
	}
}

// failedKey returns the bucket key of c's address, and false when c is
// not an anonymous network client (whose failures are not counted).
func failedKey(c *client) (string, bool) {
	if !c.rec.unproven || c.connect.Via == ipc.ViaSocket {
		return "", false
	}
	return admit.AddressKey(addrString(c.connect.Remote)), true
}
