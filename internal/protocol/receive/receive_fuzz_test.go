package receive

import (
	"bytes"
	"context"
	"io"
	"reflect"
	"strings"
	"sync"
	"testing"

	"gotd/internal/git/oid"
	"gotd/internal/git/refs"
	"gotd/internal/git/repo"
	"gotd/internal/git/walk"
	"gotd/internal/gittest"
	"gotd/internal/protocol/pktline"
	"gotd/internal/protocol/wire"
)

// fuzzLimits are small, so that fuzzing reaches the limits.
var fuzzLimits = wire.Limits{MaxRefUpdates: 8}.WithDefaults()

// requestSeeds are pushes as clients send them (C Git 2.39's capability
// list, from GIT_TRACE_PACKET), and crafted overflows.
func requestSeeds(hexLen int) [][]byte {
	zero := strings.Repeat("0", hexLen)
	a := strings.Repeat("a", hexLen)
	b := strings.Repeat("b", hexLen)
	var many []string
	for i := range 9 {
		many = append(many, zero+" "+a+" refs/heads/b"+string(rune('0'+i))+"\n")
	}
	many[0] = strings.TrimSuffix(many[0], "\n") + "\x00report-status\n"
	return [][]byte{
		[]byte(pkt(zero+" "+a+" refs/heads/main\x00 report-status-v2 side-band-64k quiet object-format=sha1 agent=git/2.39.5\n", "0000") + "PACK"),
		[]byte(pkt(a+" "+b+" refs/heads/main\x00report-status atomic push-options\n", a+" "+zero+" refs/tags/v1\n", "0000", "ci.skip\n", "reviewer=x\n", "0000")),
		[]byte(pkt("shallow "+a+"\n", zero+" "+b+" refs/heads/x\x00report-status\n", "0000")),
		[]byte(pkt(many...) + "0000"),
		[]byte(pkt(zero+" "+a+" refs/heads/"+strings.Repeat("x", pktline.MaxPayloadSize-2*hexLen-14)+"\n", "0000")),
		[]byte(pkt(zero+" "+a+" refs/heads/x\x00push-options\n", "0000", strings.Repeat("o", maxPushOptionLen+1), "0000")),
		[]byte("0000"),
		[]byte("ffff"),
	}
}

// clientMessages are all the texts a refused request may send.
var clientMessages = map[string]bool{
	"protocol error: bad pkt-line":                          true,
	"protocol error: unexpected end of input":               true,
	"protocol error: unexpected delim packet":               true,
	"protocol error: unexpected response-end packet":        true,
	"protocol error: malformed command":                     true,
	"protocol error: malformed object id":                   true,
	"protocol error: invalid reference name":                true,
	"protocol error: reference named twice":                 true,
	"protocol error: capability not advertised":             true,
	"protocol error: malformed capability":                  true,
	"protocol error: capabilities after the first command":  true,
	"protocol error: command neither creates nor deletes":   true,
	"protocol error: malformed push option":                 true,
	"too many reference updates (limit 8 lines / 32 MiB)":   true,
	"too many push options (limit 100 lines / 64 KiB)":      true,
	"push option too long (limit 4096 bytes)":               true,
	"too many shallow lines (limit 65536 lines / 3 MiB)":    true,
	"too many shallow lines (limit 65536 lines / 4608 KiB)": true,
	"object format mismatch (repository is sha1)":           true,
	"object format mismatch (repository is sha256)":         true,
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// FuzzRequest fuzzes the request parser: commands, capabilities and
// push options. Whatever the bytes, it refuses them with one of the
// fixed client messages, or returns a request that satisfies every rule
// and that it parses again identically, from the bytes it read (which
// end with the request's flush) and from its canonical encoding.
func FuzzRequest(f *testing.F) {
	for _, s := range requestSeeds(40) {
		f.Add(s, false)
	}
	for _, s := range requestSeeds(64) {
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, in []byte, sha256 bool) {
		format := oid.SHA1
		if sha256 {
			format = oid.SHA256
		}
		cr := &countingReader{r: bytes.NewReader(in)}
		q, err := readRequest(pktline.NewReader(cr), format, fuzzLimits)
		if err != nil {
			if msg := wire.ClientMessage(err); !clientMessages[msg] {
				t.Fatalf("client message %q for %q (err %v)", msg, in, err)
			}
			return
		}
		read := in[:cr.n]
		if q == nil {
			if len(read) != 0 && !bytes.HasSuffix(read, []byte("0000")) {
				t.Fatalf("no request, but read %q", read)
			}
			return
		}
		checkRequest(t, q, format)
		if !bytes.HasSuffix(read, []byte("0000")) {
			t.Fatalf("request read %q: does not end with a flush", read)
		}
		again, err := readRequest(pktline.NewReader(bytes.NewReader(read)), format, fuzzLimits)
		if err != nil || !reflect.DeepEqual(again, q) {
			t.Fatalf("request from the bytes read %q: %+v, %v; want %+v", read, again, err, q)
		}
		enc := encodeRequest(q)
		again, err = readRequest(pktline.NewReader(bytes.NewReader(enc)), format, fuzzLimits)
		if err != nil || !reflect.DeepEqual(again, q) {
			t.Fatalf("request from its encoding %q: %+v, %v; want %+v", enc, again, err, q)
		}
	})
}

// checkRequest checks the rules every accepted request satisfies.
func checkRequest(t *testing.T, q *request, f oid.Format) {
	t.Helper()
	if len(q.commands) == 0 || len(q.commands) > fuzzLimits.MaxRefUpdates {
		t.Fatalf("%d commands", len(q.commands))
	}
	names := map[string]bool{}
	for _, c := range q.commands {
		if c.Old.Format() != f || c.New.Format() != f || c.Old.IsNull() && c.New.IsNull() {
			t.Fatalf("command %+v", c)
		}
		if !strings.HasPrefix(c.Name, "refs/") || refs.CheckName(c.Name) != nil || len(c.Name) > maxRefNameLen || names[c.Name] {
			t.Fatalf("command name %q", c.Name)
		}
		names[c.Name] = true
		if c.Status != "" {
			t.Fatalf("command %+v has a status", c)
		}
	}
	if len(q.options) > maxPushOptions || (!q.pushOptions && q.options != nil) {
		t.Fatalf("%d push options", len(q.options))
	}
	for _, o := range q.options {
		if len(o) > maxPushOptionLen || strings.ContainsAny(o, "\x00\n") {
			t.Fatalf("push option %q", o)
		}
	}
}

// encodeRequest writes q as a client would.
func encodeRequest(q *request) []byte {
	var b bytes.Buffer
	pw := pktline.NewWriter(&b)
	var caps []string
	for _, c := range []struct {
		on   bool
		name string
	}{
		{q.reportStatus && !q.reportV2, "report-status"}, {q.reportV2, "report-status-v2"},
		{q.sideBand, "side-band-64k"}, {q.quiet, "quiet"},
		{q.atomic, "atomic"}, {q.pushOptions, "push-options"},
	} {
		if c.on {
			caps = append(caps, c.name)
		}
	}
	if q.agent != "" {
		caps = append(caps, "agent="+q.agent)
	}
	for i, c := range q.commands {
		line := c.Old.String() + " " + c.New.String() + " " + c.Name
		if i == 0 {
			line += "\x00" + strings.Join(caps, " ")
		}
		pw.WriteString(line + "\n")
	}
	pw.Flush()
	if q.pushOptions {
		for _, o := range q.options {
			pw.WriteString(o + "\n")
		}
		pw.Flush()
	}
	return b.Bytes()
}

var fuzzRepo struct {
	once       sync.Once
	dir, main  string
	repo       *repo.Repo
	adv, state string
}

// FuzzServe feeds arbitrary pushes to a whole session whose
// Options.Check refuses every update. Whatever the bytes, the session
// sends the advertisement, then pkt-lines only, and leaves the
// repository exactly as it was, without a quarantine directory.
func FuzzServe(f *testing.F) {
	fuzzRepo.once.Do(func() {
		fuzzRepo.dir = gittest.InitBare(f, "sha1")
		gittest.Generate(f, fuzzRepo.dir, gittest.History{Commits: 3, Files: 4})
		fuzzRepo.main = strings.TrimSpace(gittest.Git(f, fuzzRepo.dir, "rev-parse", "main"))
		r, err := repo.Open(fuzzRepo.dir, repo.Options{})
		if err != nil {
			f.Fatal(err)
		}
		fuzzRepo.repo = r
		var out bytes.Buffer
		Serve(context.Background(), strings.NewReader("0000"), &out, Options{Repo: r})
		fuzzRepo.adv = out.String()
		fuzzRepo.state = snapshot(f, fuzzRepo.dir)
	})
	zero := strings.Repeat("0", 40)
	main := fuzzRepo.main
	empty := packOf(f, fuzzRepo.dir)
	f.Add([]byte(pkt(zero+" "+main+" refs/heads/x\x00report-status side-band-64k push-options\n", "0000", "opt\n", "0000") + empty))
	f.Add([]byte(pkt(main+" "+zero+" refs/heads/main\x00report-status delete-refs atomic\n", "0000")))
	f.Add([]byte(pkt("shallow "+main+"\n", zero+" "+main+" refs/tags/t\x00report-status-v2 quiet\n", "0000") + empty))
	f.Add([]byte(pkt(zero+" "+main+" refs/heads/x\x00report-status\n", "0000") + "PACK\x00\x00\x00\x02\x00\x00\x00\x01\x95"))
	for _, s := range requestSeeds(40) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		Serve(context.Background(), bytes.NewReader(in), &out, Options{Repo: fuzzRepo.repo, Check: refuseAll})
		rest, ok := bytes.CutPrefix(out.Bytes(), []byte(fuzzRepo.adv))
		if !ok {
			t.Fatalf("no advertisement first: %q", out.Bytes())
		}
		pr := pktline.NewReader(bytes.NewReader(rest))
		for {
			if _, _, err := pr.Read(); err == io.EOF {
				break
			} else if err != nil {
				t.Fatalf("answer %q is not pkt-lines: %v", rest, err)
			}
		}
		if after := snapshot(t, fuzzRepo.dir); after != fuzzRepo.state {
			t.Fatalf("repository changed by %q:\n%s", in, diffLines(fuzzRepo.state, after))
		}
	})
}

func refuseAll(context.Context, *Command, walk.Store) error { return wire.Errorf("refused") }
