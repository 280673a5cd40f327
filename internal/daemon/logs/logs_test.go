package logs

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestAudit checks that the audit logger writes at the default
// verbosity, where its parent logger writes only warnings (issue 20: a
// clone or a push left no line at all), with the parent's attributes.
func TestAudit(t *testing.T) {
	var out bytes.Buffer
	log := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: Level(0)})).With("role", "parent")
	log.Info("dropped")
	Audit(log).With("client", 7).Info("request", "action", "clone")
	log.Warn("kept")
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		_, rest, _ := strings.Cut(l, " ") // the time
		got = append(got, rest)
	}
	want := []string{`level=INFO msg=request role=parent client=7 action=clone`, `level=WARN msg=kept role=parent`}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
