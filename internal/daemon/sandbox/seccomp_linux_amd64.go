//go:build linux && amd64

package sandbox

import (
	"fmt"
	"runtime"
	"slices"
	"unsafe"

	"golang.org/x/sys/unix"
)

// allowed are the system calls every role may make: those of the Go
// runtime, file access (which Landlock confines), and I/O on
// descriptors the role already has.
var allowed = []uint32{
	unix.SYS_READ, unix.SYS_WRITE, unix.SYS_READV, unix.SYS_WRITEV, unix.SYS_PREAD64, unix.SYS_PWRITE64, unix.SYS_LSEEK, unix.SYS_CLOSE, unix.SYS_CLOSE_RANGE,
	unix.SYS_FSTAT, unix.SYS_STAT, unix.SYS_LSTAT, unix.SYS_NEWFSTATAT, unix.SYS_STATX, unix.SYS_STATFS, unix.SYS_FSTATFS,
	unix.SYS_OPEN, unix.SYS_OPENAT, unix.SYS_OPENAT2, unix.SYS_ACCESS, unix.SYS_FACCESSAT, unix.SYS_FACCESSAT2, unix.SYS_READLINK, unix.SYS_READLINKAT,
	unix.SYS_GETDENTS64, unix.SYS_GETCWD, unix.SYS_CHDIR, unix.SYS_FCHDIR, unix.SYS_FCNTL, unix.SYS_FLOCK, unix.SYS_FSYNC, unix.SYS_FDATASYNC, unix.SYS_FTRUNCATE,
	unix.SYS_FALLOCATE, unix.SYS_FADVISE64, unix.SYS_RENAME, unix.SYS_RENAMEAT, unix.SYS_RENAMEAT2, unix.SYS_MKDIR, unix.SYS_MKDIRAT, unix.SYS_RMDIR,
	unix.SYS_LINK, unix.SYS_LINKAT, unix.SYS_UNLINK, unix.SYS_UNLINKAT, unix.SYS_SYMLINK, unix.SYS_SYMLINKAT, unix.SYS_CHMOD, unix.SYS_FCHMOD, unix.SYS_FCHMODAT,
	unix.SYS_UTIMENSAT, unix.SYS_UMASK, unix.SYS_COPY_FILE_RANGE, unix.SYS_SENDFILE, unix.SYS_SPLICE,
	unix.SYS_MMAP, unix.SYS_MUNMAP, unix.SYS_MPROTECT, unix.SYS_MREMAP, unix.SYS_MADVISE, unix.SYS_BRK, unix.SYS_MINCORE,
	unix.SYS_RT_SIGACTION, unix.SYS_RT_SIGPROCMASK, unix.SYS_RT_SIGRETURN, unix.SYS_SIGALTSTACK, unix.SYS_RT_SIGSUSPEND,
	unix.SYS_FUTEX, unix.SYS_SET_ROBUST_LIST, unix.SYS_GET_ROBUST_LIST, unix.SYS_SET_TID_ADDRESS, unix.SYS_RSEQ, unix.SYS_RESTART_SYSCALL,
	// clone3: the C library creates threads with it (a cgo build),
	// and seccomp cannot look into its argument to tell a thread from
	// a process; without exec a process is only another of the role.
	unix.SYS_CLONE, unix.SYS_CLONE3, unix.SYS_EXIT, unix.SYS_EXIT_GROUP, unix.SYS_GETTID, unix.SYS_GETPID, unix.SYS_GETPPID, unix.SYS_SCHED_YIELD,
	unix.SYS_SCHED_GETAFFINITY, unix.SYS_NANOSLEEP, unix.SYS_CLOCK_NANOSLEEP, unix.SYS_CLOCK_GETTIME, unix.SYS_CLOCK_GETRES, unix.SYS_GETTIMEOFDAY, unix.SYS_TIME,
	unix.SYS_GETRLIMIT, unix.SYS_PRLIMIT64, unix.SYS_GETRUSAGE, unix.SYS_UNAME, unix.SYS_GETRANDOM, unix.SYS_ARCH_PRCTL, unix.SYS_PRCTL, unix.SYS_MEMBARRIER,
	unix.SYS_GETUID, unix.SYS_GETEUID, unix.SYS_GETGID, unix.SYS_GETEGID, unix.SYS_GETGROUPS, unix.SYS_GETRESUID, unix.SYS_GETRESGID,
	unix.SYS_EPOLL_CREATE1, unix.SYS_EPOLL_CTL, unix.SYS_EPOLL_WAIT, unix.SYS_EPOLL_PWAIT, unix.SYS_EPOLL_PWAIT2, unix.SYS_EVENTFD2, unix.SYS_PIPE, unix.SYS_PIPE2,
	unix.SYS_POLL, unix.SYS_PPOLL, unix.SYS_SELECT, unix.SYS_PSELECT6, unix.SYS_DUP, unix.SYS_DUP2, unix.SYS_DUP3,
	unix.SYS_SENDMSG, unix.SYS_RECVMSG, unix.SYS_SENDTO, unix.SYS_RECVFROM, unix.SYS_SHUTDOWN, unix.SYS_GETSOCKOPT, unix.SYS_SETSOCKOPT,
	unix.SYS_GETSOCKNAME, unix.SYS_GETPEERNAME, unix.SYS_ACCEPT, unix.SYS_ACCEPT4, unix.SYS_WAIT4, unix.SYS_WAITID,
}

// signals are the calls that send a signal. The Go runtime signals its
// own process (kill(getpid()) on a crash, tgkill(getpid(), tid) to
// preempt a goroutine); only a role with Policy.Exec (the parent, which
// starts and ends the others) may signal another process. Every role
// runs as one user: without this a taken-over front-end could kill the
// parent, and with it the daemon (issue 19).
var signals = []uint32{unix.SYS_KILL, unix.SYS_TGKILL}

// ioctls are the only ioctl(2) requests any role may make, compared
// on the whole 64-bit argument. None of gotd's processes makes one
// (strace -f -e ioctl of a daemon serving clones and pushes over every
// front-end shows none); these act on the descriptor itself, and a
// library asking them gets its answer rather than an error. Terminal
// requests stay denied whatever the descriptor: TIOCSTI would type
// into the terminal of the operator who started gotd, TIOCLINUX
// reaches the console (issue 19). TCGETS only reads a terminal's
// settings, which isatty(3) asks.
var ioctls = []uint64{fionread, fionbio, fioclex, fionclex, unix.TCGETS}

// Requests of asm-generic/ioctls.h that x/sys/unix does not name.
const (
	fionread = 0x541b
	fionbio  = 0x5421
	fionclex = 0x5450
	fioclex  = 0x5451
)

// sockets may be made only by roles with Policy.Sockets, and bound
// only by roles with Policy.Bind.
var (
	sockets = []uint32{unix.SYS_SOCKET, unix.SYS_SOCKETPAIR, unix.SYS_CONNECT}
	pairs   = []uint32{unix.SYS_SOCKETPAIR}
	binds   = []uint32{unix.SYS_BIND, unix.SYS_LISTEN}
)

// execs may be made only by roles with Policy.Exec.
var execs = []uint32{unix.SYS_EXECVE, unix.SYS_EXECVEAT, unix.SYS_VFORK, unix.SYS_FORK, unix.SYS_SETSID,
	unix.SYS_SECCOMP, unix.SYS_LANDLOCK_CREATE_RULESET, unix.SYS_LANDLOCK_ADD_RULE, unix.SYS_LANDLOCK_RESTRICT_SELF, unix.SYS_PIDFD_OPEN, unix.SYS_PIDFD_SEND_SIGNAL, unix.SYS_PIDFD_GETFD, unix.SYS_SETUID, unix.SYS_SETGID, unix.SYS_SETGROUPS, unix.SYS_SETRESUID, unix.SYS_SETRESGID}

// applySeccomp loads the allow-list filter for p; denied calls fail
// with EPERM rather than killing the process, so a role reports what
// it was refused. The filter is assembled here from the lists above,
// with the system call numbers of x/sys/unix's constants: no table of
// names is built at every process's start, as a general seccomp
// library does for every architecture it knows.
func applySeccomp(p Policy) (bool, error) {
	// SECCOMP_SET_MODE_STRICT takes no flags: a kernel with seccomp
	// answers EINVAL to a flag, one without ENOSYS (or EINVAL from
	// prctl, never reached here).
	if _, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_STRICT, 1, 0); e != unix.EINVAL {
		return false, nil
	}
	prog := filter(p, uint64(unix.Getpid()))
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return false, fmt.Errorf("no_new_privs: %w", err)
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	// TSYNC: every thread of the process, those the Go runtime has
	// already started included.
	_, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog)
	if e != 0 {
		return false, fmt.Errorf("load filter: %w", e)
	}
	return true, nil
}

// Offsets in struct seccomp_data, and what the filter answers.
const (
	dataNr   = 0
	dataArch = 4
	dataArgs = 16 // six 64-bit arguments, little-endian on amd64

	retAllow  = unix.SECCOMP_RET_ALLOW
	retEPERM  = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	retENOSYS = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)

	// x32Bit marks the system calls of the x32 ABI, whose numbers
	// would otherwise pass for amd64's.
	x32Bit = 0x40000000
)

// argCheck allows a system call when argument arg equals value.
type argCheck struct {
	nr    uint32
	arg   uint32
	value uint64
}

// filter is the classic BPF program of p's allow-list, for a process
// whose id is self. Every comparison that matches is followed by its
// return, so that no jump is longer than a few instructions, whatever
// the lists' lengths.
func filter(p Policy, self uint64) []unix.SockFilter {
	nrs := slices.Clone(allowed)
	if p.Sockets {
		nrs = append(nrs, sockets...)
	}
	if p.Pairs && !p.Sockets {
		nrs = append(nrs, pairs...)
	}
	if p.Bind {
		nrs = append(nrs, binds...)
	}
	var checks []argCheck
	if p.Exec {
		nrs = append(nrs, execs...)
		nrs = append(nrs, signals...)
		nrs = append(nrs, unix.SYS_TKILL)
	} else {
		for _, nr := range signals {
			checks = append(checks, argCheck{nr: nr, arg: 0, value: self})
		}
	}
	for _, req := range ioctls {
		checks = append(checks, argCheck{nr: unix.SYS_IOCTL, arg: 1, value: req})
	}
	stmt := func(code uint16, k uint32) unix.SockFilter { return unix.SockFilter{Code: code, K: k} }
	jump := func(code uint16, k uint32, jt, jf uint8) unix.SockFilter {
		return unix.SockFilter{Code: code, Jt: jt, Jf: jf, K: k}
	}
	const (
		ld  = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		jge = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
		ret = unix.BPF_RET | unix.BPF_K
	)
	prog := []unix.SockFilter{
		stmt(ld, dataArch),
		jump(jeq, unix.AUDIT_ARCH_X86_64, 1, 0),
		stmt(ret, retEPERM),
		stmt(ld, dataNr),
		jump(jge, x32Bit, 0, 1),
		stmt(ret, retENOSYS),
	}
	for _, nr := range nrs {
		prog = append(prog, jump(jeq, nr, 0, 1), stmt(ret, retAllow))
	}
	// Each check: the number (another skips the check, the number
	// still loaded), then the argument's two halves; a mismatch of
	// either reloads the number for the next check.
	for _, c := range checks {
		off := dataArgs + 8*c.arg
		prog = append(prog,
			jump(jeq, c.nr, 0, 6),
			stmt(ld, off),
			jump(jeq, uint32(c.value), 0, 3),
			stmt(ld, off+4),
			jump(jeq, uint32(c.value>>32), 0, 1),
			stmt(ret, retAllow),
			stmt(ld, dataNr),
		)
	}
	return append(prog, stmt(ret, retEPERM))
}
