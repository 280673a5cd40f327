//go:build gotdtest

package upkeep

import (
	"os"
	"time"
)

// pauseBeforeRemoval sleeps, in a test build, for the duration in
// $GOTD_TEST_PRUNE_PAUSE between Repack's last walk and the removal:
// the window in which a push that relies on an unreachable object
// must not complete, which the race test widens so that its pushes
// fall into it.
var pauseBeforeRemoval = func() {
	if d, err := time.ParseDuration(os.Getenv("GOTD_TEST_PRUNE_PAUSE")); err == nil && d > 0 {
		time.Sleep(d)
	}
}
