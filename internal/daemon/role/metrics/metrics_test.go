package metrics

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"gotd/internal/daemon/ipc"
	"gotd/internal/daemon/msg"
)

// parse parses an exposition with Prometheus's own parser.
func parse(t *testing.T, b []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, b)
	}
	return fams
}

// value is the value of the sample of fam whose labels are labels
// (name, value pairs); -1 when there is none.
func value(fam *dto.MetricFamily, labels ...string) float64 {
	if fam == nil {
		return -1
	}
next:
	for _, m := range fam.Metric {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range m.Label {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
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
	return -1
}

// TestExpose counts requests with a Recorder and checks what
// Prometheus's parser reads of the exposition.
func TestExpose(t *testing.T) {
	start := time.Unix(1796000000, 500_000_000)
	r := NewRecorder(start)
	r.Started("listen")
	r.Started("web")
	r.Started("session_read")
	r.Started("session_read")
	r.Exited("session_read")
	r.Started("no such role")
	r.Exited("notify") // none running: stays 0
	r.Done(Request{Via: ipc.ViaHTTP, Stats: &ipc.SessionStats{Kind: ipc.KindClone, In: 300, Out: 5000},
		Status: ipc.StatusOK, Duration: 30 * time.Millisecond})
	r.Done(Request{Via: ipc.ViaHTTP, Stats: &ipc.SessionStats{Kind: ipc.KindLsRefs, In: 0, Out: 700},
		Status: ipc.StatusOK, Duration: 3 * time.Millisecond})
	r.Done(Request{Via: ipc.ViaSSH, Write: true, Stats: &ipc.SessionStats{Kind: ipc.KindPush, In: 9000, Out: 100},
		Status: ipc.StatusFailed, Duration: 3 * time.Minute})
	r.Done(Request{Via: ipc.ViaGit, Status: ipc.StatusRefused, Reason: ipc.ReasonNoRepo, Duration: time.Millisecond})
	r.Done(Request{Via: ipc.ViaSocket, Write: true, Status: ipc.StatusRefused, Reason: ipc.ReasonDenied})
	r.Done(Request{Via: ipc.ViaGit, Archive: true, Status: ipc.StatusRefused, Reason: ipc.ReasonNoRepo})
	r.Done(Request{Via: ipc.ViaSSH, Archive: true, Stats: &ipc.SessionStats{Kind: ipc.KindArchive, In: 40, Out: 10240},
		Status: ipc.StatusOK, Duration: 30 * time.Millisecond})
	r.Done(Request{Via: 99, Status: ipc.StatusOK}) // unknown source: not counted
	r.Done(Request{Via: ipc.ViaGit, Status: 7})    // unknown outcome: not counted
	m := r.Snapshot(1, true, 4, 2)
	fams := parse(t, Expose(m, "0.1"))

	for name, fam := range fams {
		if !strings.HasPrefix(name, "gotd_") || fam.GetHelp() == "" {
			t.Errorf("family %s: want a gotd_ name and help", name)
		}
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"gotd_build_info", []string{"version", "0.1"}, 1},
		{"gotd_start_time_seconds", nil, 1796000000.5},
		{"gotd_serving", nil, 1},
		{"gotd_clients_active", nil, 4},
		{"gotd_notifications_queued", nil, 2},
		{"gotd_processes", []string{"role", "listen"}, 1},
		{"gotd_processes", []string{"role", "session_read"}, 1},
		{"gotd_processes", []string{"role", "notify"}, 0},
		{"gotd_processes", []string{"role", "web"}, 1},
		{"gotd_connections_total", []string{"transport", "http", "outcome", "ok"}, 2},
		{"gotd_connections_total", []string{"transport", "ssh", "outcome", "failed"}, 1},
		{"gotd_connections_total", []string{"transport", "git", "outcome", "refused"}, 2},
		{"gotd_connections_total", []string{"transport", "gotsh", "outcome", "refused"}, 1},
		{"gotd_connections_total", []string{"transport", "git", "outcome", "ok"}, 0},
		{"gotd_requests_total", []string{"kind", "clone", "outcome", "ok"}, 1},
		{"gotd_requests_total", []string{"kind", "ls-refs", "outcome", "ok"}, 1},
		{"gotd_requests_total", []string{"kind", "push", "outcome", "failed"}, 1},
		{"gotd_requests_total", []string{"kind", "fetch", "outcome", "refused"}, 1},
		{"gotd_requests_total", []string{"kind", "push", "outcome", "refused"}, 1},
		{"gotd_requests_total", []string{"kind", "archive", "outcome", "refused"}, 1},
		{"gotd_requests_total", []string{"kind", "archive", "outcome", "ok"}, 1},
		{"gotd_refusals_total", []string{"reason", "no-repository"}, 2},
		{"gotd_refusals_total", []string{"reason", "denied"}, 1},
		{"gotd_refusals_total", []string{"reason", "busy"}, 0},
		{"gotd_received_bytes_total", []string{"transport", "http"}, 300},
		{"gotd_received_bytes_total", []string{"transport", "ssh"}, 9040},
		{"gotd_sent_bytes_total", []string{"transport", "http"}, 5700},
		{"gotd_request_duration_seconds", []string{"kind", "clone"}, 1},
		{"gotd_request_duration_seconds", []string{"kind", "push"}, 1},
		{"gotd_request_duration_seconds", []string{"kind", "fetch"}, 0}, // refusals are not timed
	} {
		if got := value(fams[c.name], c.labels...); got != c.want {
			t.Errorf("%s%v: got %v; want %v", c.name, c.labels, got, c.want)
		}
	}
	if n := len(fams["gotd_refusals_total"].Metric); n != ipc.MetricReasons-1 {
		t.Errorf("got %d refusal reasons; want %d", n, ipc.MetricReasons-1)
	}
	// Buckets are cumulative, the 3-minute push only in +Inf, and the
	// sum is in seconds.
	for _, m := range fams["gotd_request_duration_seconds"].Metric {
		kind := m.Label[0].GetValue()
		h := m.Histogram
		switch kind {
		case "clone":
			for _, b := range h.Bucket {
				want := uint64(0)
				if b.GetUpperBound() >= 0.03 {
					want = 1
				}
				if b.GetCumulativeCount() != want {
					t.Errorf("clone bucket le=%v: got %d; want %d", b.GetUpperBound(), b.GetCumulativeCount(), want)
				}
			}
			if h.GetSampleSum() != 0.03 {
				t.Errorf("clone sum: got %v; want 0.03", h.GetSampleSum())
			}
		case "push":
			for _, b := range h.Bucket {
				if b.GetUpperBound() < 1e9 && b.GetCumulativeCount() != 0 {
					t.Errorf("push bucket le=%v: got %d; want 0", b.GetUpperBound(), b.GetCumulativeCount())
				}
			}
			if h.GetSampleSum() != 180 {
				t.Errorf("push sum: got %v; want 180", h.GetSampleSum())
			}
		}
	}
}

// TestLabelEscape: label values are escaped as the format wants.
func TestLabelEscape(t *testing.T) {
	m := NewRecorder(time.Now()).Snapshot(1, true, 0, 0)
	fams := parse(t, Expose(m, "1.0 \"beta\"\\\nx"))
	if got := value(fams["gotd_build_info"], "version", "1.0 \"beta\"\\\nx"); got != 1 {
		t.Errorf("got build info %v; want 1", got)
	}
}

func testHandler(serving bool, err error) *Handler {
	return &Handler{
		Snapshot: func(context.Context) (*ipc.Metrics, error) {
			if err != nil {
				return nil, err
			}
			return NewRecorder(time.Unix(1, 0)).Snapshot(1, serving, 0, 0), nil
		},
		Version: "0.1",
		Log:     slog.New(slog.DiscardHandler),
	}
}

// TestRoutes: /metrics and /healthz with GET and HEAD; every other
// path 404, every other method 405; no answer from the parent 503.
func TestRoutes(t *testing.T) {
	for _, c := range []struct {
		method, target string
		serving        bool
		err            error
		status         int
		body           string // prefix
	}{
		{"GET", "/metrics", true, nil, 200, "# HELP gotd_"},
		{"GET", "/metrics?x=1", true, nil, 200, "# HELP gotd_"},
		{"HEAD", "/metrics", true, nil, 200, ""},
		{"GET", "/healthz", true, nil, 200, "ok\n"},
		{"GET", "/healthz", false, nil, 503, "stopping\n"},
		{"GET", "/metrics", false, nil, 200, "# HELP gotd_"},
		{"GET", "/healthz", true, errNoAnswer, 503, "unavailable\n"},
		{"GET", "/metrics", true, errors.New("x"), 503, "unavailable\n"},
		{"POST", "/metrics", true, nil, 405, "method not allowed\n"},
		{"DELETE", "/healthz", true, nil, 405, "method not allowed\n"},
		{"GET", "/", true, nil, 404, "not found\n"},
		{"GET", "/metrics/", true, nil, 404, "not found\n"},
		{"GET", "//metrics", true, nil, 404, "not found\n"},
		{"GET", "/Metrics", true, nil, 404, "not found\n"},
		{"GET", "/healthz/../metrics", true, nil, 404, "not found\n"},
		{"GET", "/%3Cscript%3E", true, nil, 404, "not found\n"},
		{"POST", "/nothing", true, nil, 404, "not found\n"},
	} {
		w := httptest.NewRecorder()
		testHandler(c.serving, c.err).ServeHTTP(w, httptest.NewRequest(c.method, c.target, nil))
		body := w.Body.String()
		if w.Code != c.status || !strings.HasPrefix(body, c.body) {
			t.Errorf("%s %s: got %d %.40q; want %d %q", c.method, c.target, w.Code, body, c.status, c.body)
		}
		if c.status == 200 && strings.HasPrefix(c.target, "/metrics") && w.Header().Get("Content-Type") != ContentType {
			t.Errorf("%s %s: got content type %q", c.method, c.target, w.Header().Get("Content-Type"))
		}
	}
}

// FuzzRoutes sends arbitrary request lines: the answer is one of the
// fixed ones, and 200 only for the two paths.
func FuzzRoutes(f *testing.F) {
	for _, s := range []string{"GET /metrics", "HEAD /healthz", "GET /", "POST /metrics", "GET /metrics?a=b",
		"GET http://example.com/metrics", "GET %2Fmetrics", "OPTIONS *", "GET /heal%74hz", "GET /../metrics"} {
		f.Add(s)
	}
	h := testHandler(true, nil)
	fixed := map[string]bool{"ok\n": true, "not found\n": true, "method not allowed\n": true}
	f.Fuzz(func(t *testing.T, line string) {
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(line + " HTTP/1.1\r\nHost: x\r\n\r\n")))
		if err != nil {
			return
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		body := w.Body.String()
		ours := req.URL.Path == "/metrics" || req.URL.Path == "/healthz"
		get := req.Method == "GET" || req.Method == "HEAD"
		switch {
		case w.Code == 200 && !(ours && get):
			t.Fatalf("%q: 200 for %s %q", line, req.Method, req.URL.Path)
		case w.Code == 404 && ours, w.Code == 405 && (!ours || get):
			t.Fatalf("%q: got %d", line, w.Code)
		case w.Code != 200 && w.Code != 404 && w.Code != 405:
			t.Fatalf("%q: got %d", line, w.Code)
		case req.URL.Path == "/metrics" && get:
			if req.Method == "GET" {
				parse(t, []byte(body))
			}
		case !fixed[body]:
			t.Fatalf("%q: got body %q", line, body)
		}
	})
}

// TestAsker: a scrape waits for the answer to its own question; the
// late answer to a question given up is not taken for it, and callers
// that waited meanwhile share the answer.
func TestAsker(t *testing.T) {
	mine, parent, err := msg.Pair()
	if err != nil {
		t.Fatal(err)
	}
	defer mine.Close()
	defer parent.Close()
	a := newAsker(mine)
	received := make(chan error, 1)
	go func() { received <- a.receive() }()
	go func() {
		for {
			var q ipc.MetricsScrape
			if _, err := ipc.Recv(parent, &q, false); err != nil {
				return
			}
			// A stale answer first, as if to an earlier question.
			stale := NewRecorder(time.Unix(1, 0)).Snapshot(q.Seq-1, true, 99, 0)
			fresh := NewRecorder(time.Unix(1, 0)).Snapshot(q.Seq, true, int(q.Seq), 0)
			ipc.Send(parent, stale, nil)
			ipc.Send(parent, fresh, nil)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for want := uint32(1); want <= 3; want++ {
		m, err := a.snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m.Seq != want || m.Active != want {
			t.Errorf("got answer %d (active %d); want %d", m.Seq, m.Active, want)
		}
	}
	// The parent's channel closing ends receive.
	parent.CloseWrite()
	select {
	case err := <-received:
		if err == nil {
			t.Error("receive: got no error; want one")
		}
	case <-time.After(10 * time.Second):
		t.Error("receive did not end")
	}
}

// TestFailureLoggedOnce: scrapes while the parent does not answer are
// logged once, not once each; an answer ends the episode.
func TestFailureLoggedOnce(t *testing.T) {
	var logged bytes.Buffer
	fail := true
	h := &Handler{
		Snapshot: func(context.Context) (*ipc.Metrics, error) {
			if fail {
				return nil, errNoAnswer
			}
			return NewRecorder(time.Unix(1, 0)).Snapshot(1, true, 0, 0), nil
		},
		Log: slog.New(slog.NewTextHandler(&logged, nil)),
	}
	get := func() int {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/healthz", nil))
		return w.Code
	}
	for range 3 {
		if got := get(); got != 503 {
			t.Errorf("got %d; want 503", got)
		}
	}
	fail = false
	if got := get(); got != 200 {
		t.Errorf("got %d; want 200", got)
	}
	fail = true
	get()
	if got := strings.Count(logged.String(), "no answer from the parent"); got != 2 {
		t.Errorf("got %d warnings; want 2 (one per episode):\n%s", got, logged.String())
	}
	if got := strings.Count(logged.String(), "answers again"); got != 1 {
		t.Errorf("got %d recoveries logged; want 1", got)
	}
}
