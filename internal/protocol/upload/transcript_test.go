package upload

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotd/internal/git/repo"
	"gotd/internal/gittest"
	"gotd/internal/protocol/wire"
)

// pkt encodes lines as pkt-lines; "0000", "0001" and "0002" stand for
// themselves, anything else is a data packet.
func pkt(lines ...string) string {
	var b strings.Builder
	for _, l := range lines {
		switch l {
		case "0000", "0001", "0002":
			b.WriteString(l)
		default:
			fmt.Fprintf(&b, "%04x%s", len(l)+4, l)
		}
	}
	return b.String()
}

// serveBytes runs a session on in and returns what it wrote after the
// advertisement (the first flush in versions 0 and 1, the capability
// flush in version 2) and the session's error.
func serveBytes(t *testing.T, r *repo.Repo, version int, in string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	_, err := Serve(context.Background(), strings.NewReader(in), &out, Options{Repo: r, Version: version})
	s := out.String()
	if i := strings.Index(s, "0000"); i >= 0 {
		s = s[i+4:]
	}
	return s, err
}

// TestProtocolViolations feeds malformed and disallowed requests and
// checks the exact error sent back.
func TestProtocolViolations(t *testing.T) {
	src, r := openSource(t)
	main := strings.TrimSpace(gittest.Git(t, src, "rev-parse", "main"))
	blob := strings.TrimSpace(gittest.Git(t, src, "rev-parse", "main:dir0/sub0/file0.txt"))
	unknown := strings.Repeat("ab", 20)
	errPkt := func(msg string) string { return pkt("ERR " + msg + "\n") }
	cases := []struct {
		name    string
		version int
		in      string
		want    string
	}{
		{"bad length digits", 0, "zzzz", errPkt("protocol error: bad pkt-line")},
		{"length 3", 0, "0003", errPkt("protocol error: bad pkt-line")},
		{"truncated packet", 0, "0010want", errPkt("protocol error: unexpected end of input")},
		{"unknown object", 0, pkt("want "+unknown+" ofs-delta\n", "0000"), errPkt("upload-pack: not our ref " + unknown)},
		{"unadvertised object", 0, pkt("want "+blob+" ofs-delta\n", "0000"), errPkt("upload-pack: not our ref " + blob)},
		{"malformed id", 0, pkt("want 1234 ofs-delta\n", "0000"), errPkt("protocol error: malformed object id")},
		{"capability not advertised", 0, pkt("want "+main+" ofs-delta frobnicate\n", "0000"), errPkt("protocol error: capability not advertised")},
		{"filter not advertised", 0, pkt("want "+main+" ofs-delta\n", "filter blob:none\n", "0000"), errPkt("upload-pack: filtering is not enabled")},
		{"have before want", 0, pkt("have "+main+"\n", "0000"), errPkt("protocol error: expected want")},
		{"invalid deepen", 0, pkt("want "+main+" shallow\n", "deepen 0\n", "0000"), errPkt("upload-pack: invalid deepen")},
		{"deepen with deepen-since", 0, pkt("want "+main+" shallow\n", "deepen 1\n", "deepen-since 1700000000\n", "0000"),
			errPkt("upload-pack: deepen and deepen-since (or deepen-not) cannot be used together")},
		{"want after haves", 0, pkt("want "+main+"\n", "0000", "want "+main+"\n"), errPkt("protocol error: expected have or done")},
		{"end of input in negotiation", 0, pkt("want "+main+"\n", "0000"), errPkt("protocol error: unexpected end of input")},
		{"wrong object format", 0, pkt("want "+main+" object-format=sha256\n", "0000"), errPkt("upload-pack: object format mismatch (repository is sha1)")},
		{"v2 unknown command", 2, pkt("command=frobnicate\n", "0000"), errPkt("protocol error: unknown command")},
		{"v2 not a command", 2, pkt("want "+main+"\n", "0000"), errPkt("protocol error: expected a command")},
		{"v2 unknown capability", 2, pkt("command=ls-refs\n", "frob=1\n", "0001", "0000"), errPkt("protocol error: capability not advertised")},
		{"v2 unknown fetch argument", 2, pkt("command=fetch\n", "0001", "want "+main+"\n", "frobnicate\n", "0000"), errPkt("protocol error: unexpected fetch argument")},
		{"v2 unknown ls-refs argument", 2, pkt("command=ls-refs\n", "0001", "frobnicate\n", "0000"), errPkt("protocol error: unexpected ls-refs argument")},
		{"v2 want of a blob nobody reaches", 2, pkt("command=fetch\n", "0001", "want "+unknown+"\n", "done\n", "0000"), errPkt("upload-pack: not our ref " + unknown)},
		{"v2 delim in arguments", 2, pkt("command=fetch\n", "0001", "want "+main+"\n", "0001", "0000"), errPkt("protocol error: unexpected delim packet")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := serveBytes(t, r, c.version, c.in)
			var werr *wire.Error
			if !errors.As(err, &werr) {
				t.Errorf("error %v is not a client error", err)
			}
			if got != c.want {
				t.Errorf("sent %q\nwant %q", got, c.want)
			}
		})
	}
}

// TestNegotiationTranscript checks the acknowledgements of each mode
// against what gitprotocol-pack(5) prescribes.
func TestNegotiationTranscript(t *testing.T) {
	src, r := openSource(t)
	rev := func(s string) string { return strings.TrimSpace(gittest.Git(t, src, "rev-parse", s)) }
	main, old := rev("main"), rev("main~5")
	unknown := strings.Repeat("cd", 20)
	cases := []struct {
		name string
		caps string
		want string
	}{
		// Plain: ACK only the first common have, NAK at a flush without one.
		{"plain", "ofs-delta", pkt("ACK " + old + "\n")},
		// Once every want reaches a common commit, an unknown have is
		// answered with "continue" (multi_ack) or "ready".
		{"multi_ack", "multi_ack ofs-delta", pkt("ACK "+old+" continue\n", "ACK "+unknown+" continue\n", "NAK\n", "ACK "+old+"\n")},
		{"multi_ack_detailed", "multi_ack_detailed ofs-delta", pkt("ACK "+old+" common\n", "ACK "+unknown+" ready\n", "NAK\n", "ACK "+old+"\n")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := pkt("want "+main+" "+c.caps+"\n", "0000", "have "+old+"\n", "have "+unknown+"\n", "0000", "done\n")
			got, err := serveBytes(t, r, 0, in)
			if err != nil {
				t.Fatal(err)
			}
			// What follows the acknowledgements is the raw pack.
			i := strings.Index(got, "PACK")
			if i < 0 {
				t.Fatalf("no pack in %q", got)
			}
			if got[:i] != c.want {
				t.Errorf("acknowledgements %q\nwant %q", got[:i], c.want)
			}
		})
	}
}

// openSource returns a generated source repository and the repository
// opened on it, closed when the test ends.
func openSource(t *testing.T) (string, *repo.Repo) {
	t.Helper()
	src := source(t, "sha1")
	r, err := repo.Open(src, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return src, r
}

// TestV2Commands checks ls-refs, object-info and server options at the
// byte level.
func TestV2Commands(t *testing.T) {
	src, r := openSource(t)
	gittest.Git(t, src, "symbolic-ref", "refs/heads/alias", "refs/heads/main")
	rev := func(s string) string { return strings.TrimSpace(gittest.Git(t, src, "rev-parse", s)) }
	main, v1, v1c := rev("main"), rev("refs/tags/v1.0"), rev("v1.0^{}")
	blob := rev("main:dir0/sub0/file0.txt")
	size := strings.TrimSpace(gittest.Git(t, src, "cat-file", "-s", blob))
	unknown := strings.Repeat("ef", 20)
	in := pkt("command=ls-refs\n", "server-option=first\n", "agent=test/1\n", "0001",
		"symrefs\n", "peel\n", "ref-prefix HEAD\n", "ref-prefix refs/heads/alias\n", "ref-prefix refs/tags/v1\n", "0000",
		"command=object-info\n", "server-option=second\n", "0001", "size\n", "oid "+blob+"\n", "oid "+unknown+"\n", "0000")
	var out bytes.Buffer
	res, err := Serve(context.Background(), strings.NewReader(in), &out, Options{Repo: r, Version: 2})
	if err != nil {
		t.Fatal(err)
	}
	got := out.String()
	got = got[strings.Index(got, "0000")+4:]
	want := pkt(main+" HEAD symref-target:refs/heads/main\n", main+" refs/heads/alias symref-target:refs/heads/main\n",
		v1+" refs/tags/v1.0 peeled:"+v1c+"\n", "0000",
		"size\n", blob+" "+size+"\n", unknown+" \n", "0000")
	if got != want {
		t.Errorf("sent %q\nwant %q", got, want)
	}
	if strings.Join(res.ServerOptions, ",") != "first,second" || res.Agent != "test/1" {
		t.Errorf("result %+v", res)
	}
}

// TestHidden checks that hidden references and what only they reach
// are kept from every command: advertisement and ls-refs, object-info,
// fetch by id and by want-ref, in versions 0 and 2.
func TestHidden(t *testing.T) {
	src, r := openSource(t)
	git := func(in string, args ...string) string {
		return strings.TrimSpace(gittest.GitInput(t, src, []byte(in), args...))
	}
	blob := git("hidden content\n", "hash-object", "-w", "--stdin")
	commit := git("", "commit-tree", git("100644 blob "+blob+"\tsecret\n", "mktree"), "-p", git("", "rev-parse", "main"), "-m", "hidden")
	git("", "update-ref", "refs/internal/x", commit)
	git("", "symbolic-ref", "refs/heads/to-hidden", "refs/internal/x")
	git("", "symbolic-ref", "refs/heads/hop", "refs/heads/to-hidden")
	visible := git("", "rev-parse", "main:dir0/sub0/file0.txt")
	size := git("", "cat-file", "-s", visible)
	hide := func(name string) bool { return strings.HasPrefix(name, "refs/internal/") }
	serveHidden := func(version int, in string) (string, error) {
		var out bytes.Buffer
		_, err := Serve(context.Background(), strings.NewReader(in), &out, Options{Repo: r, Version: version, Hidden: hide, RefInWant: true, Wants: WantAny})
		return out.String(), err
	}

	// Version 0: the advertisement, a want of the hidden commit.
	out, err := serveHidden(0, pkt("want "+commit+" side-band-64k\n", "0000", "done\n"))
	adv, _, _ := strings.Cut(out, "0000")
	if strings.Contains(adv, "internal") || strings.Contains(adv, "to-hidden") || strings.Contains(adv, "hop") || strings.Contains(adv, commit) ||
		!strings.Contains(out, "ERR upload-pack: not our ref "+commit) || err == nil {
		t.Errorf("v0: %v\n%q", err, out)
	}
	// Version 2.
	out, err = serveHidden(2, pkt("command=ls-refs\n", "0001", "symrefs\n", "0000",
		"command=object-info\n", "0001", "size\n", "oid "+blob+"\n", "oid "+visible+"\n", "0000"))
	_, out, _ = strings.Cut(out, "0000") // the capabilities
	if err != nil || strings.Contains(out, "internal") || strings.Contains(out, "to-hidden") || strings.Contains(out, "hop") || strings.Contains(out, commit) ||
		!strings.HasSuffix(out, pkt("size\n", blob+" \n", visible+" "+size+"\n", "0000")) {
		t.Errorf("v2 ls-refs and object-info: %v\n%q", err, out)
	}
	for _, want := range []string{"want " + commit + "\n", "want " + blob + "\n", "want-ref refs/internal/x\n", "want-ref refs/heads/to-hidden\n",
		"want-ref refs/heads/hop\n"} {
		out, err := serveHidden(2, pkt("command=fetch\n", "0001", want, "done\n", "0000"))
		if err == nil || !strings.Contains(out, "ERR upload-pack: ") {
			t.Errorf("v2 fetch %q: %v\n%q", want, err, out)
		}
	}
}

// TestStatelessReachableWant checks that a stateless version 0 request
// (smart HTTP) may want a commit that is no longer a tip but that the
// references reach, as C Git's http-backend allows because a reference
// may move between the advertisement and the request (issue 18), while
// a stateful session may not, and a hidden reference's commit stays
// refused.
func TestStatelessReachableWant(t *testing.T) {
	src, r := openSource(t)
	git := func(args ...string) string { return strings.TrimSpace(gittest.Git(t, src, args...)) }
	old := git("rev-parse", "main~1")
	hidden := git("commit-tree", git("rev-parse", "main^{tree}"), "-p", "main", "-m", "hidden")
	git("update-ref", "refs/internal/x", hidden)
	hide := func(name string) bool { return strings.HasPrefix(name, "refs/internal/") }
	cases := []struct {
		name      string
		want      string
		stateless bool
		ok        bool
	}{
		{"stateless, reachable", old, true, true},
		{"stateful, reachable", old, false, false},
		{"stateless, hidden", hidden, true, false},
	}
	// The advertisement of smart HTTP says so: C Git's client asks for
	// an object by id only then.
	for _, advertiseOnly := range []bool{true, false} {
		var adv bytes.Buffer
		Serve(context.Background(), strings.NewReader(""), &adv, Options{Repo: r, AdvertiseOnly: advertiseOnly})
		if got := strings.Contains(adv.String(), " allow-reachable-sha1-in-want"); got != advertiseOnly {
			t.Errorf("advertisement (AdvertiseOnly %v) offers allow-reachable-sha1-in-want: %v", advertiseOnly, got)
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			in := pkt("want "+c.want+" ofs-delta\n", "0000", "done\n")
			_, err := Serve(context.Background(), strings.NewReader(in), &out, Options{Repo: r, StatelessRPC: c.stateless, Hidden: hide})
			got := out.String()
			if c.ok && (err != nil || !strings.Contains(got, "PACK")) {
				t.Errorf("error %v, sent %q; want a pack", err, tail(got))
			}
			if !c.ok && !strings.HasSuffix(got, pkt("ERR upload-pack: not our ref "+c.want+"\n")) {
				t.Errorf("error %v, sent %q; want not our ref", err, tail(got))
			}
		})
	}
}

// TestObjectInfoUnreachable checks that object-info tells no size of an
// object the references do not reach, hidden references or not (issue
// 19: the size of a deleted tag's blob was told), as a want of it is
// refused; WantAny without hidden references tells it.
func TestObjectInfoUnreachable(t *testing.T) {
	src, r := openSource(t)
	blob := strings.TrimSpace(gittest.GitInput(t, src, []byte("once tagged\n"), "hash-object", "-w", "--stdin"))
	visible := strings.TrimSpace(gittest.Git(t, src, "rev-parse", "main:dir0/sub0/file0.txt"))
	size := strings.TrimSpace(gittest.Git(t, src, "cat-file", "-s", visible))
	in := pkt("command=object-info\n", "0001", "size\n", "oid "+blob+"\n", "oid "+visible+"\n", "0000")
	for _, c := range []struct {
		wants WantPolicy
		told  string
	}{{WantAdvertised, ""}, {WantReachable, ""}, {WantAny, "12"}} {
		var out bytes.Buffer
		_, err := Serve(context.Background(), strings.NewReader(in), &out, Options{Repo: r, Version: 2, Wants: c.wants})
		if want := pkt("size\n", blob+" "+c.told+"\n", visible+" "+size+"\n", "0000"); err != nil || !strings.HasSuffix(out.String(), want) {
			t.Errorf("wants %d: error %v, sent %q; want %q", c.wants, err, tail(out.String()), want)
		}
		var want bytes.Buffer
		_, err = Serve(context.Background(), strings.NewReader(pkt("command=fetch\n", "0001", "want "+blob+"\n", "done\n", "0000")), &want, Options{Repo: r, Version: 2, Wants: c.wants})
		if (c.told == "") != (err != nil) {
			t.Errorf("wants %d: a want of the blob answered %v; object-info told %q", c.wants, err, c.told)
		}
	}
}

// TestHiddenHaves checks that a have or a shallow commit the visible
// references do not reach counts for nothing (the pack is what a client
// without it gets, not one short of or beyond what the hidden commit
// reaches), and that include-tag sends no tag a symbolic reference in
// sight names from a hidden one.
func TestHiddenHaves(t *testing.T) {
	src, r := openSource(t)
	git := func(args ...string) string { return strings.TrimSpace(gittest.Git(t, src, args...)) }
	main := git("rev-parse", "main")
	// The hidden commits reach all of main's history, and a file of
	// their own.
	secret := strings.TrimSpace(gittest.GitInput(t, src, []byte("secret\n"), "hash-object", "-w", "--stdin"))
	h1 := git("commit-tree", strings.TrimSpace(gittest.GitInput(t, src, []byte("100644 blob "+secret+"\ts\n"), "mktree")), "-p", main, "-m", "h1")
	h2 := git("commit-tree", git("rev-parse", "main^{tree}"), "-p", h1, "-m", "h2")
	git("update-ref", "refs/internal/x", h2)
	fetch := func(hide bool, lines ...string) int {
		t.Helper()
		in := []string{"want " + main + " ofs-delta thin-pack include-tag shallow\n"}
		var haves []string
		for _, l := range lines {
			if strings.HasPrefix(l, "have ") {
				haves = append(haves, l)
			} else {
				in = append(in, l)
			}
		}
		in = append(append(append(in, "0000"), haves...), "done\n")
		opts := Options{Repo: r, Version: 0}
		if hide {
			opts.Hidden = func(name string) bool { return strings.HasPrefix(name, "refs/internal/") }
		}
		var out bytes.Buffer
		res, err := Serve(context.Background(), strings.NewReader(pkt(in...)), &out, opts)
		if err != nil {
			t.Fatalf("%v\n%q", err, out.String())
		}
		return res.Objects
	}
	all := fetch(true)
	if got := fetch(true, "have "+h2+"\n"); got != all {
		t.Errorf("with a hidden have: %d objects sent, want %d (as with none)", got, all)
	}
	if got := fetch(false, "have "+h2+"\n"); got != 0 {
		t.Errorf("without hidden references the have counts: %d objects sent, want 0", got)
	}
	deep := fetch(true, "deepen 2147483647\n")
	if got := fetch(true, "shallow "+h2+"\n", "deepen 2147483647\n"); got != deep {
		t.Errorf("with a hidden shallow commit: %d objects sent, want %d (as with none)", got, deep)
	}
	if got := fetch(false, "shallow "+h2+"\n", "deepen 2147483647\n"); got == deep {
		t.Errorf("without hidden references the shallow commit counts not: %d objects", got)
	}
	// An annotated tag of main under a hidden name, and a symbolic
	// reference to it among the tags.
	tag := strings.TrimSpace(gittest.GitInput(t, src, []byte("object "+main+"\ntype commit\ntag t\ntagger T <t@example.com> 1 +0000\n\nhidden\n"),
		"hash-object", "-t", "tag", "-w", "--stdin"))
	git("update-ref", "refs/internal/t", tag)
	git("symbolic-ref", "refs/tags/alias", "refs/internal/t")
	if got := fetch(true); got != all {
		t.Errorf("include-tag: %d objects sent, want %d (no hidden tag)", got, all)
	}
	if got := fetch(false); got != all+1 {
		t.Errorf("include-tag without hidden references: %d objects sent, want %d", got, all+1)
	}
}

// TestHiddenUnbornHead checks that hiding a namespace does not hide an
// unborn HEAD: a clone of an empty repository learns its branch.
func TestHiddenUnbornHead(t *testing.T) {
	dir := gittest.InitBare(t, "sha1")
	gittest.Git(t, dir, "symbolic-ref", "HEAD", "refs/heads/trunk")
	r, err := repo.Open(dir, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out bytes.Buffer
	hide := func(name string) bool { return strings.HasPrefix(name, "refs/internal/") }
	if _, err := Serve(context.Background(), strings.NewReader(pkt("command=ls-refs\n", "0001", "unborn\n", "symrefs\n", "0000")), &out,
		Options{Repo: r, Version: 2, Hidden: hide}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "unborn HEAD symref-target:refs/heads/trunk\n") {
		t.Errorf("ls-refs: %q", out.String())
	}
}

// hookReader returns first, then runs hook before it returns rest: a
// session reads past first only once it has answered it.
type hookReader struct {
	first, rest string
	hook        func()
}

func (h *hookReader) Read(p []byte) (int, error) {
	if h.first == "" && h.hook != nil {
		h.hook()
		h.hook, h.first, h.rest = nil, h.rest, ""
	}
	if h.first == "" {
		return 0, io.EOF
	}
	n := copy(p, h.first)
	h.first = h.first[n:]
	return n, nil
}

// TestV2ListedWant: in version 2 on one connection, a fetch may want
// what the ls-refs before it listed though the reference has moved
// since and nothing reaches it now (a mirror's sync forcing a branch
// while a clone runs), as a version 0 client may want what its
// advertisement listed; an object never listed nor reached stays
// refused.
func TestV2ListedWant(t *testing.T) {
	src, r := openSource(t)
	git := func(args ...string) string { return strings.TrimSpace(gittest.Git(t, src, args...)) }
	tree := git("rev-parse", "main^{tree}")
	listed := git("commit-tree", tree, "-p", "main", "-m", "listed, then forced away")
	never := git("commit-tree", tree, "-p", "main", "-m", "never listed")
	git("update-ref", "refs/heads/moving", listed)
	for _, c := range []struct {
		want string
		ok   bool
	}{{listed, true}, {never, false}} {
		h := &hookReader{
			first: pkt("command=ls-refs\n", "0001", "ref-prefix refs/heads/\n", "0000"),
			rest:  pkt("command=fetch\n", "0001", "want "+c.want+"\n", "ofs-delta\n", "done\n", "0000"),
			hook:  func() { git("update-ref", "refs/heads/moving", "main") },
		}
		var out bytes.Buffer
		_, err := Serve(context.Background(), h, &out, Options{Repo: r, Version: 2})
		got := out.String()
		if c.ok && (err != nil || !strings.Contains(got, "PACK")) {
			t.Errorf("want %s (listed): error %v, sent %q; want a pack", c.want, err, tail(got))
		}
		if !c.ok && !strings.HasSuffix(got, pkt("ERR upload-pack: not our ref "+c.want+"\n")) {
			t.Errorf("want %s (never listed): error %v, sent %q; want not our ref", c.want, err, tail(got))
		}
		git("update-ref", "refs/heads/moving", listed)
	}
}

// TestV2ListedWantReadsNoRefs checks that a version 2 fetch wanting
// only what the ls-refs before it on the connection listed does not
// read the references again: a store that cannot be read once ls-refs
// has answered (a malformed packed-refs) still gives the pack, while a
// want never listed needs the references and is refused with them
// unreadable.
func TestV2ListedWantReadsNoRefs(t *testing.T) {
	for _, c := range []struct {
		name string
		want func(main, other string) string
		ok   bool
	}{
		{"listed", func(main, _ string) string { return main }, true},
		{"not listed", func(_, other string) string { return other }, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			src, r := openSource(t)
			git := func(args ...string) string { return strings.TrimSpace(gittest.Git(t, src, args...)) }
			main := git("rev-parse", "main")
			other := git("commit-tree", git("rev-parse", "main^{tree}"), "-p", "main", "-m", "not listed")
			git("update-ref", "refs/other/x", other)
			h := &hookReader{
				first: pkt("command=ls-refs\n", "0001", "ref-prefix refs/heads/\n", "0000"),
				rest:  pkt("command=fetch\n", "0001", "want "+c.want(main, other)+"\n", "ofs-delta\n", "done\n", "0000"),
				hook: func() {
					if err := os.WriteFile(filepath.Join(src, "packed-refs"), []byte("# hello\n"), 0o644); err != nil {
						t.Fatal(err)
					}
				},
			}
			var out bytes.Buffer
			_, err := Serve(context.Background(), h, &out, Options{Repo: r, Version: 2})
			got := out.String()
			if sent := strings.Contains(got, "PACK"); sent != c.ok {
				t.Errorf("error %v, sent %q; want a pack: %v", err, tail(got), c.ok)
			}
		})
	}
}
