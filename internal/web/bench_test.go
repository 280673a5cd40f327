package web

import (
	"net/http/httptest"
	"os"
	"syscall"
	"testing"
	"time"
)

// BenchmarkPages serves the pages the bench compares with cgit's from
// the repository named by GOTD_WEB_BENCH_REPO (git.git, say), in this
// process: for profiles of a page's making.
//
//	GOTD_WEB_BENCH_REPO=/path/to/git.git go test -run - -bench Pages -cpuprofile cpu.out ./internal/web
func BenchmarkPages(b *testing.B) {
	dir := os.Getenv("GOTD_WEB_BENCH_REPO")
	if dir == "" {
		b.Skip("GOTD_WEB_BENCH_REPO is not set")
	}
	r, err := Open("bitmap", dir, "", nil)
	if err != nil {
		b.Fatal(err)
	}
	s := &Site{Repos: []*Repo{r}}
	s.Init()
	head, err := r.resolve(b.Context(), "")
	if err != nil {
		b.Fatal(err)
	}
	h := head.id.String()
	for _, p := range []struct{ name, url string }{
		{"summary", "/bitmap/"},
		{"log", "/bitmap/log/master"},
		{"commit", "/bitmap/commit/" + envOr("GOTD_WEB_BENCH_COMMIT", h)},
		{"tree", "/bitmap/tree/" + h},
		{"blob", "/bitmap/blob/" + h + "/" + envOr("GOTD_WEB_BENCH_BLOB", "Documentation/RelNotes/1.5.0.txt")},
		{"blame", "/bitmap/blame/" + h + "/" + envOr("GOTD_WEB_BENCH_BLAME", "wt-status.c")},
		{"atom", "/bitmap/atom/master"},
	} {
		b.Run(p.name, func(b *testing.B) {
			// The CPU per page, which a loaded machine's wall time
			// does not tell.
			c0 := cpuTime()
			for b.Loop() {
				rec := httptest.NewRecorder()
				s.ServeHTTP(rec, httptest.NewRequest("GET", p.url, nil))
				if rec.Code != 200 {
					b.Fatalf("GET %s: %d", p.url, rec.Code)
				}
			}
			b.ReportMetric(float64(cpuTime()-c0)/float64(b.N)/1e6, "cpu-ms/op")
		})
	}
}

// cpuTime is the process's CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
