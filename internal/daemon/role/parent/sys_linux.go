package parent

import "syscall"

// sysProcAttr makes a child die with the parent, and puts it in a
// session of its own: it has no controlling terminal to type into or
// signal (issue 19).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setsid: true}
}
