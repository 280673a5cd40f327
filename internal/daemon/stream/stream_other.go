//go:build !linux

package stream

import (
	"os"
	"syscall"
)

func isTCP(*os.File) bool { return false }

func ackNow(syscall.Conn) {}

func (w *Writer) sendFile(*os.File, int64, int64) (int64, error) { return 0, errNoSendfile }
