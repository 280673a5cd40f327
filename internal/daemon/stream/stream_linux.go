package stream

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

func isTCP(f *os.File) bool {
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	tcp := false
	rc.Control(func(fd uintptr) {
		sa, err := unix.Getsockname(int(fd))
		if err != nil {
			return
		}
		switch sa.(type) {
		case *unix.SockaddrInet4, *unix.SockaddrInet6:
			t, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TYPE)
			tcp = err == nil && t == unix.SOCK_STREAM
		}
	})
	return tcp
}

func ackNow(c syscall.Conn) {
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_QUICKACK, 1)
	})
}
