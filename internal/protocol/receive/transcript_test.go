package receive

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"gotd/internal/git/repo"
	"gotd/internal/gittest"
	"gotd/internal/protocol/wire"
)

// pkt encodes lines as pkt-lines; "0000" stands for a flush.
func pkt(lines ...string) string {
	var b strings.Builder
	for _, l := range lines {
		if l == "0000" {
			b.WriteString(l)
			continue
		}
		fmt.Fprintf(&b, "%04x%s", len(l)+4, l)
	}
	return b.String()
}

// packOf returns a pack holding exactly the objects ids of repository
// dir, as C Git writes it.
func packOf(t *testing.T, dir string, ids ...string) string {
	t.Helper()
	in := ""
	for _, id := range ids {
		in += id + "\n"
	}
	return gittest.GitInput(t, dir, []byte(in), "pack-objects", "-q", "--stdout")
}

// TestProtocolViolations sends malformed or refused pushes and checks
// the exact answer and that the repository did not change.
func TestProtocolViolations(t *testing.T) {
	server := gittest.InitBare(t, "sha1")
	gittest.Generate(t, server, gittest.History{Commits: 4, Files: 4})
	main := strings.TrimSpace(gittest.Git(t, server, "rev-parse", "main"))
	zero := strings.Repeat("0", 40)

	// Objects made elsewhere: a commit whose tree is not sent, and a
	// commit that fails fsck.
	other := gittest.InitBare(t, "sha1")
	tree := strings.TrimSpace(gittest.GitInput(t, other, []byte("100644 blob "+strings.Repeat("1", 40)+"\tf\n"), "mktree", "--missing"))
	orphan := strings.TrimSpace(gittest.Git(t, other, "commit-tree", tree, "-m", "orphan"))
	bad := strings.TrimSpace(gittest.GitInput(t, other, []byte("tree "+tree+"\nauthor no email 1 +0000\ncommitter C <c@example.com> 1 +0000\n\nbad\n"),
		"hash-object", "-t", "commit", "--literally", "-w", "--stdin"))
	orphanPack := packOf(t, other, orphan)
	badPack := packOf(t, other, bad)

	cmd := func(old, new, name, caps string) string {
		if caps != "" {
			return old + " " + new + " " + name + "\x00" + caps + "\n"
		}
		return old + " " + new + " " + name + "\n"
	}
	errPkt := func(msg string) string { return pkt("ERR " + msg + "\n") }
	cases := []struct {
		name   string
		in     string
		limits wire.Limits
		want   string
	}{
		{"bad length", "zzzz", wire.Limits{}, errPkt("protocol error: bad pkt-line")},
		{"truncated packet", "0030" + zero, wire.Limits{}, errPkt("protocol error: unexpected end of input")},
		{"malformed id", pkt(cmd("123", main, "refs/heads/x", "report-status"), "0000"), wire.Limits{}, errPkt("protocol error: malformed command")},
		{"bad hex", pkt(cmd(zero, strings.Repeat("g", 40), "refs/heads/x", "report-status"), "0000"), wire.Limits{}, errPkt("protocol error: malformed object id")},
		{"capability not advertised", pkt(cmd(zero, main, "refs/heads/x", "report-status frobnicate"), "0000"), wire.Limits{}, errPkt("protocol error: capability not advertised")},
		{"bad ref name", pkt(cmd(zero, main, "refs/heads/a..b", "report-status"), "0000"), wire.Limits{}, errPkt("protocol error: invalid reference name")},
		{"ref outside refs/", pkt(cmd(zero, main, "HEAD", "report-status"), "0000"), wire.Limits{}, errPkt("protocol error: invalid reference name")},
		{"duplicate ref", pkt(cmd(zero, main, "refs/heads/x", "report-status"), cmd(zero, main, "refs/heads/x", ""), "0000"), wire.Limits{}, errPkt("protocol error: a reference is updated twice")},
		{"too many commands", pkt(cmd(zero, main, "refs/heads/x", "report-status"), cmd(zero, main, "refs/heads/y", ""), "0000"), wire.Limits{MaxRefUpdates: 1}, errPkt("too many reference updates (limit 1)")},
		{"object format", pkt(cmd(zero, main, "refs/heads/x", "report-status object-format=sha256"), "0000"), wire.Limits{}, errPkt("object format mismatch (repository is sha1)")},
		{"caps on a later command", pkt(cmd(zero, main, "refs/heads/x", "report-status"), cmd(zero, main, "refs/heads/y", "atomic"), "0000"), wire.Limits{}, errPkt("protocol error: capabilities after the first command")},
		{"truncated pack", pkt(cmd(zero, main, "refs/heads/x", "report-status"), "0000") + "PACK\x00\x00\x00\x02\x00\x00\x00\x05\x95", wire.Limits{},
			pkt("unpack pack is truncated\n", "ng refs/heads/x unpacker error\n", "0000")},
		{"pack too large", pkt(cmd(zero, orphan, "refs/heads/x", "report-status"), "0000") + orphanPack, wire.Limits{MaxPackSize: 20},
			pkt("unpack pack exceeds the maximum size of 20 bytes\n", "ng refs/heads/x unpacker error\n", "0000")},
		{"object too large", pkt(cmd(zero, orphan, "refs/heads/x", "report-status"), "0000") + orphanPack, wire.Limits{MaxObjectSize: 10},
			pkt("unpack pack has an object over the maximum size of 10 bytes\n", "ng refs/heads/x unpacker error\n", "0000")},
		{"missing object", pkt(cmd(zero, orphan, "refs/heads/x", "report-status"), "0000") + orphanPack, wire.Limits{},
			pkt("unpack ok\n", "ng refs/heads/x missing necessary objects\n", "0000")},
		{"object fails fsck", pkt(cmd(zero, bad, "refs/heads/x", "report-status"), "0000") + badPack, wire.Limits{},
			pkt("unpack object "+bad+" is invalid: commit: missing email in author line (missingEmail)\n", "ng refs/heads/x unpacker error\n", "0000")},
		{"new value absent, no pack", pkt(cmd(zero, strings.Repeat("ab", 20), "refs/heads/x", "report-status"), "0000") + packOf(t, server), wire.Limits{},
			pkt("unpack ok\n", "ng refs/heads/x missing necessary objects\n", "0000")},
		{"stale old value", pkt(cmd(orphan, main, "refs/heads/main", "report-status"), "0000") + packOf(t, server), wire.Limits{},
			pkt("unpack ok\n", "ng refs/heads/main failed to update ref: it changed on the server\n", "0000")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := snapshot(t, server)
			r, err := repo.Open(server, repo.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			var out bytes.Buffer
			_, serr := Serve(context.Background(), strings.NewReader(c.in), &out, Options{Repo: r, Limits: c.limits})
			got := out.String()
			if i := strings.Index(got, "0000"); i >= 0 {
				got = got[i+4:]
			}
			if got != c.want {
				t.Errorf("sent %q\nwant %q", got, c.want)
			}
			if strings.HasPrefix(c.want, "0") && strings.Contains(c.want, "ERR") && serr == nil {
				t.Error("no error returned")
			}
			if after := snapshot(t, server); after != before {
				t.Errorf("repository changed:\n%s", diffLines(before, after))
			}
			if m, _ := filepath.Glob(filepath.Join(server, "objects", "incoming-*")); len(m) > 0 {
				t.Errorf("quarantine left behind: %v", m)
			}
		})
	}
}

// diffLines lists the lines only one of a and b has.
func diffLines(a, b string) string {
	in := map[string]int{}
	for _, l := range strings.Split(a, "\n") {
		in[l]--
	}
	for _, l := range strings.Split(b, "\n") {
		in[l]++
	}
	var out []string
	for l, n := range in {
		if n < 0 {
			out = append(out, "- "+l)
		} else if n > 0 {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}
