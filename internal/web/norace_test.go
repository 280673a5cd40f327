//go:build !race

package web

// allocSlack scales the allocation bounds of the tests (race_test.go).
const allocSlack = 1.0
