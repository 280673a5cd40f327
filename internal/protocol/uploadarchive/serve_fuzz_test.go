package uploadarchive

import (
	"bytes"
	"context"
	"regexp"
	"testing"
	"time"

	"gotd/internal/git/repo"
	"gotd/internal/protocol/pktline"
)

// serveMessages are the NACK texts Serve may send besides
// ParseArguments' (clientMessages).
var serveMessages = regexp.MustCompile(`^(no such ref|not a tree object|not a valid object name|pathspec did not match any files|invalid prefix|` +
	`too many paths \(limit 1024\)|Too many options \(>63\)|'argument' token or flush expected|arguments too long \(limit [0-9.]+ [KMG]i?B\)|` +
	`protocol error: bad pkt-line|protocol error: unexpected end of input|protocol error: unexpected (delim|response-end) packet|internal server error)$`)

// FuzzServe sends Serve any request on a real repository: the answer
// is a NACK with one of the fixed messages, or an ACK, a flush and
// side-band packets ending with a flush.
func FuzzServe(f *testing.F) {
	dir, _, _ := fixture(f, "sha1")
	r, err := repo.Open(dir, repo.Options{})
	if err != nil {
		f.Fatal(err)
	}
	defer r.Close()
	for _, s := range []string{
		"argument HEAD\n|", "argument --format=zip\nargument -0\nargument main\nargument dir0\n|", "argument --list\n|",
		"argument HEAD:dir0\n|", "argument nested\n|", "argument secret/x\n|", "argument --remote=x\n|", "want x\n|",
		"argument HEAD\nargument nosuch\n|", "argument --prefix=a/b/\nargument v1.0\n|",
	} {
		f.Add([]byte(packets(s)))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		Serve(ctx, bytes.NewReader(in), &out, Options{Repo: r, Hidden: func(name string) bool { return name == "refs/secret/x" }})
		pr := pktline.NewReader(&out)
		k, p, err := pr.Read()
		if err != nil || k != pktline.Data {
			t.Fatalf("first packet: %v %v", k, err)
		}
		if msg, nack := bytes.CutPrefix(p, []byte("NACK ")); nack {
			m := string(bytes.TrimSuffix(msg, []byte("\n")))
			if !serveMessages.MatchString(m) && !clientMessages.MatchString(m) {
				t.Fatalf("NACK %q is not one of the fixed messages", m)
			}
			if out.Len() != 0 {
				t.Fatalf("%d bytes after a NACK", out.Len())
			}
			return
		}
		if string(p) != "ACK\n" {
			t.Fatalf("first packet %q", p)
		}
		if k, _, err := pr.Read(); err != nil || k != pktline.Flush {
			t.Fatalf("after the ACK: %v %v", k, err)
		}
		for {
			k, p, err := pr.Read()
			if err != nil {
				t.Fatalf("side-band: %v", err)
			}
			if k == pktline.Flush {
				break
			}
			if k != pktline.Data || len(p) == 0 || p[0] != 1 {
				t.Fatalf("side-band packet %v %q", k, p)
			}
		}
	})
}
