//go:build linux

package msg

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// PeerCred returns the credentials of the process at the other end of
// the socket when it connected (SO_PEERCRED): the kernel's word, not
// anything the peer sent.
func (c *Conn) PeerCred() (uid, gid, pid uint32, err error) {
	var u *unix.Ucred
	cerr := c.control(func(fd int) { u, err = unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED) })
	if err == nil {
		err = cerr
	}
	if err != nil {
		return 0, 0, 0, fmt.Errorf("msg: SO_PEERCRED: %w", err)
	}
	return u.Uid, u.Gid, uint32(u.Pid), nil
}
