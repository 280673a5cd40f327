//go:build !linux

package stream

import (
	"os"
	"syscall"
)

func isTCP(*os.File) bool { return false }

func ackNow(syscall.Conn) {}
