package metrics

import (
	"runtime"
	"strconv"
	"strings"

	"gotd/internal/daemon/ipc"
)

// ContentType is that of the Prometheus text exposition format,
// version 0.0.4, which Expose writes.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Expose writes m in the Prometheus text exposition format: for each
// metric its HELP and TYPE lines, then its samples, every metric
// named gotd_…. version is gotd's release, for gotd_build_info. m must
// have been validated (ipc.Decode): its tables have their sizes.
func Expose(m *ipc.Metrics, version string) []byte {
	var e exposition
	e.family("gotd_build_info", "gauge", "Build of the running gotd: always 1, with its version and Go release as labels.")
	e.sample("gotd_build_info", []string{"version", version, "goversion", runtime.Version()}, 1)

	e.family("gotd_start_time_seconds", "gauge", "When the daemon started, in seconds since the Unix epoch.")
	e.float("gotd_start_time_seconds", nil, float64(m.Start)/1e9)

	e.family("gotd_serving", "gauge", "1 while the daemon takes new clients, 0 once it is stopping.")
	serving := uint64(0)
	if m.Serving {
		serving = 1
	}
	e.sample("gotd_serving", nil, serving)

	e.family("gotd_clients_active", "gauge", "Clients connected to the daemon now (a connection, or one HTTP request).")
	e.sample("gotd_clients_active", nil, uint64(m.Active))

	e.family("gotd_notifications_queued", "gauge", "Notifications waiting to be delivered.")
	e.sample("gotd_notifications_queued", nil, uint64(m.Queued))

	e.family("gotd_processes", "gauge", "Processes of the daemon running now, by role (the parent not counted).")
	for i, role := range Roles {
		e.sample("gotd_processes", []string{"role", role}, uint64(m.Processes[i]))
	}

	e.family("gotd_connections_total", "counter", "Clients done, by transport and outcome: a connection of gotsh, SSH or git://, one request of HTTP.")
	for v, transport := range transports {
		for o, outcome := range outcomes {
			e.sample("gotd_connections_total", []string{"transport", transport, "outcome", outcome}, m.Connections[v*ipc.MetricOutcomes+o])
		}
	}

	e.family("gotd_requests_total", "counter", "Requests done, by kind and outcome; a refused request counts as fetch or push, what it asked for.")
	for k, kind := range kinds {
		for o, outcome := range outcomes {
			e.sample("gotd_requests_total", []string{"kind", kind, "outcome", outcome}, m.Requests[k*ipc.MetricOutcomes+o])
		}
	}

	e.family("gotd_refusals_total", "counter", "Clients refused before any Git data, by reason.")
	for r, reason := range reasons {
		if r != ipc.ReasonNone {
			e.sample("gotd_refusals_total", []string{"reason", reason}, m.Refusals[r])
		}
	}

	e.family("gotd_received_bytes_total", "counter", "Bytes read from clients' Git streams, by transport.")
	for v, transport := range transports {
		e.sample("gotd_received_bytes_total", []string{"transport", transport}, m.In[v])
	}
	e.family("gotd_sent_bytes_total", "counter", "Bytes written to clients' Git streams, by transport.")
	for v, transport := range transports {
		e.sample("gotd_sent_bytes_total", []string{"transport", transport}, m.Out[v])
	}

	const hist = "gotd_request_duration_seconds"
	e.family(hist, "histogram", "Duration of the requests served (not refused), from connection to outcome, by kind.")
	for k, kind := range kinds {
		row := m.Durations[k*(ipc.MetricBuckets+1) : (k+1)*(ipc.MetricBuckets+1)]
		var count uint64
		for b, n := range row {
			count += n
			le := "+Inf"
			if b < len(buckets) {
				le = formatFloat(buckets[b].Seconds())
			}
			e.sample(hist+"_bucket", []string{"kind", kind, "le", le}, count)
		}
		e.float(hist+"_sum", []string{"kind", kind}, float64(m.DurationSums[k])/1e9)
		e.sample(hist+"_count", []string{"kind", kind}, count)
	}
	return []byte(e.b.String())
}

// exposition builds the text of a scrape.
type exposition struct {
	b strings.Builder
}

// family writes the HELP and TYPE lines of a metric.
func (e *exposition) family(name, typ, help string) {
	e.b.WriteString("# HELP " + name + " " + helpEscaper.Replace(help) + "\n")
	e.b.WriteString("# TYPE " + name + " " + typ + "\n")
}

// sample writes one sample; labels alternate names and values.
func (e *exposition) sample(name string, labels []string, v uint64) {
	e.labels(name, labels)
	e.b.WriteString(strconv.FormatUint(v, 10) + "\n")
}

func (e *exposition) float(name string, labels []string, v float64) {
	e.labels(name, labels)
	e.b.WriteString(formatFloat(v) + "\n")
}

func (e *exposition) labels(name string, labels []string) {
	e.b.WriteString(name)
	if len(labels) > 0 {
		e.b.WriteByte('{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				e.b.WriteByte(',')
			}
			e.b.WriteString(labels[i] + `="` + valueEscaper.Replace(labels[i+1]) + `"`)
		}
		e.b.WriteByte('}')
	}
	e.b.WriteByte(' ')
}

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// The format's escapes: in HELP text a backslash and a line feed, in
// label values a double quote too.
var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	valueEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)
