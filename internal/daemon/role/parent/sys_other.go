//go:build !linux

package parent

import "syscall"

// sysProcAttr puts a child in a session of its own, without a
// controlling terminal; children notice the parent's end by their
// channel's.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setsid: true} }
