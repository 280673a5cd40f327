package receive

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"gotd/internal/git/repo"
	"gotd/internal/gittest"
)

var fuzzRepo struct {
	once sync.Once
	dir  string
	main string
}

// FuzzServe feeds arbitrary pushes to a session whose Check refuses
// every update. Whatever the bytes, the session ends without panicking
// and the references never move.
func FuzzServe(f *testing.F) {
	fuzzRepo.once.Do(func() {
		fuzzRepo.dir = gittest.InitBare(f, "sha1")
		gittest.Generate(f, fuzzRepo.dir, gittest.History{Commits: 3, Files: 4})
		fuzzRepo.main = strings.TrimSpace(gittest.Git(f, fuzzRepo.dir, "rev-parse", "main"))
	})
	zero := strings.Repeat("0", 40)
	main := fuzzRepo.main
	f.Add([]byte(pkt(zero+" "+main+" refs/heads/x\x00report-status side-band-64k push-options\n", "0000", "opt\n", "0000") + "PACK\x00\x00\x00\x02\x00\x00\x00\x00"))
	f.Add([]byte(pkt(main+" "+zero+" refs/heads/main\x00report-status delete-refs atomic\n", "0000")))
	f.Add([]byte(pkt("shallow "+main+"\n", zero+" "+main+" refs/tags/t\x00report-status-v2 quiet\n", "0000")))
	r, err := repo.Open(fuzzRepo.dir, repo.Options{})
	if err != nil {
		f.Fatal(err)
	}
	before := snapshot(f, fuzzRepo.dir+"/refs")
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		Serve(context.Background(), bytes.NewReader(in), &out, Options{Repo: r, Check: refuse})
		if after := snapshot(t, fuzzRepo.dir+"/refs"); after != before {
			t.Fatalf("references changed by %q", in)
		}
	})
}

func refuse(context.Context, *Command) error { return errRefused }

var errRefused = errors.New("refused")
