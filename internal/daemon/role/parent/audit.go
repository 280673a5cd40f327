package parent

import (
	"encoding/hex"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"gotd/internal/daemon/admit"
	"gotd/internal/daemon/ipc"
	"gotd/internal/protocol/receive"
)

// request is the record of one client's request, the audit trail: who
// (the account, the system user of gotsh, or anonymous), through which
// transport and from where, on which repository, what the request did
// and how it ended. The parent fills it in as the request proceeds and
// hands it to requestDone once, when its outcome is known.
type request struct {
	client    uint32
	transport string // viaNames
	remote    string // "" when unknown (gotsh without SSH_CONNECTION)
	// user is the account or system user, "anonymous", or "uid N" for
	// a client of gotsh whose user auth has not named.
	user string
	// repo is the configured name, or the name the client asked for
	// when none matched.
	repo  string
	write bool
	mode  uint32 // ipc.ModeFull…
	since time.Time

	// outcome is "ok", "refused" or "failed" once the request ended;
	// reason says why it was refused or failed, for the operator.
	outcome, reason string
	// refusal is the refusal's ipc.Reason…
	refusal uint32
	// end is the session's report, nil when no session ended.
	end      *ipc.SessionEnd
	duration time.Duration
	// unproven: the client's identity is not established (anonymous,
	// or credentials not verified): its refusals are summarized, so
	// that a flood of them costs the log a few lines.
	unproven bool
	// logged: the refusal was logged where it was decided (the
	// verifier's summary, a false claim).
	logged bool
}

// newRequest starts the record of a client that connect describes.
func newRequest(id uint32, m *ipc.Connect, since time.Time) request {
	r := request{client: id, transport: viaNames[m.Via], remote: m.Remote, repo: m.Repo, mode: m.Mode, since: since}
	switch {
	case m.Via == ipc.ViaSocket:
		r.user = "uid " + strconv.FormatUint(uint64(m.UID), 10)
	case m.Account != "":
		r.user, r.unproven = m.Account, m.Secret != ""
	default:
		r.user, r.unproven = "anonymous", true
	}
	return r
}

// ended completes c's record with its outcome.
func (c *client) ended() *request {
	r := &c.rec
	r.write, r.end = c.write, c.end
	r.duration = time.Since(r.since)
	switch {
	case c.refusal != "":
		r.outcome, r.refusal = "refused", c.reason
		if r.reason == "" {
			r.reason = c.refusal
		}
	case c.failure != "":
		r.outcome, r.reason = "failed", c.failure
	case c.end == nil:
		r.outcome, r.reason = "failed", "the session ended without a report"
	case c.end.Status != ipc.StatusOK:
		r.outcome, r.reason = "failed", c.end.Error
	default:
		r.outcome = "ok"
		if e := c.end; c.write && e.Commands > 0 && e.Updated < e.Commands {
			// Every reference refused is a refusal; some of them, a
			// push that did part of what it asked.
			r.outcome = "partial"
			if e.Updated == 0 {
				r.outcome = "refused"
			}
			r.reason = firstRefusal(e.Updates)
		}
	}
	return r
}

// requestDone is where every request ends, once: its record is logged
// (at every verbosity: the audit trail), or counted in the summary of
// refusals when it is the refusal of an unproven identity.
func (d *daemon) requestDone(r *request) {
	switch {
	case r.logged:
	case r.outcome == "refused" && r.unproven && r.end == nil:
		// Anyone may send these, as fast as they like: the first is
		// logged whole, those that follow counted (admit.Summary).
		d.refused.Add("requests refused: "+reasonName(r.refusal), admit.AddressKey(addrString(r.remote)), r.attrs()...)
	case r.outcome == "ok" && r.mode == ipc.ModeAdvertise:
		// The first leg of smart HTTP: the request that follows is the
		// one that does something.
		d.log.Debug("request", r.attrs()...)
	default:
		d.audit.Info("request", r.attrs()...)
	}
}

// attrs are the record's attributes, for its log line.
func (r *request) attrs() []any {
	a := []any{"client", r.client, "user", r.user, "transport", r.transport}
	if r.remote != "" {
		a = append(a, "remote", r.remote)
	}
	a = append(a, "repo", r.repo, "action", r.action(), "outcome", r.outcome)
	if r.reason != "" {
		a = append(a, "reason", r.reason)
	}
	if e := r.end; e != nil {
		switch {
		case r.write && e.Commands > 0:
			a = append(a, "updated", e.Updated, "commands", e.Commands, "refs", updates(e))
			if e.Objects > 0 {
				a = append(a, "objects", e.Objects)
			}
		case !r.write && e.Fetches > 0:
			a = append(a, "wants", e.Wants, "haves", e.Haves, "objects", e.Objects)
		case !r.write && e.Haves > 0:
			a = append(a, "haves", e.Haves)
		}
		a = append(a, "bytes", e.Bytes)
	}
	return append(a, "duration", r.duration.Round(time.Millisecond))
}

// action names what the request did: advertise (the first leg of
// smart HTTP), ls-refs, fetch, clone (a fetch with no haves),
// negotiate (a round of haves without a pack, as stateless HTTP
// clients of versions 0 and 1 send), push, archive (git archive
// --remote), dumb-read (a file of the dumb HTTP protocol); fetch or
// push when it was
// refused or failed before doing anything.
func (r *request) action() string {
	e := r.end
	switch {
	case r.mode == ipc.ModeAdvertise:
		return "advertise"
	case r.mode == ipc.ModeArchive:
		return "archive"
	case r.mode == ipc.ModeDumb:
		return "dumb-read"
	case r.write:
		return "push"
	case e != nil && e.Fetches > 0 && e.Haves == 0:
		return "clone"
	case e != nil && e.Fetches > 0:
		return "fetch"
	case e != nil && e.Haves > 0:
		return "negotiate"
	case e != nil && e.LsRefs > 0:
		return "ls-refs"
	}
	return "fetch"
}

// moveNames are the log's words for how a reference moved.
var moveNames = map[string]string{
	receive.MovedCreated:     "created",
	receive.MovedDeleted:     "deleted",
	receive.MovedFastForward: "fast-forward",
	receive.MovedForced:      "forced",
	receive.MovedUnknown:     "moved",
	receive.MovedRebased:     "rebased",
}

// updates describes the push's references as the session listed them,
// ", " between them (reference names have no spaces): "NAME OLD->NEW
// HOW", HOW being created, fast-forward, forced, deleted or moved, or
// "refused: WHY", or rebased (onto the branch's current value, OLD being
// that value); those the session did not list are counted.
func updates(e *ipc.SessionEnd) string {
	var b strings.Builder
	for i, u := range e.Updates {
		if i > 0 {
			b.WriteString(", ")
		}
		how := moveNames[u.Move]
		switch {
		case u.Refused != "":
			how = "refused: " + u.Refused
		case how == "":
			how = "not made"
		}
		fmt.Fprintf(&b, "%s %s->%s %s", u.Name, hex.EncodeToString(u.Old), hex.EncodeToString(u.New), how)
	}
	if more := int(e.Commands) - len(e.Updates); more > 0 {
		fmt.Fprintf(&b, " and %d more", more)
	}
	return b.String()
}

// firstRefusal is the reason of the first refused update listed.
func firstRefusal(us []ipc.Update) string {
	for _, u := range us {
		if u.Refused != "" {
			return u.Refused
		}
	}
	return ""
}

// reasonName names a refusal's reason in the summary of refusals.
func reasonName(reason uint32) string {
	switch reason {
	case ipc.ReasonNoRepo:
		return "no such repository"
	case ipc.ReasonDenied:
		return "permission denied"
	case ipc.ReasonBusy:
		return "busy"
	case ipc.ReasonBadRequest:
		return "bad request"
	case ipc.ReasonUnauthenticated:
		return "authentication failed"
	case ipc.ReasonRateLimited:
		return "too many failures"
	}
	return "internal error"
}

// newRefusals is the summary of refusals of unproven identities, in
// the audit log.
func newRefusals(audit *slog.Logger) *admit.Summary {
	return &admit.Summary{Log: audit, Level: slog.LevelInfo}
}
