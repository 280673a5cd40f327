package ipc

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"gotd/internal/daemon/msg"
)

// SendStreams: parent → session_read; two Stream messages, each with
// one direction of the client's stream (input, then output), both
// naming the client. A session_read process receives its client's
// streams on its channel, not as descriptors found open at its start,
// so that the parent can start one before its client comes (see
// DESIGN.md, "a spare session_read").
func SendStreams(c *msg.Conn, client uint32, in, out *os.File) error {
	if err := Send(c, &Stream{Client: client}, in); err != nil {
		return fmt.Errorf("client input: %w", err)
	}
	if err := Send(c, &Stream{Client: client, Output: true}, out); err != nil {
		return fmt.Errorf("client output: %w", err)
	}
	return nil
}

// RecvStreams receives what SendStreams sent: the client's input and
// output, made non-blocking as ClientFile makes them. Anything else (a
// message of another type or without its descriptor, the output first,
// client 0, two clients) is an error, and every descriptor received is
// closed.
func RecvStreams(c *msg.Conn) (in, out *os.File, err error) {
	var files [2]*os.File
	var client uint32
	for i, name := range []string{"client input", "client output"} {
		var m Stream
		f, err := Recv(c, &m, true)
		if err == nil {
			switch {
			case m.Output != (i == 1):
				err = errors.New("streams out of order")
			case m.Client == 0 || i == 1 && m.Client != client:
				err = fmt.Errorf("stream of client %d", m.Client)
			}
			client = m.Client
		}
		if err == nil {
			files[i], err = clientFile(f, name)
		}
		if err != nil {
			if f != nil {
				f.Close()
			}
			if files[0] != nil {
				files[0].Close()
			}
			return nil, nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	return files[0], files[1], nil
}

// clientFile is f made non-blocking under a new descriptor, so that
// the runtime's poller, and read deadlines, apply to it: f, as msg
// receives it, is a blocking file, which is closed.
func clientFile(f *os.File, name string) (*os.File, error) {
	defer f.Close()
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), name), nil
}
