//go:build !gotdtest

package upkeep

// pauseBeforeRemoval is called by Repack between its last walk and the
// removal, under the prune lock: a test sets it to act in that window.
// In a test build it sleeps (pause_gotdtest.go).
var pauseBeforeRemoval = func() {}
