package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"gotd/internal/daemon/config"
	"gotd/internal/daemon/frontend"
	"gotd/internal/daemon/ipc"
	"gotd/internal/daemon/logs"
	"gotd/internal/daemon/memlimit"
	"gotd/internal/daemon/msg"
	"gotd/internal/daemon/role/auth"
	"gotd/internal/daemon/role/fetch"
	"gotd/internal/daemon/role/gitd"
	"gotd/internal/daemon/role/httpd"
	"gotd/internal/daemon/role/listen"
	"gotd/internal/daemon/role/metrics"
	"gotd/internal/daemon/role/notify"
	"gotd/internal/daemon/role/parent"
	"gotd/internal/daemon/role/repowrite"
	"gotd/internal/daemon/role/send"
	"gotd/internal/daemon/role/sessionread"
	"gotd/internal/daemon/role/sessionwrite"
	"gotd/internal/daemon/role/sshd"
	"gotd/internal/daemon/role/upkeep"
	"gotd/internal/daemon/role/web"
	"gotd/internal/daemon/sandbox"
	"gotd/internal/daemon/users"
	"gotd/internal/git/repo"
	"gotd/internal/protocol/pktline"
	"gotd/internal/protocol/receive"
)

// runRole is the role switch: each child opens what it needs from the
// descriptors the parent passed, confines itself to its role, and only
// then runs the role, which is when client bytes start to arrive.
func runRole(role string, lo logs.Options) error {
	if os.Geteuid() == 0 {
		return errors.New("a gotd child must not run as root")
	}
	nameProcess()
	log := logs.New(role, lo)
	ctx := context.Background()
	parentCh := ipc.Inherited(ipc.FDParent, "parent")
	switch role {
	case parent.RoleListen:
		l, err := listen.Listener(os.NewFile(ipc.FDPeer, "listener"))
		if err != nil {
			return err
		}
		// Accepting on the socket it was given and passing descriptors
		// on: no files, no new sockets.
		if err := confine(log, sandbox.Policy{Role: role}); err != nil {
			return err
		}
		if err := ready(parentCh); err != nil {
			return err
		}
		return listen.Main(ctx, log, parentCh, l)

	case parent.RoleAuth:
		// The user and group databases, to name the client and its
		// groups, opened now: a file renamed over them later (useradd)
		// is one the sandbox would refuse (issue 19). Nothing else.
		db, err := users.Open()
		if err != nil {
			return err
		}
		if err := confine(log, sandbox.Policy{Role: role}); err != nil {
			db.Close()
			return err
		}
		return auth.Main(ctx, log, parentCh, db)

	case parent.RoleNotify:
		s, err := notify.ReadSettings(parentCh)
		if err != nil {
			return err
		}
		// The system's certificate roots are read now, once: HTTPS and
		// STARTTLS verify against them.
		x509.SystemCertPool()
		// Network: SMTP and HTTP(S) to the configured targets' ports
		// only, and name resolution; its spool; nothing else. The
		// parent restarts it when a reload changes either.
		pol := sandbox.Policy{Role: role, Sockets: true, ConnectTCP: s.Ports()}
		pol.ReadFiles = []string{"/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf", "/etc/services"}
		if s.Spool != "" {
			pol.WriteDirs = []string{s.Spool}
		}
		if err := confine(log, pol); err != nil {
			return err
		}
		if err := ready(parentCh); err != nil {
			return err
		}
		return notify.Main(ctx, log, parentCh, s)

	case parent.RoleSSHD, parent.RoleGitD, parent.RoleHTTPD:
		ls, err := frontend.Listeners()
		if err != nil {
			return err
		}
		// Network-facing: accepts on the sockets it was given and relays
		// client streams through socket pairs to the processes the
		// parent starts. No files, no outgoing connections.
		if err := confine(log, sandbox.Policy{Role: role, Pairs: true}); err != nil {
			return err
		}
		via := map[string]uint32{parent.RoleSSHD: ipc.ViaSSH, parent.RoleGitD: ipc.ViaGit, parent.RoleHTTPD: ipc.ViaHTTP}[role]
		s := frontend.New(log, via, parentCh)
		creds, err := s.Start()
		if err != nil {
			return err
		}
		if err := ready(parentCh); err != nil {
			return err
		}
		switch role {
		case parent.RoleSSHD:
			return sshd.Main(ctx, log, s, creds, ls)
		case parent.RoleGitD:
			return gitd.Main(ctx, log, s, ls)
		}
		return httpd.Main(ctx, log, s, creds, ls)

	case parent.RoleMetrics:
		ls, err := frontend.Listeners()
		if err != nil {
			return err
		}
		// Serves the parent's counts over HTTP: accepts on the sockets
		// it was given (Accept), asks the parent on its channel. No
		// files, no new sockets, no outgoing connections.
		if err := confine(log, sandbox.Policy{Role: role, Accept: true}); err != nil {
			return err
		}
		return metrics.Main(ctx, log, parentCh, ls, version)

	case parent.RoleSessionRead, parent.RoleSessionWrite:
		var in, out *os.File
		if role == parent.RoleSessionRead {
			// Its client's streams come on its channel: the parent may
			// have started it before the client came, so that the
			// client does not wait for the process to start (a spare,
			// which serves one client as any session process does).
			var err error
			if in, out, err = ipc.RecvStreams(parentCh); err != nil {
				return err
			}
			retitle("gotd: " + role) // no longer parent.SpareTitle
		} else {
			in, out = ipc.ClientFile(ipc.FDInput, "client input"), ipc.ClientFile(ipc.FDOutput, "client output")
		}
		start, r, err := startRepo(log, parentCh, role == parent.RoleSessionWrite, out)
		if err != nil {
			return err
		}
		if role == parent.RoleSessionRead {
			// Negotiation and the pack read the repository; nothing
			// else. The pack goes to the client's stream it holds.
			if err := confine(log, sandbox.Policy{Role: role, ReadDirs: []string{start.Path}}); err != nil {
				return err
			}
			return sessionread.Main(ctx, log, &sessionread.Session{Start: *start, Parent: parentCh, In: in, Out: out, Repo: r})
		}
		peer := ipc.Inherited(ipc.FDPeer, "repo")
		// The one role that writes a repository: it installs the pack
		// and moves references (lock files, renames). It also takes the
		// repository's prune lock shared from its connectivity check to
		// its reference updates: it creates gotd-prune.lock in the
		// repository, read-only, if missing (write access there), and
		// flock(2)s it, which the seccomp list allows every role
		// (OpenBSD: the flock promise, with wpath); it sets the time of
		// a pack or loose object a push names again (utimensat, allowed
		// every role; OpenBSD: fattr).
		if err := confine(log, sandbox.Policy{Role: role, ReadDirs: []string{start.Path}, WriteDirs: []string{start.Path}}); err != nil {
			return err
		}
		return sessionwrite.Main(ctx, log, &sessionwrite.Session{Start: *start, Parent: parentCh, RepoWrite: peer, In: in, Out: out, Repo: r})

	case parent.RoleRepoWrite:
		start, r, err := startRepo(log, parentCh, true, nil)
		if err != nil {
			return err
		}
		// Reads the repository to complete thin packs; writes only the
		// push's quarantine directory.
		if err := confine(log, sandbox.Policy{Role: role, ReadDirs: []string{start.Path}, WriteDirs: []string{start.Quarantine}}); err != nil {
			return err
		}
		return repowrite.Main(ctx, log, start, ipc.Inherited(ipc.FDPeer, "session"), r)

	case parent.RoleUpkeep:
		var start ipc.UpkeepStart
		if _, err := ipc.Recv(parentCh, &start, false); err != nil {
			return fmt.Errorf("upkeep start: %w", err)
		}
		// The lowest priority, set before the sandbox, which denies
		// setpriority: upkeep yields the CPU to the clients it must
		// never slow down.
		if err := unix.Setpriority(unix.PRIO_PROCESS, 0, 19); err != nil {
			log.Debug("cannot lower the priority", "err", err)
		}
		r, err := repo.Open(start.Path, repo.Options{})
		if err != nil {
			return err
		}
		// Read and write on its one repository: it writes the new
		// pack, its index and bitmap, loose objects that lose their
		// pack, its lock files (gotd-upkeep.lock, and gotd-prune.lock,
		// flock(2)ed exclusive around a full repack's removal), and
		// removes what is redundant. No other
		// files, no sockets: it answers on the channel it was given.
		if err := confine(log, sandbox.Policy{Role: role, ReadDirs: []string{start.Path}, WriteDirs: []string{start.Path}}); err != nil {
			return err
		}
		return upkeep.Main(ctx, log, parentCh, &start, r)

	case parent.RoleSend:
		j, err := send.ReadJob(parentCh)
		if err != nil {
			return err
		}
		port, err := send.Port(j.Start.URL)
		if err != nil {
			return err
		}
		r, err := repo.Open(j.Start.Path, repo.Options{})
		if err != nil {
			return err
		}
		// The system's certificate roots are read now, once, for an
		// HTTP(S) target without a CA of its own: HTTPS verifies
		// against them.
		readRoots(j.Start.URL, j.Start.CA)
		// Network: TCP to its one target's port, and name resolution
		// (port 53 for answers too long for UDP); the repository,
		// read-only, to build the pack; the known_hosts file of an SSH
		// target. Nothing else: it writes no file.
		pol := sandbox.Policy{Role: role, Sockets: true, ConnectTCP: []uint16{53, port}, ReadDirs: []string{j.Start.Path}}
		pol.ReadFiles = []string{"/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf", "/etc/services"}
		if j.Start.KnownHosts != "" {
			pol.ReadFiles = append(pol.ReadFiles, j.Start.KnownHosts)
		}
		if err := confine(log, pol); err != nil {
			return err
		}
		return send.Main(ctx, log, parentCh, j, r)
	case parent.RoleFetch:
		var start ipc.MirrorStart
		if _, err := ipc.Recv(parentCh, &start, false); err != nil {
			return fmt.Errorf("fetch start: %w", err)
		}
		if q := start.Quarantine; filepath.Dir(q) != filepath.Join(start.Path, "objects") || !strings.HasPrefix(filepath.Base(q), receive.QuarantinePrefix) {
			return fmt.Errorf("fetch start: bad quarantine %q", q)
		}
		(&memlimit.Ceiling{Limit: int64(start.MemoryLimit), Log: log}).Start()
		r, err := repo.Open(start.Path, repo.Options{})
		if err != nil {
			return err
		}
		// The system's certificate roots, read now, once, for an
		// HTTP(S) upstream without a CA of its own: an https upstream
		// is verified against them. (Read for every sync, they were
		// two thirds of the CPU of a git:// sync with nothing new.)
		readRoots(start.URL, start.CA)
		// Reads the repository, for the haves and to complete a thin
		// pack; writes only the sync's quarantine, where the pack is
		// indexed. Its own SSH key and known_hosts file, if it has
		// them.
		pol := sandbox.Policy{Role: role, ReadDirs: []string{start.Path}, WriteDirs: []string{start.Quarantine}}
		for _, f := range []string{start.KeyFile, start.KnownHosts} {
			if f != "" {
				pol.ReadFiles = append(pol.ReadFiles, f)
			}
		}
		m := config.Mirror{URL: start.URL}
		if port := m.Port(); port != 0 {
			// Network: TCP to the upstream's port only (Landlock ABI
			// 4), and name resolution.
			pol.Sockets, pol.ConnectTCP = true, []uint16{port}
			pol.ReadFiles = append(pol.ReadFiles, "/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf", "/etc/services")
		} else {
			// A local upstream: read that repository, no network.
			pol.ReadDirs = append(pol.ReadDirs, strings.TrimPrefix(start.URL, "file://"))
		}
		writer := ipc.Inherited(ipc.FDPeer, "session_write")
		if err := confine(log, pol); err != nil {
			return err
		}
		return fetch.Main(ctx, log, &start, writer, r)
	case parent.RoleWeb:
		setup, err := web.ReadStart(parentCh)
		if err != nil {
			return err
		}
		(&memlimit.Ceiling{Limit: int64(setup.Start.MemoryLimit), Log: log}).Start()
		site, dirs := web.Open(log, setup)
		// Reads the repositories its visitor may read, and nothing
		// else: no writes, no sockets; each page arrives as a stream
		// the parent passes on its channel and is answered on it.
		if err := confine(log, sandbox.Policy{Role: role, ReadDirs: dirs}); err != nil {
			return err
		}
		return web.Main(ctx, log, parentCh, site, &setup.Start)
	}
	return fmt.Errorf("unknown role %q", role)
}

// readRoots reads the system's certificate roots, which a sandboxed
// process cannot read later, when url is HTTP or HTTPS (a redirect may
// lead from one to the other) and ca, the configured roots that replace
// them, is empty.
func readRoots(url string, ca []byte) {
	if len(ca) == 0 && (strings.HasPrefix(url, "https://") || strings.HasPrefix(url, "http://")) {
		x509.SystemCertPool()
	}
}

// ready tells the parent that a long-lived role has confined itself
// and serves from now on: gotd's start waits for it (ipc.Ready).
func ready(parentCh *msg.Conn) error {
	if err := ipc.Send(parentCh, &ipc.Ready{}, nil); err != nil {
		return fmt.Errorf("ready: %w", err)
	}
	return nil
}

// confine applies a role's sandbox, logging what the kernel lacks.
func confine(log *slog.Logger, p sandbox.Policy) error {
	rep, err := sandbox.Apply(p)
	if err != nil {
		return err
	}
	if len(rep.Missing) > 0 {
		log.Debug("sandbox incomplete", "missing", rep.Missing)
	}
	return nil
}

// startRepo reads the parent's Start message, gives the process its
// memory budget, and opens its repository. A write role's quarantine
// must be a directory of the repository's objects directory. out is
// the client's stream of a session process (nil for a repo process).
func startRepo(log *slog.Logger, parentCh *msg.Conn, write bool, out *os.File) (*ipc.Start, *repo.Repo, error) {
	var start ipc.Start
	if _, err := ipc.Recv(parentCh, &start, false); err != nil {
		return nil, nil, fmt.Errorf("start: %w", err)
	}
	limitMemory(log, &start, out)
	if !filepath.IsAbs(start.Path) {
		return nil, nil, fmt.Errorf("start: repository path %q is not absolute", start.Path)
	}
	if write && start.Mode != ipc.ModeAdvertise {
		q := start.Quarantine
		if filepath.Dir(q) != filepath.Join(start.Path, "objects") || !strings.HasPrefix(filepath.Base(q), receive.QuarantinePrefix) {
			return nil, nil, fmt.Errorf("start: bad quarantine %q", q)
		}
	}
	r, err := repo.Open(start.Path, repo.Options{})
	if err != nil {
		return nil, nil, err
	}
	return &start, r, nil
}

// limitMemory gives a process that serves one client, a session or a
// repo process, its memory budget: the one place roles set it. Past it
// the process ends (memlimit), after a session process has told its
// client on out (session_read, while it sends a pack on a side-band,
// on the error band: memlimit.SetTell in sessionread). Either way only
// that client's processes end.
func limitMemory(log *slog.Logger, start *ipc.Start, out *os.File) {
	c := &memlimit.Ceiling{Limit: int64(start.MemoryLimit), Log: log}
	if out != nil {
		c.Tell = func() { pktline.NewWriter(out).WriteString("ERR " + memlimit.Message + "\n") }
	}
	c.Start()
}
