package metrics

import (
	"time"

	"gotd/internal/daemon/ipc"
)

// Label values of the metrics: fixed tables indexed as the Metrics
// message's tables are, never anything a client sent.
var (
	// transports, by ipc.Via…: a client of gotsh came through OpenSSH.
	transports = [ipc.MetricVias]string{ipc.ViaSocket: "gotsh", ipc.ViaSSH: "ssh", ipc.ViaGit: "git", ipc.ViaHTTP: "http"}
	// outcomes, by ipc.Done status.
	outcomes = [ipc.MetricOutcomes]string{ipc.StatusOK: "ok", ipc.StatusFailed: "failed", ipc.StatusRefused: "refused"}
	// kinds, by ipc.Kind….
	kinds = [ipc.NumKinds]string{ipc.KindLsRefs: "ls-refs", ipc.KindFetch: "fetch", ipc.KindClone: "clone", ipc.KindPush: "push", ipc.KindArchive: "archive"}
	// reasons, by ipc.Reason…; ReasonNone is never a refusal's.
	reasons = [ipc.MetricReasons]string{ipc.ReasonNone: "", ipc.ReasonNoRepo: "no-repository", ipc.ReasonDenied: "denied",
		ipc.ReasonBusy: "busy", ipc.ReasonBadRequest: "bad-request", ipc.ReasonInternal: "internal",
		ipc.ReasonUnauthenticated: "unauthenticated", ipc.ReasonRateLimited: "rate-limited"}
	// Roles are the parent's roles, the values of gotd's -T flag.
	Roles = [ipc.MetricRoles]string{"listen", "auth", "session_read", "session_write", "repo_write",
		"notify", "sshd", "gitd", "httpd", "metrics", "upkeep", "web"}
	// buckets are the upper bounds of the request duration histogram's
	// buckets: from an ls-remote on loopback to a large clone on a
	// slow link.
	buckets = [ipc.MetricBuckets]time.Duration{
		5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
		100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
		time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second, 30 * time.Second, 2 * time.Minute,
	}
)

// Request is what the parent knows of a client when it is done.
type Request struct {
	Via   uint32 // ipc.Via…
	Write bool   // the client asked for receive-pack
	// Archive: the client asked for upload-archive.
	Archive bool
	// Stats is its session's report; nil when no session reported
	// (refused before one started, or one that died).
	Stats    *ipc.SessionStats
	Status   uint32 // of its ipc.Done
	Reason   uint32 // of a refusal
	Duration time.Duration
}

// Recorder counts what the parent sees of its clients and processes,
// for the metrics role's scrapes. The zero value is not ready: use
// NewRecorder. Not safe for concurrent use: the parent's event loop
// owns it.
type Recorder struct {
	start       time.Time
	connections [ipc.MetricVias][ipc.MetricOutcomes]uint64
	requests    [ipc.NumKinds][ipc.MetricOutcomes]uint64
	refusals    [ipc.MetricReasons]uint64
	in, out     [ipc.MetricVias]uint64
	durations   [ipc.NumKinds][ipc.MetricBuckets + 1]uint64
	sums        [ipc.NumKinds]uint64 // nanoseconds
	processes   [ipc.MetricRoles]uint32
}

// NewRecorder returns a Recorder of a daemon started at start.
func NewRecorder(start time.Time) *Recorder { return &Recorder{start: start} }

// Done counts a client that is done. Values out of their tables (a
// source or status the tables do not know) are not counted.
func (r *Recorder) Done(q Request) {
	if q.Via >= ipc.MetricVias || q.Status >= ipc.MetricOutcomes {
		return
	}
	r.connections[q.Via][q.Status]++
	// A request refused before its session is counted as what it
	// asked for: no reference was listed.
	kind := uint32(ipc.KindFetch)
	switch {
	case q.Write:
		kind = ipc.KindPush
	case q.Archive:
		kind = ipc.KindArchive
	}
	if q.Stats != nil {
		kind = q.Stats.Kind
		r.in[q.Via] += q.Stats.In
		r.out[q.Via] += q.Stats.Out
	}
	if kind >= ipc.NumKinds {
		return
	}
	r.requests[kind][q.Status]++
	if q.Status == ipc.StatusRefused {
		if q.Reason > ipc.ReasonNone && q.Reason < ipc.MetricReasons {
			r.refusals[q.Reason]++
		}
		return
	}
	b := 0
	for b < len(buckets) && q.Duration > buckets[b] {
		b++
	}
	r.durations[kind][b]++
	r.sums[kind] += uint64(max(q.Duration, 0))
}

// Started counts a process of role started; Exited one that exited.
// Roles not in Roles are not counted.
func (r *Recorder) Started(role string) {
	if i := roleIndex(role); i >= 0 {
		r.processes[i]++
	}
}

// Exited counts a process of role that exited.
func (r *Recorder) Exited(role string) {
	if i := roleIndex(role); i >= 0 && r.processes[i] > 0 {
		r.processes[i]--
	}
}

func roleIndex(role string) int {
	for i, name := range Roles {
		if name == role {
			return i
		}
	}
	return -1
}

// Snapshot is the answer to a MetricsScrape of sequence seq: the counts
// so far, with the parent's state now (serving, clients connected,
// notifications waiting).
func (r *Recorder) Snapshot(seq uint32, serving bool, active, queued int) *ipc.Metrics {
	m := &ipc.Metrics{Seq: seq, Serving: serving, Start: r.start.UnixNano(),
		Active: clamp32(active), Queued: clamp32(queued)}
	for _, row := range r.connections {
		m.Connections = append(m.Connections, row[:]...)
	}
	for _, row := range r.requests {
		m.Requests = append(m.Requests, row[:]...)
	}
	m.Refusals = append(m.Refusals, r.refusals[:]...)
	m.In, m.Out = append(m.In, r.in[:]...), append(m.Out, r.out[:]...)
	for _, row := range r.durations {
		m.Durations = append(m.Durations, row[:]...)
	}
	m.DurationSums = append(m.DurationSums, r.sums[:]...)
	m.Processes = append(m.Processes, r.processes[:]...)
	return m
}

func clamp32(n int) uint32 {
	if int64(n) > 1<<32-1 {
		return 1<<32 - 1
	}
	return uint32(max(n, 0))
}
