//go:build linux

package sandbox

import (
	"golang.org/x/sys/unix"
)

// landlockABI returns the kernel's Landlock ABI version, 0 without it.
func landlockABI() int {
	v, _, e := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, 1 /* LANDLOCK_CREATE_RULESET_VERSION */)
	if e != 0 {
		return 0
	}
	return int(v)
}
