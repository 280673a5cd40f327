package upload

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"gotd/internal/git/repo"
	"gotd/internal/gittest"
	"gotd/internal/protocol/pktline"
	"gotd/internal/protocol/wire"
)

var fuzzRepo struct {
	once sync.Once
	dir  string
	main string
}

// FuzzServe feeds arbitrary requests to both protocol versions of a
// session over a small repository, stateful or stateless, with small
// bounds on wants and haves so that the budgets are reached: whatever
// the bytes, the session must end (no hang, no panic), answer in
// well-formed pkt-lines, and a refusal must end with its ERR packet.
func FuzzServe(f *testing.F) {
	fuzzRepo.once.Do(func() {
		fuzzRepo.dir = gittest.InitBare(f, "sha1")
		gittest.Generate(f, fuzzRepo.dir, gittest.History{Commits: 4, Branches: 1, Files: 4})
		fuzzRepo.main = strings.TrimSpace(gittest.Git(f, fuzzRepo.dir, "rev-parse", "main"))
	})
	main := fuzzRepo.main
	for _, s := range []string{
		pkt("want "+main+" multi_ack_detailed side-band-64k thin-pack ofs-delta shallow\n", "deepen 1\n", "0000", "done\n"),
		pkt("want "+main+" multi_ack\n", "0000", "have "+main+"\n", "0000", "done\n"),
		pkt("want "+main+" shallow deepen-relative\n", "shallow "+main+"\n", "deepen-not refs/heads/main\n", "0000", "done\n"),
		pkt("command=ls-refs\n", "agent=x\n", "0001", "peel\n", "symrefs\n", "unborn\n", "ref-prefix refs/heads/\n", "0000"),
		pkt("command=fetch\n", "0001", "want "+main+"\n", "have "+main+"\n", "ofs-delta\n", "deepen-since 1700000100\n", "0000"),
		pkt("command=fetch\n", "0001", "want "+main+"\n", "filter blob:none\n", "done\n", "0000"),
		pkt("command=object-info\n", "0001", "size\n", "oid "+main+"\n", "0000"),
		pkt(append(append([]string{"command=ls-refs\n", "server-option=a\n", "0001"}, rep(9, "ref-prefix refs/\n")...), "0000")...),
		pkt(append(append([]string{"command=fetch\n", "0001", "want " + main + "\n"}, rep(9, "have "+main+"\n")...), "done\n", "0000")...),
		pkt(append([]string{"want " + main + " shallow\n"}, rep(5, "shallow "+main+"\n")...)...),
	} {
		f.Add(byte(0), []byte(s))
		f.Add(byte(2), []byte(s))
	}
	r, err := repo.Open(fuzzRepo.dir, repo.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, version byte, in []byte) {
		var out bytes.Buffer
		opts := Options{Repo: r, Version: int(version % 3), Filter: true, StatelessRPC: version&4 != 0,
			Limits: wire.Limits{MaxWants: 4, MaxHaves: 8}}
		_, err := Serve(context.Background(), bytes.NewReader(in), &out, opts)
		if err := wellFormed(out.Bytes()); err != nil {
			t.Fatalf("answer to %q: %v", in, err)
		}
		var werr *wire.Error
		if errors.As(err, &werr) && !bytes.Contains(out.Bytes(), []byte("PACK")) &&
			!bytes.HasSuffix(out.Bytes(), []byte(pkt("ERR "+wire.ClientMessage(err)+"\n"))) {
			t.Fatalf("answer to %q: refused with %v but sent %q", in, err, tail(out.String()))
		}
	})
}

// wellFormed checks that b is a sequence of pkt-lines within the size
// limit, possibly ending with a raw pack.
func wellFormed(b []byte) error {
	for len(b) > 0 {
		if bytes.HasPrefix(b, []byte("PACK")) {
			return nil
		}
		if len(b) < 4 {
			return fmt.Errorf("%d stray bytes at the end", len(b))
		}
		n, err := strconv.ParseUint(string(b[:4]), 16, 16)
		if err != nil {
			return fmt.Errorf("bad length %q", b[:4])
		}
		switch {
		case n < 4:
			n = 4
		case n > pktline.MaxPacketSize || int(n) > len(b):
			return fmt.Errorf("packet length %d with %d bytes left", n, len(b))
		}
		b = b[n:]
	}
	return nil
}
