package walk

import (
	"context"
	"strings"
	"testing"

	"gotd/internal/git/oid"
	"gotd/internal/git/walk/walktest"
	"gotd/internal/gittest"
)

func TestCommonReady(t *testing.T) {
	r := newRepo(t, "sha1", 30)
	r.store = walktest.LoadStore(t, r.dir, r.f)
	root := strings.TrimSpace(gittest.Git(t, r.dir, "rev-list", "--max-parents=0", "main"))
	for _, mode := range []string{"plain", "graph"} {
		t.Run(mode, func(t *testing.T) {
			if mode == "graph" {
				r.withGraph(t)
			}
			w := &Walker{Store: r.store, Format: r.f, Graph: r.graph}
			ctx := context.Background()
			wants := []oid.ID{r.rev(t, "main"), r.rev(t, "topic1"), r.rev(t, "blob-tag")}
			c := w.NewCommon(ctx, wants)
			ready := func(want bool) {
				t.Helper()
				got, err := c.Ready()
				if err != nil || got != want {
					t.Fatalf("Ready = %v, %v; want %v", got, err, want)
				}
			}
			ready(false)
			unknown, _ := oid.ParseHex(r.f, strings.Repeat("ab", 20))
			if ok, err := c.Have(unknown); ok || err != nil {
				t.Fatalf("Have(unknown) = %v, %v", ok, err)
			}
			if ok, err := c.Have(r.rev(t, "main~3")); !ok || err != nil {
				t.Fatalf("Have(main~3) = %v, %v", ok, err)
			}
			// main reaches main~3, but topic1 forked from the root,
			// which is older than every have so far.
			ready(false)
			if ok, _ := c.Have(r.rev(t, root)); !ok {
				t.Fatal("Have(root) refused")
			}
			ready(true)
			if ok, _ := c.Have(r.rev(t, "main~3")); !ok || c.Count() != 2 {
				t.Fatalf("Count = %d after a repeated have", c.Count())
			}
		})
	}
}
