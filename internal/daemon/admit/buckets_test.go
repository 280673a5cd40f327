package admit

import (
	"fmt"
	"testing"
	"time"
)

func TestBuckets(t *testing.T) {
	now := time.Unix(1e9, 0)
	b := NewBuckets(3, time.Second, 4)
	b.now = func() time.Time { return now }
	for i := 0; i < 3; i++ {
		if !b.Allow("a") {
			t.Fatalf("failure %d refused", i)
		}
		b.Take("a")
	}
	if b.Allow("a") {
		t.Error("a allowed after its burst")
	}
	if !b.Allow("b") {
		t.Error("b refused for a's failures")
	}
	now = now.Add(time.Second)
	if !b.Allow("a") {
		t.Error("a refused after a refill")
	}
	b.Take("a")
	if b.Allow("a") {
		t.Error("a allowed after spending its refill")
	}
	now = now.Add(3 * time.Second)
	if !b.Allow("a") {
		t.Error("a refused once full again")
	}
	// Over maxKeys, full buckets are forgotten, then all.
	for i := 0; i < 10; i++ {
		b.Take(fmt.Sprint("k", i))
	}
	if n := len(b.buckets); n > 4 {
		t.Errorf("%d buckets kept; want at most 4", n)
	}
}
