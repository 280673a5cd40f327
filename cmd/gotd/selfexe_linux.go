package main

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// exeFD is the lowest descriptor the open binary may take: above those
// a child is started with (Go places them from 3 up and moves those in
// the way above them), which would otherwise replace it in the child
// before the exec.
const exeFD = 512

// selfExe opens the running binary while the process is still root and
// returns the path its roles are re-executed by and its Landlock rule
// is made of: /proc/self/fd/N names the open file itself, and reaching
// it needs no search permission on the directories above the binary,
// which the daemon's user may lack (a checkout under /root, issue 20).
// The descriptor is O_PATH (it can be executed through /proc, not read
// or written) and close-on-exec: a child's exec resolves the path
// before it closes. Without /proc, the binary's path is used.
func selfExe(exe string) (string, error) {
	fd, err := unix.Open("/proc/self/exe", unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return exe, nil
	}
	hi, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, exeFD)
	unix.Close(fd)
	if err != nil {
		return "", fmt.Errorf("open %s: %w", exe, err)
	}
	return fmt.Sprintf("/proc/self/fd/%d", hi), nil
}

// nameProcess names a child "gotd" where top(1), pgrep(1) and the
// kernel's messages look (its comm): executed through /proc/self/fd/N,
// the kernel named it "N". ps(1) -f shows the role in its title.
func nameProcess() {
	unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&procName[0])), 0, 0, 0)
}

// procName is the name nameProcess gives, NUL-terminated.
var procName = [...]byte{'g', 'o', 't', 'd', 0}
