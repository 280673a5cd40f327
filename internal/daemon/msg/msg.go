// Package msg carries typed messages between gotd's processes: one
// message per datagram on a SOCK_SEQPACKET unix socket pair, so message
// boundaries and the file descriptor sent with a message (SCM_RIGHTS)
// stay together. Every message has a type and a length bounded by the
// receiver; what a message may contain, and which process may send it
// in which state, is checked by the roles with Decoder, which refuses
// short, long and trailing bytes.
package msg

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Type identifies a message.
type Type uint16

// MaxSize bounds the payload of one message.
const MaxSize = 64 << 10

// headerSize is the bytes before the payload: type, reserved, length.
const headerSize = 8

// Msg is one message. File, if not nil, is a descriptor sent with it;
// the receiver owns a received File and must close it.
type Msg struct {
	Type Type
	Data []byte
	File *os.File
}

// Errors of Recv.
var (
	ErrMalformed = errors.New("msg: malformed message")
	ErrTooLarge  = errors.New("msg: message too large")
)

// Conn is one end of a message channel. Send and Recv may be used from
// different goroutines; each from one goroutine at a time.
type Conn struct {
	f   *os.File // the socket
	fd  int
	buf []byte
	oob []byte
	// uc and rc, for a Conn of FromUnixConn, wait in the runtime's
	// poller; buf is then nil and taken from bufs for each message, and
	// fd serves only for socket options.
	uc *net.UnixConn
	rc syscall.RawConn
}

// bufs are the receive buffers of Conns that wait in the poller: held
// only while a message is read, so that a thousand idle connections do
// not hold a thousand buffers.
var bufs = sync.Pool{New: func() any { b := make([]byte, headerSize+MaxSize+1); return &b }}

// Pair returns the two connected ends of a new channel.
func Pair() (*Conn, *Conn, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("msg: socketpair: %w", err)
	}
	return newConn(fds[0]), newConn(fds[1]), nil
}

// FromFile makes a Conn of an inherited socket (a child's end, passed
// as an extra file descriptor). The Conn takes ownership of f.
func FromFile(f *os.File) *Conn {
	return &Conn{f: f, fd: int(f.Fd()), buf: make([]byte, headerSize+MaxSize+1), oob: make([]byte, unix.CmsgSpace(4*4))}
}

func newConn(fd int) *Conn { return FromFile(os.NewFile(uintptr(fd), "msg")) }

// FromUnixConn makes a Conn of c, a connection accepted on a
// SOCK_SEQPACKET socket ("unixpacket"). Its Recv and Send wait in the
// runtime's poller, so that a goroutine waiting on it holds no thread,
// and they end with os.ErrDeadlineExceeded at c's deadlines. File
// returns nil: to pass the connection on, pass c.File(). The Conn takes
// ownership of c.
func FromUnixConn(c *net.UnixConn) (*Conn, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("msg: %w", err)
	}
	conn := &Conn{oob: make([]byte, unix.CmsgSpace(4*4)), uc: c, rc: rc}
	// The descriptor, for socket options (peer credentials) read
	// without going through rc; reads and writes go through rc.
	if err := rc.Control(func(fd uintptr) { conn.fd = int(fd) }); err != nil {
		return nil, fmt.Errorf("msg: %w", err)
	}
	return conn, nil
}

// File returns the socket, to hand to a child process; nil for a Conn
// of FromUnixConn.
func (c *Conn) File() *os.File { return c.f }

// Close closes the socket.
func (c *Conn) Close() error {
	if c.uc != nil {
		return c.uc.Close()
	}
	return c.f.Close()
}

// CloseWrite ends the channel's output: the peer reads what was sent,
// then the end of the channel; this side can still receive.
func (c *Conn) CloseWrite() error {
	if c.uc != nil {
		return c.uc.CloseWrite()
	}
	return unix.Shutdown(c.fd, unix.SHUT_WR)
}

// control runs f with the socket's descriptor.
func (c *Conn) control(f func(fd int)) error {
	if c.rc == nil {
		f(c.fd)
		return nil
	}
	return c.rc.Control(func(fd uintptr) { f(int(fd)) })
}

// Send sends m as one datagram.
func (c *Conn) Send(m Msg) error {
	if len(m.Data) > MaxSize {
		return ErrTooLarge
	}
	b := make([]byte, headerSize+len(m.Data))
	binary.BigEndian.PutUint16(b[0:], uint16(m.Type))
	binary.BigEndian.PutUint32(b[4:], uint32(len(m.Data)))
	copy(b[headerSize:], m.Data)
	if m.File == nil {
		return c.sendmsg(b, nil)
	}
	// Not m.File.Fd(): that would make a non-blocking descriptor
	// blocking, for its other holders too.
	rc, err := m.File.SyscallConn()
	if err != nil {
		return fmt.Errorf("msg: send: %w", err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = c.sendmsg(b, unix.UnixRights(int(fd))) }); err != nil {
		return fmt.Errorf("msg: send: %w", err)
	}
	return serr
}

func (c *Conn) sendmsg(b, oob []byte) error {
	if c.rc != nil {
		var err error
		werr := c.rc.Write(func(fd uintptr) bool {
			err = unix.Sendmsg(int(fd), b, oob, nil, 0)
			return err != unix.EAGAIN && err != unix.EINTR
		})
		if werr != nil {
			err = werr
		}
		if err != nil {
			return fmt.Errorf("msg: send: %w", err)
		}
		return nil
	}
	for {
		err := unix.Sendmsg(c.fd, b, oob, nil, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("msg: send: %w", err)
		}
		return nil
	}
}

// Recv receives one message. A message whose header does not match its
// size, that was truncated, or that carries more than one descriptor is
// ErrMalformed (descriptors received with it are closed). At the end of
// the channel Recv returns io.EOF-like os.ErrClosed; for a Conn of
// FromUnixConn, at the connection's read deadline an error that
// wraps os.ErrDeadlineExceeded.
func (c *Conn) Recv() (Msg, error) {
	buf, n, oobn, flags, err := c.recvmsg()
	if c.buf == nil && buf != nil {
		defer bufs.Put(buf)
	}
	if err != nil {
		return Msg{}, fmt.Errorf("msg: receive: %w", err)
	}
	b := *buf
	files, ferr := parseRights(c.oob[:oobn])
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	if n == 0 && oobn == 0 {
		return Msg{}, os.ErrClosed
	}
	switch {
	case ferr != nil || flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 || len(files) > 1:
		closeAll()
		return Msg{}, ErrMalformed
	case n > headerSize+MaxSize:
		closeAll()
		return Msg{}, ErrTooLarge
	case n < headerSize || int(binary.BigEndian.Uint32(b[4:])) != n-headerSize || binary.BigEndian.Uint16(b[2:]) != 0:
		closeAll()
		return Msg{}, ErrMalformed
	}
	m := Msg{Type: Type(binary.BigEndian.Uint16(b)), Data: append([]byte(nil), b[headerSize:n]...)}
	if len(files) == 1 {
		m.File = files[0]
	}
	return m, nil
}

// recvmsg receives one datagram into the Conn's buffer or, for a Conn
// of FromUnixConn, into one of bufs, taken once the socket is readable
// (the caller puts it back).
func (c *Conn) recvmsg() (buf *[]byte, n, oobn, flags int, err error) {
	if c.rc == nil {
		for {
			n, oobn, flags, _, err = unix.Recvmsg(c.fd, c.buf, c.oob, unix.MSG_CMSG_CLOEXEC)
			if err != unix.EINTR {
				return &c.buf, n, oobn, flags, err
			}
		}
	}
	rerr := c.rc.Read(func(fd uintptr) bool {
		// Whether anything is there, without a buffer: one is taken
		// only for a datagram that has arrived.
		var peek [1]byte
		if _, _, perr := unix.Recvfrom(int(fd), peek[:], unix.MSG_PEEK|unix.MSG_DONTWAIT); perr == unix.EAGAIN || perr == unix.EINTR {
			return false
		}
		buf = bufs.Get().(*[]byte)
		n, oobn, flags, _, err = unix.Recvmsg(int(fd), *buf, c.oob, unix.MSG_CMSG_CLOEXEC|unix.MSG_DONTWAIT)
		return true
	})
	if rerr != nil {
		err = rerr
	}
	return buf, n, oobn, flags, err
}

// parseRights returns the descriptors of SCM_RIGHTS messages in oob.
func parseRights(oob []byte) ([]*os.File, error) {
	if len(oob) == 0 {
		return nil, nil
	}
	cmsgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, err
	}
	var files []*os.File
	var bad error
	for _, cm := range cmsgs {
		fds, err := unix.ParseUnixRights(&cm)
		if err != nil {
			bad = err
			continue
		}
		for _, fd := range fds {
			files = append(files, os.NewFile(uintptr(fd), "received"))
		}
	}
	return files, bad
}

// Dial connects to the message socket at path (gotd's, for gotsh and
// gotctl).
func Dial(path string) (*Conn, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("msg: socket: %w", err)
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("msg: connect to %s: %w", path, err)
	}
	return newConn(fd), nil
}
