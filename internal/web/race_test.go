//go:build race

package web

// allocSlack scales the allocation bounds of the tests: the race
// detector makes sync.Pool drop what it holds, so pages allocate more
// (a commit page 5.0 MB against 4 MiB, a wide tree's 40 MB against 30
// MiB, where the bounds failed without the caps by 6x and 1.4x).
const allocSlack = 1.5
