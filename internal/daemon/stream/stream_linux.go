package stream

import (
	"errors"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"gotd/internal/protocol/upload"
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

// sendFile is SendFile with sendfile(2). It returns errNoSendfile when
// the kernel will not send src to the stream, before sending anything.
func (w *Writer) sendFile(src *os.File, off, n int64) (int64, error) {
	rc, err := w.f.SyscallConn()
	if err != nil {
		return 0, errNoSendfile
	}
	in := int(src.Fd())
	var sent int64
	err = w.attempts(func() (int, error, bool) {
		before := sent
		var serr error
		err := rc.Write(func(fd uintptr) bool {
			// false: wait until writable, or the deadline
			done, err := upload.SendfileTo(fd, in, off, n, &sent)
			serr = err
			return done
		})
		if err == nil {
			err = serr
		}
		if sent == 0 && (errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS)) {
			err = errNoSendfile
		}
		return int(sent - before), err, sent == n && err == nil
	})
	return sent, err
}
