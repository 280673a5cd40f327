package remote

import (
	"context"
	"path/filepath"
	"testing"

	"gotd/internal/git/oid"
	"gotd/internal/git/refs"
	"gotd/internal/git/repo"
	"gotd/internal/gittest"
)

// FuzzTarget pushes to a target whose advertisement and report are
// arbitrary bytes: the push must end, with an error or not, without a
// panic, and never tell of a reference it did not send as sent.
func FuzzTarget(f *testing.F) {
	zero := "0000000000000000000000000000000000000000"
	f.Add([]byte("0066"+zero+" capabilities^{}\x00report-status delete-refs side-band-64k ofs-delta atomic\n0000"),
		[]byte("000eunpack ok\n0017ok refs/heads/main\n0000"))
	f.Add([]byte("0066"+zero+" capabilities^{}\x00report-status-v2 delete-refs ofs-delta atomic quiet\n0000"),
		[]byte("0013\x01000eunpack ok\n0027\x01ng refs/heads/main non-fast-forward\n0009\x010000"))
	f.Add([]byte("0066"+zero+" capabilities^{}\x00report-status delete-refs side-band-64k ofs-delta atomic\n0000"),
		[]byte("0014\x03refused here\n"))
	dir := filepath.Join(f.TempDir(), "src.git")
	gittest.Git(f, "", "-c", "init.defaultBranch=main", "init", "-q", "--bare", dir)
	gittest.Generate(f, dir, gittest.History{Commits: 3, Branches: 1, Files: 2})
	r, err := repo.Open(dir, repo.Options{})
	if err != nil {
		f.Fatal(err)
	}
	defer r.Close()
	local := map[string]oid.ID{}
	r.Refs.List("refs/", func(ref refs.Ref) error {
		local[ref.Name] = ref.ID
		return nil
	})
	f.Fuzz(func(t *testing.T, adv, report []byte) {
		res, err := send(context.Background(), &canned{adv: adv, fetch: report}, SendOptions{Repo: r, MaxRefs: 1000,
			Take: func(string) bool { return true }})
		if err != nil {
			return
		}
		for _, u := range res.Updates {
			if !u.New.IsNull() && local[u.Name] != u.New {
				t.Fatalf("sent %s %s, which the repository does not have", u.Name, u.New)
			}
		}
	})
}
