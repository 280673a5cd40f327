// Command gotd is the Git repository server daemon (gotd(8)). Started
// by an operator it is the parent process; it executes itself again
// with -T role for each of its other processes. The role switch and
// each role's sandbox are in roles.go.
package main

import (
	"context"
	"debug/elf"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"gotd/internal/daemon/config"
	"gotd/internal/daemon/ipc"
	"gotd/internal/daemon/logs"
	"gotd/internal/daemon/role/notify"
	"gotd/internal/daemon/role/parent"
	"gotd/internal/daemon/sandbox"
	"gotd/internal/daemon/users"
)

const version = "0.1"

// verbosity counts -v flags.
type verbosity int

func (v *verbosity) String() string   { return strconv.Itoa(int(*v)) }
func (v *verbosity) Set(string) error { *v++; return nil }
func (v *verbosity) IsBoolFlag() bool { return true }

func main() {
	fs := flag.NewFlagSet("gotd", flag.ContinueOnError)
	foreground := fs.Bool("d", false, "stay in the foreground and log to stderr")
	confPath := fs.String("f", config.DefaultFile, "configuration `file`")
	check := fs.Bool("n", false, "check the configuration and exit")
	secretsPath := fs.String("s", config.DefaultSecrets, "secrets `file`")
	showVersion := fs.Bool("V", false, "print the version and exit")
	role := fs.String("T", "", "internal: run as a child process of this role")
	var v verbosity
	fs.Var(&v, "v", "more verbose logs (repeat for debug)")
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: gotd [-dnvV] [-f config] [-s secrets]")
	}
	if err := fs.Parse(splitFlags(os.Args[1:])); err != nil || fs.NArg() > 0 {
		fs.Usage()
		os.Exit(1)
	}
	if *showVersion {
		fmt.Println("gotd", version)
		return
	}
	lo := logs.Options{Foreground: *foreground, Verbosity: int(v)}
	if *role == "" && !*foreground && os.Getenv("GOTD_DAEMON") != "" {
		startup.open()
	}
	if *role != "" {
		lo.Child = true
		if err := runRole(*role, lo); err != nil {
			logs.New(*role, lo).Error("exiting", "err", err)
			os.Exit(1)
		}
		return
	}
	// The secrets file is root's: once the daemon runs as its user, a
	// reload reads it from a descriptor gotctl, run as root, passes.
	checkOwner := os.Geteuid() == 0
	load := func(files parent.ReloadFiles) (*config.Config, error) {
		return loadConfig(files, checkOwner)
	}
	// A secrets file named with -s must be there: without it, accounts
	// would have no passwords and notifications no credentials.
	if flagGiven(fs, "s") {
		if _, err := os.Stat(*secretsPath); err != nil {
			fmt.Fprintln(os.Stderr, "gotd: secrets file:", err)
			os.Exit(1)
		}
	}
	cfg, err := loadFiles(*confPath, *secretsPath, load)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		startup.fail(err)
		os.Exit(1)
	}
	if *check {
		probs := checkSystem(cfg)
		for _, w := range cfg.Warnings {
			if !slices.Contains(probs, w) {
				fmt.Fprintln(os.Stderr, "warning:", w)
			}
		}
		for _, p := range probs {
			fmt.Fprintln(os.Stderr, p)
		}
		if len(probs) > 0 {
			os.Exit(1)
		}
		fmt.Fprintln(os.Stderr, "configuration OK")
		return
	}
	if !*foreground && os.Getenv("GOTD_DAEMON") == "" {
		if err := daemonize(); err != nil {
			fmt.Fprintln(os.Stderr, "gotd:", err)
			os.Exit(1)
		}
		return
	}
	log := logs.New("parent", lo)
	for _, w := range cfg.Warnings {
		log.Warn(w)
	}
	if err := runParent(cfg, lo, *confPath, *secretsPath, load); err != nil {
		log.Error("exiting", "err", err)
		startup.fail(err)
		if *foreground {
			fmt.Fprintln(os.Stderr, "gotd:", err)
		}
		os.Exit(1)
	}
}

// flagGiven reports whether the command line set the flag called name.
func flagGiven(fs *flag.FlagSet, name string) bool {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}

// splitFlags turns combined boolean flags ("-dvv") into single ones,
// as getopt accepts them.
func splitFlags(args []string) []string {
	var out []string
	for i, a := range args {
		if a == "--" || !strings.HasPrefix(a, "-") || len(a) < 3 || strings.Trim(a[1:], "dnvV") != "" {
			if a == "--" {
				return append(out, args[i:]...)
			}
			out = append(out, a)
			continue
		}
		for _, c := range a[1:] {
			out = append(out, "-"+string(c))
		}
	}
	return out
}

// loadFiles opens the configuration and secrets files and parses them
// with load.
func loadFiles(confPath, secretsPath string, load func(parent.ReloadFiles) (*config.Config, error)) (*config.Config, error) {
	files := parent.ReloadFiles{ConfigPath: confPath, SecretsPath: secretsPath}
	f, err := os.OpenFile(confPath, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	files.Config = f
	s, err := os.OpenFile(secretsPath, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	switch {
	case err == nil:
		defer s.Close()
		files.Secrets = s
	case !errors.Is(err, os.ErrNotExist):
		return nil, err
	}
	return load(files)
}

// loadConfig parses the configuration in files with its secrets file,
// if there is one; checkOwner: the secrets file must be root's and
// private (gotd was started as root).
func loadConfig(files parent.ReloadFiles, checkOwner bool) (*config.Config, error) {
	var opts config.Options
	if files.Secrets != nil {
		s, err := config.ReadSecrets(files.Secrets, files.SecretsPath, checkOwner)
		if err != nil {
			return nil, err
		}
		opts.Secrets = s
	}
	opts.UserExists = func(name string) bool {
		// A uid needs no account: limits are by uid.
		if _, err := strconv.ParseUint(name, 10, 32); err == nil {
			return true
		}
		u, err := users.ByName(name)
		return err == nil && u != nil
	}
	opts.GroupExists = func(name string) bool {
		if _, err := strconv.ParseUint(name, 10, 32); err == nil {
			return true
		}
		g, err := users.GroupByName(name)
		return err == nil && g != nil
	}
	data, err := config.ReadAll(files.Config, config.MaxFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", files.ConfigPath, err)
	}
	return config.Parse(files.ConfigPath, data, opts)
}

// runParent binds the socket, gives up root, sandboxes the parent and
// runs the daemon.
func runParent(cfg *config.Config, lo logs.Options, confPath, secretsPath string, load func(parent.ReloadFiles) (*config.Config, error)) error {
	log := logs.New("parent", lo)
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	if exe, err = filepath.EvalSymlinks(exe); err != nil {
		return err
	}
	// Opened while still root: the daemon's user may not reach it.
	if exe, err = selfExe(exe); err != nil {
		return err
	}
	l, err := listenSocket(cfg.ListenOn)
	if err != nil {
		return err
	}
	// Ports and keys may need root: taken before it is given up.
	fes, err := frontends(cfg, log)
	if err != nil {
		return err
	}
	mls, err := bind(log, parent.RoleMetrics, cfg.Metrics)
	if err != nil {
		return err
	}
	self := uint32(os.Geteuid())
	// gotctl: root, and whoever started gotd; not the configured user,
	// which other services may share (issue 19). The control group is
	// resolved with the limits.
	control := []uint32{0}
	if self != 0 {
		control = append(control, self)
	}
	if self == 0 {
		u, err := users.ByName(cfg.User)
		if err != nil {
			return err
		}
		if u == nil {
			return fmt.Errorf("user %q does not exist (gotd.conf 'user')", cfg.User)
		}
		if pid, comm := otherProcess(u.UID); pid != 0 {
			log.Warn("the daemon's user is shared with other services: they could read and write what gotd writes and signal its processes; give gotd an account of its own",
				"user", u.Name, "other-pid", pid, "other-command", comm)
		}
		// The notification spool is the daemon's user's.
		if cfg.NotifyTargets() {
			if err := notify.PrepareSpool(cfg.NotifySpool, u.UID, u.GID); err != nil {
				return err
			}
		}
		// So is the push mirrors' spool.
		if err := parent.PrepareMirrorSpool(cfg, u.UID, u.GID); err != nil {
			return err
		}
		// Everything from here on, children included, runs as the
		// configured user. Go changes every thread's credentials.
		if err := syscall.Setgroups([]int{u.GID}); err != nil {
			return fmt.Errorf("setgroups: %w", err)
		}
		if err := syscall.Setgid(u.GID); err != nil {
			return fmt.Errorf("setgid: %w", err)
		}
		if err := syscall.Setuid(u.UID); err != nil {
			return fmt.Errorf("setuid: %w", err)
		}
		log.Info("running as the configured user", "user", u.Name, "uid", u.UID)
	} else {
		name := strconv.Itoa(int(self))
		if u, _ := users.ByUID(int(self)); u != nil {
			name = u.Name
		}
		log.Warn("started by an ordinary user: every process runs as that user, 'user' in gotd.conf is not used", "user", name)
	}
	// The parent may execute only its own binary (and its ELF
	// interpreter); files it may reach with its Unix permissions, so
	// that a reload can add repositories. Its children inherit both
	// and narrow them; socket creation stays for notify.
	pol := sandbox.Policy{Role: "parent", Exec: true, ExecFiles: execFiles(exe), AnyPath: true, Sockets: true}
	rep, err := sandbox.Apply(pol)
	if err != nil {
		return err
	}
	if len(rep.Missing) > 0 {
		log.Warn("the kernel lacks sandboxing facilities: running without them", "missing", rep.Missing)
	}
	return parent.Main(context.Background(), log, parent.Options{
		Config:      cfg,
		Foreground:  lo.Foreground,
		Verbosity:   lo.Verbosity,
		Exe:         exe,
		Listener:    l,
		ConfigPath:  confPath,
		SecretsPath: secretsPath,
		Reload:      load,
		ControlUIDs: control,
		Limits:      limits,
		Frontends:   fes,
		Ready:       startup.ready,
		Metrics:     mls,
	})
}

// execFiles is the binary and its ELF interpreter, if it has one.
func execFiles(exe string) []string {
	files := []string{exe}
	f, err := elf.Open(exe)
	if err != nil {
		return files
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err == nil && len(b) > 1 {
				interp := string(b[:len(b)-1]) // NUL-terminated
				if real, err := filepath.EvalSymlinks(interp); err == nil {
					files = append(files, interp, real)
				}
			}
		}
	}
	return files
}

// listenSocket binds the unix socket that gotsh and gotctl reach, after
// removing a stale one (a socket nobody listens on).
func listenSocket(path string) (*net.UnixListener, error) {
	if c, err := net.Dial("unixpacket", path); err == nil {
		c.Close()
		return nil, fmt.Errorf("%s: gotd is already running", path)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a socket", path)
		}
		os.Remove(path)
	}
	l, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		return nil, err
	}
	l.SetUnlinkOnClose(false) // the listen process holds it; the parent's copy closes early
	// Anyone may connect: who they are comes from the kernel, and what
	// they may do from the rules.
	if err := os.Chmod(path, 0o666); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// limits resolves the configuration's connection limits to uids.
func limits(cfg *config.Config) *ipc.Limits {
	l := &ipc.Limits{Default: config.DefaultUserLimit, Total: config.MaxClients,
		PendingTotal: uint32(cfg.PendingTotal), PendingPerUser: uint32(cfg.PendingPerUser)}
	for name, n := range cfg.UserLimits {
		uid, err := strconv.Atoi(name)
		if err != nil {
			u, _ := users.ByName(name)
			if u == nil {
				continue
			}
			uid = u.UID
		}
		l.UIDs = append(l.UIDs, uint32(uid))
		l.PerUID = append(l.PerUID, uint32(n))
	}
	if name := cfg.ControlGroup; name != "" {
		if gid, err := strconv.ParseUint(name, 10, 32); err == nil {
			l.ControlGIDs = []uint32{uint32(gid)}
		} else if g, _ := users.GroupByName(name); g != nil {
			l.ControlGIDs = []uint32{uint32(g.GID)}
		}
	}
	return l
}

// otherProcess returns a process running as uid (real or effective)
// and its command name, or 0: a sign that the account is shared.
func otherProcess(uid int) (int, string) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, ""
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		status, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		var name string
		for line := range strings.Lines(string(status)) {
			f := strings.Fields(line)
			switch {
			case len(f) >= 2 && f[0] == "Name:":
				name = f[1]
			case len(f) >= 3 && f[0] == "Uid:":
				if f[1] == strconv.Itoa(uid) || f[2] == strconv.Itoa(uid) {
					return pid, name
				}
			}
		}
	}
	return 0, ""
}
