//go:build !race

package loose

const raceEnabled = false
