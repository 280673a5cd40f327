package upkeep

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"gotd/internal/git/oid"
	"gotd/internal/git/refs"
	"gotd/internal/gittest"
)

// TestPackRefsRacingPushes: writers, each with a store of its own as
// pushes in other processes have, move, create and delete their
// references (checking the old value, as a push does) while PackRefs
// packs them over and over. Every update a writer saw succeed is what
// the repository holds at the end, for gotd and for C Git, and no
// update found a value other than the last one acknowledged.
func TestPackRefsRacingPushes(t *testing.T) {
	dir := gittest.InitBare(t, "sha1")
	gittest.Generate(t, dir, gittest.History{Commits: 30})
	var commits []oid.ID
	for _, h := range strings.Fields(gittest.Git(t, dir, "rev-list", "--all")) {
		id, _ := oid.ParseHex(oid.SHA1, h)
		commits = append(commits, id)
	}
	const writers, perWriter, rounds = 4, 6, 120
	zero := oid.Zero(oid.SHA1)
	final := make([]map[string]oid.ID, writers) // acknowledged values; zero: deleted
	var wg sync.WaitGroup
	done := make(chan struct{})
	var mu sync.Mutex
	var locked int
	for w := range writers {
		final[w] = map[string]oid.ID{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := open(t, dir)
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for i := range rounds {
				name := fmt.Sprintf("refs/heads/w%d/b%d", w, rng.IntN(perWriter))
				old, ok := final[w][name]
				if !ok {
					old = zero
				}
				next := commits[rng.IntN(len(commits))]
				if old != zero && rng.IntN(8) == 0 {
					next = zero
				}
				err := r.Refs.Update([]refs.Update{{Name: name, Old: old, New: next, Who: refs.Who{Name: "w", Message: fmt.Sprint(i)}}})
				switch {
				case err == nil:
					final[w][name] = next
				case errors.Is(err, refs.ErrLocked):
					// A lock held past the wait: the push fails and
					// is not acknowledged, nothing lost.
					mu.Lock()
					locked++
					mu.Unlock()
				default:
					t.Errorf("writer %d: update %d of %s from %v: %v", w, i, name, old, err)
					return
				}
			}
		}()
	}
	packs := 0
	var packErr error
	finished := stop(&wg)
	go func() {
		defer close(done)
		r := open(t, dir)
		for {
			select {
			case <-finished:
				return
			default:
			}
			if _, _, err := PackRefs(r, 0); err != nil && !errors.Is(err, refs.ErrLocked) {
				packErr = err
				return
			}
			packs++
		}
	}()
	wg.Wait()
	<-done
	if packErr != nil {
		t.Fatalf("PackRefs: %v", packErr)
	}
	t.Logf("%d pack-refs runs; %d updates refused for a held lock", packs, locked)
	if packs < 10 {
		t.Errorf("only %d pack-refs runs raced the writers", packs)
	}

	// Once more with nothing racing: everything packed.
	r := open(t, dir)
	if before, after, err := PackRefs(r, 0); err != nil || after != 0 {
		t.Errorf("PackRefs at rest: %d loose before, %d after, %v; want none after", before, after, err)
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(gittest.Git(t, dir, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads/")), "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			got[f[0]] = f[1]
		}
	}
	for w := range writers {
		for name, id := range final[w] {
			ref, err := r.Refs.Read(name)
			switch {
			case id == zero:
				if err == nil || got[name] != "" {
					t.Errorf("%s: deleted, but reads %v (git: %q)", name, ref.ID, got[name])
				}
			case err != nil || ref.ID != id || got[name] != id.String():
				t.Errorf("%s: reads %v, %v (git: %q); want %v", name, ref.ID, err, got[name], id)
			}
		}
	}
	gittest.Git(t, dir, "fsck", "--full", "--strict")
}

// stop returns a channel closed once wg's goroutines are done.
func stop(wg *sync.WaitGroup) <-chan struct{} {
	c := make(chan struct{})
	go func() { wg.Wait(); close(c) }()
	return c
}
