//go:build !linux

package msg

import "errors"

// PeerCred returns the credentials of the process at the other end of
// the socket; not implemented on this system yet.
func (c *Conn) PeerCred() (uid, gid, pid uint32, err error) {
	return 0, 0, 0, errors.New("msg: peer credentials are not supported on this system")
}

// PeerGroups returns the supplementary groups of the process at the
// other end of the socket; not implemented on this system yet.
func (c *Conn) PeerGroups() ([]uint32, error) {
	return nil, errors.New("msg: peer groups are not supported on this system")
}
