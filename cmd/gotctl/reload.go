package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"syscall"

	"gotd/internal/daemon/config"
	"gotd/internal/daemon/files"
	"gotd/internal/daemon/ipc"
	"gotd/internal/daemon/msg"
)

// reloader is gotctl reload's side of a reload: it opens, with its
// caller's privileges, the files the daemon's user may not read (the
// configuration, the secrets file, and the certificates, keys and host
// keys the configuration names) and passes their descriptors, then
// binds the listening sockets the daemon asks for, only those of the
// configuration it read itself.
type reloader struct {
	config, secrets string // as given with -c and -s
	cfg             *config.Config
}

// send receives the daemon's paths and passes the files.
func (r *reloader) send(conn *msg.Conn) error {
	raw, err := conn.Recv()
	if err != nil {
		return fmt.Errorf("gotd closed the connection: %w", err)
	}
	if raw.Type == ipc.TypeDone {
		var done ipc.Done
		if _, err := ipc.Check(raw, &done, false); err != nil {
			return err
		}
		return errors.New(done.Message)
	}
	var paths ipc.ReloadPaths
	if _, err := ipc.Check(raw, &paths, false); err != nil {
		return err
	}
	// Paths the daemon names are opened only if a user who could
	// have written them is root or the caller: a daemon taken over
	// does not make gotctl, run as root, pass it any file it likes.
	given := func(*os.File) error { return nil }
	confPath, secretsPath := r.config, r.secrets
	trusted, checkSecrets := given, given
	if confPath == "" {
		confPath, trusted = paths.Config, owned
	}
	if secretsPath == "" {
		secretsPath, checkSecrets = paths.Secrets, owned
	}
	// The secrets first: the configuration's notify blocks name them.
	var opts config.Options
	sf, err := openFile(secretsPath)
	switch {
	case err == nil:
		defer sf.Close()
		if err := checkSecrets(sf); err != nil {
			return fmt.Errorf("%s: %w", secretsPath, err)
		}
		data, err := config.ReadAll(sf, config.MaxFile)
		if err != nil {
			return fmt.Errorf("%s: %w", secretsPath, err)
		}
		if opts.Secrets, err = config.ParseSecrets(secretsPath, data); err != nil {
			return err
		}
	case errors.Is(err, os.ErrNotExist) && r.secrets == "":
		// The daemon has no secrets file.
		sf = nil
	default:
		return err
	}
	cf, err := openFile(confPath)
	if err != nil {
		return err
	}
	defer cf.Close()
	if err := trusted(cf); err != nil {
		return fmt.Errorf("%s: %w", confPath, err)
	}
	data, err := config.ReadAll(cf, config.MaxFile)
	if err != nil {
		return fmt.Errorf("%s: %w", confPath, err)
	}
	// Parsed here for the files and listeners it names; gotd parses
	// it again and reports what only it can check.
	if r.cfg, err = config.Parse(confPath, data, opts); err != nil {
		return err
	}
	if err := ipc.Send(conn, &ipc.ReloadFile{Kind: ipc.ReloadConfig, Path: confPath}, cf); err != nil {
		return err
	}
	if sf != nil {
		if err := ipc.Send(conn, &ipc.ReloadFile{Kind: ipc.ReloadSecrets, Path: secretsPath}, sf); err != nil {
			return err
		}
	}
	var others []string
	if len(r.cfg.SSH) > 0 {
		others = append(others, r.cfg.SSHHostKeys...)
	}
	for _, l := range r.cfg.HTTP {
		if l.Certificate != "" {
			others = append(others, l.Certificate, l.Key)
		}
	}
	for _, path := range others {
		f, err := openFile(path)
		if err != nil {
			// gotd reports what it could not read as not applied.
			fmt.Fprintf(os.Stderr, "gotctl: reload: %v\n", err)
			continue
		}
		err = ipc.Send(conn, &ipc.ReloadFile{Kind: ipc.ReloadOther, Path: path}, f)
		f.Close()
		if err != nil {
			return err
		}
	}
	return ipc.Send(conn, &ipc.ReloadEnd{}, nil)
}

// bind answers a ReloadBind: a socket bound to the address, if the
// configuration lists it.
func (r *reloader) bind(conn *msg.Conn, raw msg.Msg) error {
	var m ipc.ReloadBind
	if _, err := ipc.Check(raw, &m, false); err != nil {
		return err
	}
	var listed bool
	for _, ls := range [][]config.Listen{r.cfg.SSH, r.cfg.Git, r.cfg.HTTP} {
		listed = listed || slices.ContainsFunc(ls, func(l config.Listen) bool { return l.Addr() == m.Addr })
	}
	if !listed {
		return ipc.Send(conn, &ipc.ReloadSocket{Addr: m.Addr, Error: "not a listener of the configuration gotctl read"}, nil)
	}
	l, err := net.Listen("tcp", m.Addr)
	if err != nil {
		msg := err.Error()
		var se *os.SyscallError
		if errors.As(err, &se) {
			msg = se.Err.Error()
		}
		return ipc.Send(conn, &ipc.ReloadSocket{Addr: m.Addr, Error: msg}, nil)
	}
	defer l.Close()
	f, err := l.(*net.TCPListener).File()
	if err != nil {
		return err
	}
	defer f.Close()
	return ipc.Send(conn, &ipc.ReloadSocket{Addr: m.Addr}, f)
}

// openFile opens path for reading; not a symbolic link.
func openFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, os.ErrPermission) && os.Geteuid() != 0 {
		err = fmt.Errorf("%w: run gotctl as root", err)
	}
	return f, err
}

// owned checks that f is owned by root or by the caller and writable
// by no one else.
func owned(f *os.File) error {
	switch err := files.CheckOwner(f, 0, uint32(os.Geteuid())); {
	case errors.Is(err, files.ErrOwner):
		return errors.New("not owned by root or by the caller: name it with -c or -s")
	case errors.Is(err, files.ErrWritable):
		return errors.New("writable by its group or others: name it with -c or -s")
	default:
		return err
	}
}
