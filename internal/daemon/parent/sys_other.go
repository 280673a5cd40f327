//go:build !linux

package parent

import "syscall"

// sysProcAttr: children notice the parent's end by their channel's.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }
