package upload

import (
	"errors"
	"io"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// copyFile copies n bytes of src from off to dst. When dst is a
// descriptor (a socket or pipe) the kernel moves the bytes itself with
// sendfile(2), from the page cache to the stream; otherwise, or where
// the kernel refuses, through *buf (copyFileBuffered).
func copyFile(dst io.Writer, src *os.File, off, n int64, buf *[]byte) error {
	if fs, ok := dst.(FileSender); ok {
		return fs.SendFile(src, off, n)
	}
	sc, ok := dst.(syscall.Conn)
	if !ok {
		return copyFileBuffered(dst, src, off, n, buf)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return copyFileBuffered(dst, src, off, n, buf)
	}
	in := int(src.Fd())
	var serr error
	sent := int64(0)
	err = rc.Write(func(fd uintptr) bool {
		done, err := SendfileTo(fd, in, off, n, &sent)
		serr = err
		return done
	})
	if err == nil {
		err = serr
	}
	if sent == 0 && (errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS)) {
		return copyFileBuffered(dst, src, off, n, buf)
	}
	return err
}

// SendfileTo sends the bytes of the file in between off+*sent and
// off+n to the descriptor fd with sendfile(2), adding what it sent to
// *sent: the body of a RawConn.Write callback. It returns false when
// fd would block (the caller waits until it is writable), else true
// with the kernel's refusal, or io.ErrUnexpectedEOF when the file ends
// early, or nil once all is sent.
func SendfileTo(fd uintptr, in int, off, n int64, sent *int64) (bool, error) {
	for *sent < n {
		o := off + *sent
		k, err := unix.Sendfile(int(fd), in, &o, int(min(n-*sent, 1<<30)))
		if k > 0 {
			*sent += int64(k)
		}
		switch {
		case err == unix.EAGAIN:
			return false, nil
		case err == unix.EINTR:
			continue
		case err != nil:
			return true, err
		case k == 0:
			return true, io.ErrUnexpectedEOF
		}
	}
	return true, nil
}

// cork holds back (on) or releases (off) partial TCP segments on dst
// when it is a TCP socket, so that a side-band header and the pack
// bytes after it leave in one segment. Anything else is left alone.
func cork(dst io.Writer, on bool) {
	sc, ok := dst.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	v := 0
	if on {
		v = 1
	}
	rc.Control(func(fd uintptr) {
		unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_CORK, v)
	})
}
