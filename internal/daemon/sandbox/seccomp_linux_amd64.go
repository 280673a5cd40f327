//go:build linux && amd64

package sandbox

import (
	seccomp "github.com/elastic/go-seccomp-bpf"
	"golang.org/x/sys/unix"
)

// allowed are the system calls every role may make: those of the Go
// runtime, file access (which Landlock confines), and I/O on
// descriptors the role already has.
var allowed = []string{
	"read", "write", "readv", "writev", "pread64", "pwrite64", "lseek", "close", "close_range",
	"fstat", "stat", "lstat", "newfstatat", "statx", "statfs", "fstatfs",
	"open", "openat", "openat2", "access", "faccessat", "faccessat2", "readlink", "readlinkat",
	"getdents64", "getcwd", "chdir", "fchdir", "fcntl", "flock", "fsync", "fdatasync", "ftruncate",
	"fallocate", "fadvise64", "rename", "renameat", "renameat2", "mkdir", "mkdirat", "rmdir",
	"link", "linkat", "unlink", "unlinkat", "symlink", "symlinkat", "chmod", "fchmod", "fchmodat",
	"utimensat", "umask", "copy_file_range", "sendfile", "splice",
	"mmap", "munmap", "mprotect", "mremap", "madvise", "brk", "mincore",
	"rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack", "rt_sigsuspend",
	"futex", "set_robust_list", "get_robust_list", "set_tid_address", "rseq", "restart_syscall",
	// clone3: the C library creates threads with it (a cgo build),
	// and seccomp cannot look into its argument to tell a thread from
	// a process; without exec a process is only another of the role.
	"clone", "clone3", "exit", "exit_group", "gettid", "getpid", "getppid", "sched_yield",
	"sched_getaffinity", "nanosleep", "clock_nanosleep", "clock_gettime", "clock_getres", "gettimeofday", "time",
	"getrlimit", "prlimit64", "getrusage", "uname", "getrandom", "arch_prctl", "prctl", "membarrier",
	"getuid", "geteuid", "getgid", "getegid", "getgroups", "getresuid", "getresgid",
	"epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2", "eventfd2", "pipe", "pipe2",
	"poll", "ppoll", "select", "pselect6", "dup", "dup2", "dup3",
	"sendmsg", "recvmsg", "sendto", "recvfrom", "shutdown", "getsockopt", "setsockopt",
	"getsockname", "getpeername", "accept", "accept4", "wait4", "waitid",
}

// signals are the calls that send a signal. The Go runtime signals its
// own process (kill(getpid()) on a crash, tgkill(getpid(), tid) to
// preempt a goroutine); only a role with Policy.Exec (the parent, which
// starts and ends the others) may signal another process. Every role
// runs as one user: without this a taken-over front-end could kill the
// parent, and with it the daemon (issue 19).
var signals = []string{"kill", "tgkill"}

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
	sockets = []string{"socket", "socketpair", "connect"}
	pairs   = []string{"socketpair"}
	binds   = []string{"bind", "listen"}
)

// execs may be made only by roles with Policy.Exec.
var execs = []string{"execve", "execveat", "vfork", "fork", "setsid",
	"seccomp", "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self", "pidfd_open", "pidfd_send_signal", "pidfd_getfd", "setuid", "setgid", "setgroups", "setresuid", "setresgid"}

// applySeccomp loads the allow-list filter for p; denied calls fail
// with EPERM rather than killing the process, so a role reports what
// it was refused.
func applySeccomp(p Policy) (bool, error) {
	if !seccomp.Supported() {
		return false, nil
	}
	names := append([]string(nil), allowed...)
	if p.Sockets {
		names = append(names, sockets...)
	}
	if p.Pairs && !p.Sockets {
		names = append(names, pairs...)
	}
	if p.Bind {
		names = append(names, binds...)
	}
	if p.Exec {
		names = append(names, execs...)
		names = append(names, signals...)
		names = append(names, "tkill")
	}
	group := seccomp.SyscallGroup{Action: seccomp.ActionAllow, Names: names}
	if !p.Exec {
		self := uint64(unix.Getpid())
		for _, name := range signals {
			group.NamesWithCondtions = append(group.NamesWithCondtions, seccomp.NameWithConditions{
				Name:       name,
				Conditions: seccomp.ArgumentConditions{{Argument: 0, Operation: seccomp.Equal, Value: self}},
			})
		}
	}
	for _, req := range ioctls {
		group.NamesWithCondtions = append(group.NamesWithCondtions, seccomp.NameWithConditions{
			Name:       "ioctl",
			Conditions: seccomp.ArgumentConditions{{Argument: 1, Operation: seccomp.Equal, Value: req}},
		})
	}
	f := seccomp.Filter{
		NoNewPrivs: true,
		Flag:       seccomp.FilterFlagTSync,
		Policy: seccomp.Policy{
			DefaultAction: seccomp.ActionErrno,
			Syscalls:      []seccomp.SyscallGroup{group},
		},
	}
	if err := seccomp.LoadFilter(f); err != nil {
		return false, err
	}
	return true, nil
}
