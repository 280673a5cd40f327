package stream

import (
	"errors"
	"io"
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
			for sent < n {
				o := off + sent
				k, err := unix.Sendfile(int(fd), in, &o, int(min(n-sent, 1<<30)))
				if k > 0 {
					sent += int64(k)
				}
				switch {
				case err == unix.EAGAIN:
					return false // wait until writable, or the deadline
				case err == unix.EINTR:
					continue
				case err != nil:
					serr = err
					return true
				case k == 0:
					serr = io.ErrUnexpectedEOF
					return true
				}
			}
			return true
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
