package indexer

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"

	"gotd/internal/git/oid"
)

func TestZZProbe(t *testing.T) {
	if os.Getenv("GOTD_INDEXER_REPO") == "" {
		t.Skip()
	}
	_, p := benchPack(t)
	for _, threads := range []int{1, 2, 1, 2} {
		start := time.Now()
		var scanEnd, resolveEnd time.Duration
		_, err := Index(context.Background(), bytes.NewReader(p), Options{Format: oid.SHA1, Dir: t.TempDir(), Threads: threads, WriteRev: true,
			Progress: func(stage string, done, total uint32) {
				if done == total && stage == "receiving objects" {
					scanEnd = time.Since(start)
				}
				if done == total && stage == "resolving deltas" {
					resolveEnd = time.Since(start)
				}
			}})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("threads=%d scan %v resolve %v total %v", threads, scanEnd, resolveEnd-scanEnd, time.Since(start))
	}
}
