// Package sandbox confines a gotd process to what its role needs: on
// Linux, Landlock for the filesystem and TCP, and a seccomp allow-list
// of system calls; on OpenBSD, pledge and unveil. A role applies its
// Policy once, after it has opened what it needs and before it reads
// anything from a client.
package sandbox

// Policy is what a role may still do once sandboxed. Everything not
// granted is denied.
type Policy struct {
	// Role names the process in messages.
	Role string
	// ReadDirs and WriteDirs are directory trees the role may read, and
	// read and write. ReadFiles are single files it may read.
	ReadDirs, WriteDirs, ReadFiles []string
	// Exec allows executing programs and changing credentials (only
	// the parent re-executes itself), and what a child needs to
	// sandbox itself in turn: filters are inherited across exec, so
	// the parent's must let its children apply theirs.
	Exec bool
	// ExecFiles are the only files that may be executed (the parent's
	// own binary, and its ELF interpreter if it has one).
	ExecFiles []string
	// AnyPath allows reading and writing any path the process's Unix
	// permissions allow, but no execution outside ExecFiles: the
	// parent's rule, which its children inherit (Landlock domains
	// cross exec) and narrow, and which must leave room for
	// repositories a reloaded configuration adds.
	AnyPath bool
	// Sockets allows creating and connecting sockets. Without it a role
	// can use only the descriptors it was given (accepting connections
	// on a listening socket it holds included).
	Sockets bool
	// Pairs allows creating connected socket pairs (socketpair), which
	// the front-ends relay client streams through; without Sockets, no
	// other socket can be made.
	Pairs bool
	// Accept allows accepting TCP connections on the listening
	// sockets the role was given. On Linux that needs nothing more
	// (socket(2) stays denied); OpenBSD's pledge grants it only with
	// the inet promise, which also allows making Internet sockets.
	Accept bool
	// Bind allows binding and listening, which no sandboxed role needs:
	// the parent binds before its children start.
	Bind bool
	// ConnectTCP lists the only TCP ports the role may connect to, when
	// the kernel can restrict TCP (Landlock ABI 4); nil with Sockets
	// means any.
	ConnectTCP []uint16
}

// Report says what the kernel enforced.
type Report struct {
	Filesystem bool // Landlock (or unveil) confines the filesystem
	TCP        bool // Landlock confines TCP ports
	Syscalls   bool // seccomp (or pledge) confines system calls
	// Missing names facilities the kernel lacks, for a log line.
	Missing []string
}
