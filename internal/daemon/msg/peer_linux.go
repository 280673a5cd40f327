//go:build linux

package msg

import (
	"errors"
	"fmt"
	"unsafe"

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

// maxPeerGroups bounds the supplementary groups PeerGroups reads
// (NGROUPS_MAX).
const maxPeerGroups = 65536

// PeerGroups returns the supplementary groups of the process at the
// other end of the socket when it connected (SO_PEERGROUPS, Linux
// 4.13): the kernel's word, as PeerCred's.
func (c *Conn) PeerGroups() ([]uint32, error) {
	gids := make([]uint32, 64)
	for {
		n := uint32(len(gids) * 4)
		_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(c.fd), unix.SOL_SOCKET, unix.SO_PEERGROUPS,
			uintptr(unsafe.Pointer(&gids[0])), uintptr(unsafe.Pointer(&n)), 0)
		switch {
		case e == 0:
			return gids[:n/4], nil
		case errors.Is(e, unix.ERANGE) && int(n/4) > len(gids) && n/4 <= maxPeerGroups:
			gids = make([]uint32, n/4) // n is what it needs
		default:
			return nil, fmt.Errorf("msg: SO_PEERGROUPS: %w", e)
		}
	}
}
