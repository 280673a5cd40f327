package e2enet

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape fetches /metrics from port and parses it with Prometheus's
// own parser.
func scrape(t *testing.T, port int) map[string]*dto.MetricFamily {
	t.Helper()
	status, ctype, body := httpGet(t, "GET", port, "/metrics")
	if status != http.StatusOK || ctype != "text/plain; version=0.0.4; charset=utf-8" {
		t.Fatalf("/metrics: got %d %q; want 200 and the text format 0.0.4", status, ctype)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v\n%s", err, body)
	}
	return fams
}

// httpGet sends a request with method to path on the metrics port and
// returns the status, the content type and the body.
func httpGet(t *testing.T, method string, port int, path string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, fmt.Sprintf("http://127.0.0.1:%d%s", port, path), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

// metricValue is the value of the sample of family name with labels (name,
// value pairs); a histogram's is its count. 0 when there is none.
func metricValue(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	fam := fams[name]
	if fam == nil {
		return 0
	}
next:
	for _, m := range fam.Metric {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range m.Label {
				found = found || l.GetName() == labels[i] && l.GetValue() == labels[i+1]
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return 0
}

// metricDelta is an expected change of a sample between two scrapes:
// exactly want, or at least atLeast when that is set.
type metricDelta struct {
	name    string
	labels  []string
	want    float64
	atLeast float64
}

// waitMetrics scrapes until every delta since before holds (the parent
// counts a client once its processes are gone, a moment after the
// client has its answer), and returns the last scrape.
func waitMetrics(t *testing.T, port int, before map[string]*dto.MetricFamily, deltas []metricDelta) map[string]*dto.MetricFamily {
	t.Helper()
	var after map[string]*dto.MetricFamily
	var bad []string
	for range 100 {
		after, bad = scrape(t, port), nil
		for _, d := range deltas {
			got := metricValue(after, d.name, d.labels...) - metricValue(before, d.name, d.labels...)
			if d.atLeast > 0 && got < d.atLeast || d.atLeast == 0 && got != d.want {
				bad = append(bad, fmt.Sprintf("%s%v moved by %v; want %v (at least %v)", d.name, d.labels, got, d.want, d.atLeast))
			}
		}
		if len(bad) == 0 {
			return after
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("metrics:\n%s", strings.Join(bad, "\n"))
	return nil
}

// packBytes is the size of the pack files in a clone.
func packBytes(t *testing.T, gitDir string) float64 {
	t.Helper()
	packs, err := filepath.Glob(filepath.Join(gitDir, "objects", "pack", "*.pack"))
	if err != nil || len(packs) == 0 {
		t.Fatalf("no pack in %s: %v", gitDir, err)
	}
	var n int64
	for _, p := range packs {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		n += fi.Size()
	}
	return float64(n)
}

// TestMetrics: with "listen metrics", /metrics parses with
// Prometheus's parser and its counters move with a real clone, a push
// and a refusal; /healthz answers "ok"; other paths and methods are
// refused.
func TestMetrics(t *testing.T) {
	t.Parallel() // long and not timed: runs beside the other such tests, after the timed ones
	port := freePort(t)
	s := start(t, options{extraTop: fmt.Sprintf("listen metrics on 127.0.0.1 port %d", port), extraTest: "permit ro " + currentUser(t)})
	waitPort(t, port, s.log)

	if status, _, body := httpGet(t, "GET", port, "/healthz"); status != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz: got %d %q; want 200 \"ok\\n\"", status, body)
	}
	for _, c := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/", 404}, {"GET", "/metrics/x", 404}, {"GET", "/favicon.ico", 404}, {"POST", "/metrics", 405}, {"PUT", "/healthz", 405},
	} {
		if status, _, body := httpGet(t, c.method, port, c.path); status != c.status || strings.Contains(body, c.path[1:]) && len(c.path) > 1 {
			t.Errorf("%s %s: got %d %q; want %d", c.method, c.path, status, body, c.status)
		}
	}

	before := scrape(t, port)
	for _, name := range []string{"gotd_build_info", "gotd_start_time_seconds", "gotd_clients_active", "gotd_processes",
		"gotd_notifications_queued", "gotd_connections_total", "gotd_requests_total", "gotd_refusals_total",
		"gotd_received_bytes_total", "gotd_sent_bytes_total", "gotd_request_duration_seconds"} {
		if before[name] == nil {
			t.Errorf("no %s", name)
		}
	}
	if got := metricValue(before, "gotd_processes", "role", "metrics"); got != 1 {
		t.Errorf("metrics processes: got %v; want 1", got)
	}
	if got := metricValue(before, "gotd_processes", "role", "listen"); got != 1 {
		t.Errorf("listen processes: got %v; want 1", got)
	}
	// The anonymous visitors' web process runs from the start, as
	// there are HTTP listeners.
	if got := metricValue(before, "gotd_processes", "role", "web"); got != 1 {
		t.Errorf("web processes: got %v; want 1", got)
	}
	if got := metricValue(before, "gotd_start_time_seconds"); got < float64(time.Now().Add(-time.Hour).Unix()) || got > float64(time.Now().Unix()+1) {
		t.Errorf("start time: got %v; want about now", got)
	}

	// A clone over git://: one connection, one clone, and at least its
	// pack sent.
	dir := s.clientDir("metrics")
	s.mustGit(dir, nil, "clone", "-q", "--bare", s.gitURL("test"), "clone.git")
	pack := packBytes(t, filepath.Join(dir, "clone.git"))
	after := waitMetrics(t, port, before, []metricDelta{
		{name: "gotd_connections_total", labels: []string{"transport", "git", "outcome", "ok"}, want: 1},
		{name: "gotd_requests_total", labels: []string{"kind", "clone", "outcome", "ok"}, want: 1},
		{name: "gotd_request_duration_seconds", labels: []string{"kind", "clone"}, want: 1},
		{name: "gotd_sent_bytes_total", labels: []string{"transport", "git"}, atLeast: pack},
		{name: "gotd_received_bytes_total", labels: []string{"transport", "git"}, atLeast: 1},
	})
	t.Logf("clone: pack %v bytes, sent %v", pack, metricValue(after, "gotd_sent_bytes_total", "transport", "git")-metricValue(before, "gotd_sent_bytes_total", "transport", "git"))

	// A push over SSH of a new commit with a file of 64 KiB of
	// incompressible bytes: at least those received.
	work := filepath.Join(dir, "work")
	s.mustGit(dir, nil, "clone", "-q", s.gitURL("test"), "work")
	noise := make([]byte, 64<<10)
	for i := range noise {
		noise[i] = byte(i*2654435761>>13) ^ byte(i>>7)
	}
	write(t, filepath.Join(work, "noise.bin"), string(noise), 0o644)
	s.mustGit(work, nil, "add", ".")
	s.mustGit(work, nil, "commit", "-q", "-m", "noise")
	before = waitMetrics(t, port, after, []metricDelta{
		{name: "gotd_requests_total", labels: []string{"kind", "clone", "outcome", "ok"}, want: 1},
	})
	s.mustGit(work, []string{"GIT_SSH_COMMAND=" + s.sshCommand(s.writerKey)}, "push", "-q", s.sshURL(rwAccount, "test"), "HEAD:refs/heads/metrics")
	waitMetrics(t, port, before, []metricDelta{
		{name: "gotd_connections_total", labels: []string{"transport", "ssh", "outcome", "ok"}, want: 1},
		{name: "gotd_requests_total", labels: []string{"kind", "push", "outcome", "ok"}, want: 1},
		{name: "gotd_request_duration_seconds", labels: []string{"kind", "push"}, want: 1},
		{name: "gotd_received_bytes_total", labels: []string{"transport", "ssh"}, atLeast: 32 << 10},
		{name: "gotd_sent_bytes_total", labels: []string{"transport", "ssh"}, atLeast: 1},
	})

	// A refusal: a repository that does not exist.
	before = scrape(t, port)
	if out, err := s.git(dir, nil, "ls-remote", s.gitURL("nonexistent")); err == nil {
		t.Fatalf("ls-remote of no repository succeeded: %s", out)
	}
	after = waitMetrics(t, port, before, []metricDelta{
		{name: "gotd_refusals_total", labels: []string{"reason", "no-repository"}, want: 1},
		{name: "gotd_connections_total", labels: []string{"transport", "git", "outcome", "refused"}, want: 1},
		{name: "gotd_requests_total", labels: []string{"kind", "fetch", "outcome", "refused"}, want: 1},
	})
	// The gauge falls as each connection's handling ends, which may
	// come just after the counters above moved: it is given 10 s.
	for i := 0; i < 100 && metricValue(after, "gotd_clients_active") != 0; i++ {
		time.Sleep(100 * time.Millisecond)
		after = scrape(t, port)
	}
	if got := metricValue(after, "gotd_clients_active"); got != 0 {
		t.Errorf("clients active after all are done: got %v; want 0", got)
	}

	// A clone through gotsh (the daemon's socket), and one over HTTP,
	// which takes several requests: references listed, then the pack.
	before = after
	s.mustGit(dir, s.gotshEnv(), "clone", "-q", "--bare", "ssh://gotd/test", "gotsh.git")
	s.mustGit(dir, nil, "clone", "-q", "--bare", s.httpURL("", "test"), "http.git")
	after = waitMetrics(t, port, before, []metricDelta{
		{name: "gotd_connections_total", labels: []string{"transport", "gotsh", "outcome", "ok"}, want: 1},
		{name: "gotd_received_bytes_total", labels: []string{"transport", "gotsh"}, atLeast: 1},
		{name: "gotd_sent_bytes_total", labels: []string{"transport", "gotsh"}, atLeast: packBytes(t, filepath.Join(dir, "gotsh.git"))},
		{name: "gotd_connections_total", labels: []string{"transport", "http", "outcome", "ok"}, atLeast: 2},
		{name: "gotd_requests_total", labels: []string{"kind", "ls-refs", "outcome", "ok"}, atLeast: 1},
		{name: "gotd_requests_total", labels: []string{"kind", "clone", "outcome", "ok"}, want: 2},
		{name: "gotd_sent_bytes_total", labels: []string{"transport", "http"}, atLeast: packBytes(t, filepath.Join(dir, "http.git"))},
	})

	// The metrics process killed is started again, and the counts,
	// which the parent keeps, are still there.
	if !s.killWhen("metrics", time.Millisecond, nil) {
		t.Fatal("no metrics process to kill")
	}
	// The parent keeps the socket: connections wait in its backlog
	// until a process serves them.
	healthy := false
	client := &http.Client{Timeout: 2 * time.Second}
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		if c, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", port)); err == nil {
			c.Body.Close()
			if healthy = c.StatusCode == http.StatusOK; healthy {
				break
			}
		}
	}
	if !healthy {
		t.Fatal("metrics not served again after its process was killed")
	}
	waitMetrics(t, port, after, []metricDelta{
		{name: "gotd_requests_total", labels: []string{"kind", "clone", "outcome", "ok"}, want: 0},
		{name: "gotd_processes", labels: []string{"role", "metrics"}, want: 0},
	})
}
