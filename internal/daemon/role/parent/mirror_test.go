package parent

import (
	"testing"
	"time"
)

// TestMirrorWait: a mirror that syncs is synced again after its
// interval, give or take 10%; one that fails is tried again after 30s,
// doubling with each failure in a row, never later than its interval.
func TestMirrorWait(t *testing.T) {
	for _, tc := range []struct {
		every    time.Duration
		failures int
		min, max time.Duration
	}{
		{10 * time.Minute, 0, 9 * time.Minute, 11 * time.Minute},
		{time.Hour, 0, 54 * time.Minute, 66 * time.Minute},
		{10 * time.Minute, 1, 30 * time.Second, 30 * time.Second},
		{10 * time.Minute, 2, time.Minute, time.Minute},
		{10 * time.Minute, 3, 2 * time.Minute, 2 * time.Minute},
		{10 * time.Minute, 5, 8 * time.Minute, 8 * time.Minute},
		{10 * time.Minute, 6, 10 * time.Minute, 10 * time.Minute},
		{10 * time.Minute, 1000, 10 * time.Minute, 10 * time.Minute},
		{10 * time.Second, 1, 10 * time.Second, 10 * time.Second},
	} {
		for range 50 {
			if got := mirrorWait(tc.every, tc.failures); got < tc.min || got > tc.max {
				t.Errorf("mirrorWait(%v, %d) = %v; want %v to %v", tc.every, tc.failures, got, tc.min, tc.max)
				break
			}
		}
	}
}
