// Package stream holds what the session and repo processes do to the
// client's stream itself, below the Git protocol: the limits of its
// pace (Guard) and quick acknowledgements on TCP.
package stream

import "syscall"

// AckNow puts c, when it is a TCP socket, in quick-ACK mode until the
// kernel leaves it (after the next segments): call it after each read
// of a connection whose peer may hold small writes back (Nagle).
func AckNow(c syscall.Conn) { ackNow(c) }
