package parent

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"reflect"
	"slices"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"gotd/internal/daemon/config"
	"gotd/internal/daemon/files"
	"gotd/internal/daemon/ipc"
	"gotd/internal/daemon/msg"
)

// A reload (gotctl reload, SIGHUP) reads gotd.conf and the secrets file
// again, every time, and the files they name: certificates, their keys
// and the SSH host keys. They are root's, and the parent no longer is:
// gotctl, run as root, opens them and passes their descriptors (as
// OpenBSD's gotctl does), and binds the sockets of new listeners.
// SIGHUP reloads with the parent's own privileges, and fails on what it
// may not read. Nothing is kept from the previous reading: a file that
// cannot be read fails the reload, or the part that needs it, and says
// so; the running configuration stays whole.
//
// The files are read, and the sockets bound, in a goroutine of its own
// (gotctl is waited for with a deadline, and the run loop is not); run
// applies the outcome: the new configuration for new clients, and a
// front-end whose listeners or keys changed replaced by a new process,
// while the old one stops accepting and ends once its clients are done.

// reloadTimeout bounds a reload's exchanges with gotctl.
const reloadTimeout = 30 * time.Second

// ReloadFiles are the files a reload parses, open: the configuration
// and the secrets file, nil when there is none.
type ReloadFiles struct {
	Config      *os.File
	ConfigPath  string
	Secrets     *os.File
	SecretsPath string
}

// reloadSource opens the files of a reload and binds its new sockets.
type reloadSource interface {
	// files returns the configuration and secrets files.
	files() (ReloadFiles, error)
	// open returns a file the configuration names; the source closes it.
	open(path string) (*os.File, error)
	// bind returns a listening socket bound to addr.
	bind(addr string) (*os.File, error)
	// close closes what the source opened (not the sockets bound).
	close()
}

// selfSource is a reload with the parent's privileges (SIGHUP).
type selfSource struct {
	configPath, secretsPath string
	opened                  []*os.File
}

func (s *selfSource) files() (ReloadFiles, error) {
	rf := ReloadFiles{ConfigPath: s.configPath, SecretsPath: s.secretsPath}
	f, err := s.open(s.configPath)
	if err != nil {
		return rf, err
	}
	rf.Config = f
	f, err = s.open(s.secretsPath)
	switch {
	case err == nil:
		rf.Secrets = f
	case errors.Is(err, os.ErrNotExist):
	case errors.Is(err, os.ErrPermission):
		return rf, fmt.Errorf("%w: run gotctl reload as root to pass it", err)
	default:
		return rf, err
	}
	return rf, nil
}

func (s *selfSource) open(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	s.opened = append(s.opened, f)
	return f, nil
}

func (s *selfSource) bind(addr string) (*os.File, error) {
	f, err := bindTCP(addr)
	if err != nil {
		return nil, fmt.Errorf("%w (gotctl reload binds new listeners)", err)
	}
	return f, nil
}

func (s *selfSource) close() {
	for _, f := range s.opened {
		f.Close()
	}
}

// bindTCP listens on addr and returns the socket as a file.
func bindTCP(addr string) (*os.File, error) {
	l, err := net.Listen("tcp", addr)
	var se *os.SyscallError
	if errors.As(err, &se) {
		err = se.Err // the address is in the message already
	}
	if err != nil {
		return nil, err
	}
	defer l.Close()
	return l.(*net.TCPListener).File()
}

// ctlSource is a reload with the files gotctl passed and the sockets
// it binds on request.
type ctlSource struct {
	conn   *msg.Conn
	uc     *net.UnixConn
	rf     ReloadFiles
	others map[string]*os.File
}

// readCtl receives the files gotctl passes, up to ReloadEnd. Each must
// be a regular file owned by one of owners and writable by no one else:
// a member of the control group, who may reload the daemon, may not
// make it read files of the member's own making.
func readCtl(conn *msg.Conn, uc *net.UnixConn, owners []uint32) (*ctlSource, error) {
	s := &ctlSource{conn: conn, uc: uc, others: map[string]*os.File{}}
	uc.SetDeadline(time.Now().Add(reloadTimeout))
	for n := 0; ; n++ {
		raw, err := conn.Recv()
		if errors.Is(err, os.ErrClosed) {
			err = errors.New("closed the connection")
		}
		if err != nil {
			s.close()
			return nil, fmt.Errorf("gotctl: %w", err)
		}
		if raw.Type == ipc.TypeReloadEnd {
			if _, err := ipc.Check(raw, &ipc.ReloadEnd{}, false); err != nil {
				s.close()
				return nil, err
			}
			break
		}
		var m ipc.ReloadFile
		f, err := ipc.Check(raw, &m, true)
		if err == nil && n >= ipc.MaxReloadFiles {
			f.Close()
			err = errors.New("too many files")
		}
		if err == nil {
			if err = checkOwner(f, owners); err != nil {
				f.Close()
				err = fmt.Errorf("%s: %w", m.Path, err)
			}
		}
		if err != nil {
			s.close()
			return nil, fmt.Errorf("gotctl: %w", err)
		}
		switch {
		case m.Kind == ipc.ReloadConfig && s.rf.Config == nil:
			s.rf.Config, s.rf.ConfigPath = f, m.Path
		case m.Kind == ipc.ReloadSecrets && s.rf.Secrets == nil:
			s.rf.Secrets, s.rf.SecretsPath = f, m.Path
		case m.Kind == ipc.ReloadOther && s.others[m.Path] == nil:
			s.others[m.Path] = f
		default:
			f.Close()
			s.close()
			return nil, errors.New("gotctl: a file passed twice")
		}
	}
	if s.rf.Config == nil {
		s.close()
		return nil, errors.New("gotctl passed no configuration file")
	}
	return s, nil
}

// checkOwner checks that f is a regular file owned by one of owners
// and writable by no one else.
func checkOwner(f *os.File, owners []uint32) error {
	if err := files.CheckOwner(f, owners...); errors.Is(err, files.ErrOwner) {
		return errors.New("owned by neither root nor the user who started gotd")
	} else {
		return err
	}
}

func (s *ctlSource) files() (ReloadFiles, error) { return s.rf, nil }

func (s *ctlSource) open(path string) (*os.File, error) {
	if f := s.others[path]; f != nil {
		return f, nil
	}
	return nil, fmt.Errorf("%s: gotctl did not pass it (it could not open it, or read another configuration)", path)
}

func (s *ctlSource) bind(addr string) (*os.File, error) {
	s.uc.SetDeadline(time.Now().Add(reloadTimeout))
	if err := ipc.Send(s.conn, &ipc.ReloadBind{Addr: addr}, nil); err != nil {
		return nil, fmt.Errorf("gotctl: %w", err)
	}
	raw, err := s.conn.Recv()
	if err != nil {
		return nil, fmt.Errorf("gotctl: %w", err)
	}
	var m ipc.ReloadSocket
	if raw.File == nil {
		if _, err := ipc.Check(raw, &m, false); err != nil {
			return nil, fmt.Errorf("gotctl: %w", err)
		}
		if m.Error == "" {
			m.Error = "no socket"
		}
		return nil, errors.New(m.Error)
	}
	f, err := ipc.Check(raw, &m, true)
	if err != nil {
		return nil, fmt.Errorf("gotctl: %w", err)
	}
	if m.Addr != addr {
		f.Close()
		return nil, fmt.Errorf("gotctl: a socket for %s, not %s", m.Addr, addr)
	}
	// A front-end takes its listeners for what they are.
	if v, err := unix.GetsockoptInt(int(f.Fd()), unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil || v != 1 {
		f.Close()
		return nil, errors.New("gotctl: not a listening socket")
	}
	return f, nil
}

func (s *ctlSource) close() {
	for _, f := range []*os.File{s.rf.Config, s.rf.Secrets} {
		if f != nil {
			f.Close()
		}
	}
	for _, f := range s.others {
		f.Close()
	}
}

// frontendRole describes a network front-end's role.
type frontendRole struct {
	role, kind string // the -T role; "ssh", "git" or "http" as in gotd.conf
	via        uint32
	listens    func(*config.Config) []config.Listen
}

var frontendRoles = []frontendRole{
	{RoleSSHD, "ssh", ipc.ViaSSH, func(c *config.Config) []config.Listen { return c.SSH }},
	{RoleGitD, "git", ipc.ViaGit, func(c *config.Config) []config.Listen { return c.Git }},
	{RoleHTTPD, "http", ipc.ViaHTTP, func(c *config.Config) []config.Listen { return c.HTTP }},
}

// ListenName names a listener as gotd.conf writes it, for messages.
func ListenName(kind string, l config.Listen) string {
	a := l.Address
	if a == "" {
		a = "*"
	}
	return fmt.Sprintf("listen %s on %s port %d", kind, a, l.Port)
}

// HostKeys reads the SSH host keys of cfg from the files open returns:
// each must be a regular file inaccessible to its group and others,
// and no two of one key type.
func HostKeys(cfg *config.Config, open func(string) (*os.File, error)) ([]ipc.Credential, error) {
	var creds []ipc.Credential
	types := map[string]string{}
	for _, path := range cfg.SSHHostKeys {
		f, err := open(path)
		if err != nil {
			return nil, fmt.Errorf("ssh hostkey %s: %w", path, err)
		}
		fi, err := f.Stat()
		switch {
		case err != nil:
			return nil, fmt.Errorf("ssh hostkey %s: %w", path, err)
		case !fi.Mode().IsRegular():
			return nil, fmt.Errorf("ssh hostkey %s: not a regular file", path)
		case fi.Mode().Perm()&0o077 != 0:
			return nil, fmt.Errorf("ssh hostkey %s: accessible to others", path)
		}
		key, err := config.ReadAll(f, ipc.MaxPEM)
		if err != nil {
			return nil, fmt.Errorf("ssh hostkey %s: %w", path, err)
		}
		signer, err := ssh.ParsePrivateKey(key)
		if err != nil {
			return nil, fmt.Errorf("ssh hostkey %s: %w", path, err)
		}
		t := signer.PublicKey().Type()
		if other, ok := types[t]; ok {
			return nil, fmt.Errorf("ssh hostkey %s: a %s key, as %s is: one key of each type", path, t, other)
		}
		types[t] = path
		creds = append(creds, ipc.Credential{Kind: ipc.CredHostKey, Key: key})
	}
	return creds, nil
}

// TLSCredential reads the certificate chain and key of an HTTPS
// listener, for the front-end's listener at index, and checks that
// they make a pair.
func TLSCredential(l config.Listen, index int, open func(string) (*os.File, error)) (ipc.Credential, error) {
	var pems [2][]byte
	for i, path := range []string{l.Certificate, l.Key} {
		f, err := open(path)
		if err != nil {
			return ipc.Credential{}, err
		}
		if pems[i], err = config.ReadAll(f, ipc.MaxPEM); err != nil {
			return ipc.Credential{}, fmt.Errorf("%s: %w", path, err)
		}
	}
	if len(pems[0])+len(pems[1]) > ipc.MaxPEM {
		return ipc.Credential{}, fmt.Errorf("%s, %s: certificate and key larger than %d bytes", l.Certificate, l.Key, ipc.MaxPEM)
	}
	if _, err := tls.X509KeyPair(pems[0], pems[1]); err != nil {
		return ipc.Credential{}, fmt.Errorf("%s, %s: %w", l.Certificate, l.Key, err)
	}
	return ipc.Credential{Kind: ipc.CredTLS, Listener: uint32(index), Cert: pems[0], Key: pems[1]}, nil
}

// reloadBase is what a reload compares with: the running configuration
// and front-ends, copied by run.
type reloadBase struct {
	cfg *config.Config
	fes map[string]Frontend // by role
}

// reloadPlan is a reload's outcome, for run to apply.
type reloadPlan struct {
	cfg *config.Config
	fes map[string]*Frontend // by role; none for a role without listeners
	// replace: the role's process is started anew (listeners or keys
	// changed).
	replace map[string]bool
	bound   []*os.File // sockets bound for the reload
	// changes and failures are what changed, and what could not be
	// applied, one line each for gotctl and the log.
	changes, failures []string
}

// prepare reads the configuration and what it names from src, and
// works out what changes from base. It runs outside run.
func (d *daemon) prepare(src reloadSource, base *reloadBase) (*reloadPlan, error) {
	rf, err := src.files()
	if err != nil {
		return nil, err
	}
	cfg, err := d.opts.Reload(rf)
	if err != nil {
		return nil, err
	}
	p := &reloadPlan{cfg: cfg, fes: map[string]*Frontend{}, replace: map[string]bool{}}
	// The unix socket and the user were taken as root at start.
	if cfg.ListenOn != base.cfg.ListenOn {
		p.failures = append(p.failures, fmt.Sprintf("listen on %s: changed, needs a restart", cfg.ListenOn))
		cfg.ListenOn = base.cfg.ListenOn
	}
	if cfg.User != base.cfg.User {
		p.failures = append(p.failures, fmt.Sprintf("user %s: changed, needs a restart", cfg.User))
		cfg.User = base.cfg.User
	}
	// The metrics process keeps the sockets it was started with.
	if !slices.EqualFunc(cfg.Metrics, base.cfg.Metrics, func(a, b config.Listen) bool { return a.Addr() == b.Addr() }) {
		p.failures = append(p.failures, "listen metrics: changed, needs a restart")
		cfg.Metrics = base.cfg.Metrics
	}
	p.changes = append(p.changes, configChanges(base.cfg, cfg)...)
	// The sockets the daemon holds, by address, whichever front-end
	// has them.
	held := map[string]*os.File{}
	for _, f := range base.fes {
		for i, l := range f.Listens {
			held[l.Addr()] = f.Listeners[i]
		}
	}
	for _, r := range frontendRoles {
		old, had := base.fes[r.role]
		oldAddrs := old.addrs()
		nf := &Frontend{Role: r.role, Via: r.via}
		// The host keys first: without them nothing is bound for sshd.
		if r.role == RoleSSHD && len(cfg.SSH) > 0 {
			keys, err := HostKeys(cfg, src.open)
			switch {
			case err != nil && had:
				p.failures = append(p.failures, err.Error()+": the keys read before are served")
				keys = slices.DeleteFunc(slices.Clone(old.Credentials), func(c ipc.Credential) bool { return c.Kind != ipc.CredHostKey })
			case err != nil:
				p.failures = append(p.failures, err.Error()+": the SSH listeners are not started")
				continue
			case had && !sameCreds(old.Credentials, keys):
				p.changes = append(p.changes, "ssh host keys: read anew, changed")
			}
			nf.Credentials = keys
		}
		// A listener that cannot be bound leaves the front-end's
		// listeners as they were: a port moved to one that is taken
		// goes on being served where it was.
		var changes []string
		var bound []*os.File
		bindFailed := false
		for _, l := range r.listens(cfg) {
			name, addr := ListenName(r.kind, l), l.Addr()
			// The certificate before the socket: a listener that
			// cannot serve is not bound.
			if l.Certificate != "" {
				c, err := TLSCredential(l, len(nf.Listeners), src.open)
				if err != nil {
					// Served on with the certificate it has, if it
					// has one.
					i := slices.Index(oldAddrs, addr)
					k := slices.IndexFunc(old.Credentials, func(c ipc.Credential) bool { return c.Kind == ipc.CredTLS && int(c.Listener) == i })
					if i < 0 || k < 0 {
						p.failures = append(p.failures, fmt.Sprintf("%s: certificate: %v", name, err))
						continue
					}
					p.failures = append(p.failures, fmt.Sprintf("%s: certificate: %v: the one read before is served", name, err))
					c = old.Credentials[k]
					c.Listener = uint32(len(nf.Listeners))
				} else if held[addr] != nil && !hasCert(old, addr, c) {
					changes = append(changes, name+": certificate read anew, changed")
				}
				nf.Credentials = append(nf.Credentials, c)
			}
			f := held[addr]
			if f == nil {
				if f, err = src.bind(addr); err != nil {
					p.failures = append(p.failures, fmt.Sprintf("%s: cannot bind: %v", name, err))
					if l.Certificate != "" {
						nf.Credentials = nf.Credentials[:len(nf.Credentials)-1]
					}
					bindFailed = true
					continue
				}
				bound = append(bound, f)
				changes = append(changes, name+": added")
			}
			nf.Listeners = append(nf.Listeners, f)
			nf.Listens = append(nf.Listens, l)
		}
		for i, a := range oldAddrs {
			if !slices.Contains(nf.addrs(), a) && !listed(cfg, a) {
				changes = append(changes, fmt.Sprintf("%s: removed, closed once its clients are done", ListenName(r.kind, old.Listens[i])))
			}
		}
		if bindFailed && had {
			for _, f := range bound {
				f.Close()
			}
			what := "listeners"
			if r.role == RoleHTTPD {
				what = "listeners and certificates"
			}
			p.failures = append(p.failures, fmt.Sprintf("listen %s: %s left as they were", r.kind, what))
			keep := old
			if r.role == RoleSSHD {
				keep.Credentials = nf.Credentials
			}
			nf = &keep
		} else {
			p.changes = append(p.changes, changes...)
			p.bound = append(p.bound, bound...)
		}
		if len(nf.Listeners) == 0 {
			continue
		}
		p.fes[r.role] = nf
		p.replace[r.role] = !had || !slices.Equal(oldAddrs, nf.addrs()) || !sameCreds(old.Credentials, nf.Credentials)
	}
	return p, nil
}

// listed says whether addr is a listener of cfg, of any front-end.
func listed(cfg *config.Config, addr string) bool {
	for _, r := range frontendRoles {
		for _, l := range r.listens(cfg) {
			if l.Addr() == addr {
				return true
			}
		}
	}
	return false
}

// hasCert says whether old serves the certificate and key of c at addr.
func hasCert(old Frontend, addr string, c ipc.Credential) bool {
	i := slices.Index(old.addrs(), addr)
	return slices.ContainsFunc(old.Credentials, func(o ipc.Credential) bool {
		return o.Kind == ipc.CredTLS && int(o.Listener) == i && bytes.Equal(o.Cert, c.Cert) && bytes.Equal(o.Key, c.Key)
	})
}

// sameCreds says whether two lists of credentials are the same.
func sameCreds(a, b []ipc.Credential) bool {
	return slices.EqualFunc(a, b, func(x, y ipc.Credential) bool {
		return x.Kind == y.Kind && x.Listener == y.Listener && bytes.Equal(x.Cert, y.Cert) && bytes.Equal(x.Key, y.Key)
	})
}

// sameRepository says whether two repository blocks say the same,
// wherever they are written.
func sameRepository(a, b *config.Repository) bool {
	x, y := *a, *b
	x.Line, y.Line = 0, 0
	return reflect.DeepEqual(x, y)
}

// configChanges describes what changed in repositories and accounts.
func configChanges(old, cfg *config.Config) []string {
	var out []string
	for _, r := range cfg.Repositories {
		if old.FindRepository(r.Name) == nil {
			out = append(out, fmt.Sprintf("repository %q: added", r.Name))
		}
	}
	for _, r := range old.Repositories {
		switch n := cfg.FindRepository(r.Name); {
		case n == nil:
			out = append(out, fmt.Sprintf("repository %q: removed", r.Name))
		case !sameRepository(r, n):
			out = append(out, fmt.Sprintf("repository %q: changed", r.Name))
		}
	}
	for _, a := range cfg.Accounts {
		o := old.FindAccount(a.Name)
		switch {
		case o == nil:
			out = append(out, fmt.Sprintf("account %s: added", a.Name))
		case o.Password != a.Password || !slices.Equal(o.Tokens, a.Tokens):
			out = append(out, fmt.Sprintf("account %s: password or tokens changed", a.Name))
		case !slices.Equal(o.Keys, a.Keys):
			out = append(out, fmt.Sprintf("account %s: keys changed", a.Name))
		}
	}
	for _, a := range old.Accounts {
		if cfg.FindAccount(a.Name) == nil {
			out = append(out, fmt.Sprintf("account %s: removed", a.Name))
		}
	}
	return out
}

// reloaded is a prepared reload, or why it failed, for run.
type reloaded struct {
	plan *reloadPlan
	err  error
	ctl  *msg.Conn // gotctl's connection, or nil for SIGHUP
	src  reloadSource
}

// startReload reloads from src; ctl, if not nil, is gotctl's
// connection, answered when done. One reload runs at a time.
func (d *daemon) startReload(src func() (reloadSource, error), ctl *msg.Conn) {
	if d.reloading {
		d.log.Warn("reload refused: another one is running")
		if ctl != nil {
			ipc.Send(ctl, &ipc.Done{Status: ipc.StatusFailed, Message: "another reload is running"}, nil)
			ctl.Close()
		}
		return
	}
	d.reloading = true
	base := &reloadBase{cfg: d.cfg, fes: map[string]Frontend{}}
	for _, f := range d.frontends {
		base.fes[f.Role] = f.Frontend
	}
	go func() {
		r := &reloaded{ctl: ctl}
		s, err := src()
		if err == nil {
			r.src = s
			r.plan, err = d.prepare(s, base)
		}
		r.err = err
		d.events <- event{reloaded: r}
	}()
}

// finishReload applies a prepared reload: the configuration for new
// clients (running ones keep the processes, and so the rules, they
// started with), settings to listen and the front-ends, front-ends
// whose listeners or keys changed started anew. It answers gotctl with
// what changed and what was not applied.
func (d *daemon) finishReload(r *reloaded) {
	d.reloading = false
	if r.src != nil {
		defer r.src.close()
	}
	answer := func(lines []string, done ipc.Done) {
		if r.ctl == nil {
			return
		}
		for _, l := range lines {
			ipc.Send(r.ctl, &ipc.Text{Text: truncate(l, ipc.MaxText-1) + "\n"}, nil)
		}
		ipc.Send(r.ctl, &done, nil)
		r.ctl.Close()
	}
	if r.err != nil {
		d.log.Error("reload failed: keeping the running configuration", "err", r.err)
		answer(nil, ipc.Done{Status: ipc.StatusFailed, Message: truncate(r.err.Error(), ipc.MaxMessage)})
		return
	}
	if d.halted {
		for _, f := range r.plan.bound {
			f.Close()
		}
		answer(nil, ipc.Done{Status: ipc.StatusFailed, Message: "the daemon is stopping"})
		return
	}
	p := r.plan
	for _, w := range p.cfg.Warnings {
		d.log.Warn(w)
	}
	d.cfg = p.cfg
	d.startPushMirrors()
	d.scheduleMirrors()
	d.webReload()
	if !d.listen.exited {
		if err := ipc.Send(d.listen.ch, d.limits(), nil); err != nil {
			d.log.Error("reload: cannot update listen's limits", "err", err)
		}
	}
	// The sockets of the front-ends after the reload: those no longer
	// listed are closed once every front-end holding them is started
	// anew.
	keep := map[*os.File]bool{}
	for _, nf := range p.fes {
		for _, f := range nf.Listeners {
			keep[f] = true
		}
	}
	var running []*frontend
	var retire []*frontend
	for _, fr := range frontendRoles {
		cur := d.frontendByRole(fr.role)
		nf := p.fes[fr.role]
		switch {
		case nf == nil && cur == nil:
		case nf == nil:
			retire = append(retire, cur)
		case p.replace[fr.role]:
			f := &frontend{Frontend: *nf}
			if err := d.startFrontend(f); err != nil {
				d.log.Error("reload: cannot start a front-end", "child", fr.role, "err", err)
				p.failures = append(p.failures, fmt.Sprintf("%s: cannot start its new process: %v", fr.role, err))
				if f.proc != nil {
					f.proc.kill()
				}
				for _, l := range nf.Listeners {
					if !slices.Contains(p.bound, l) {
						continue
					}
					l.Close()
					delete(keep, l)
				}
				if cur != nil {
					running = append(running, cur)
					for _, l := range cur.Listeners {
						keep[l] = true
					}
				}
				continue
			}
			running = append(running, f)
			if cur != nil {
				retire = append(retire, cur)
			}
		default:
			// The same sockets and keys: the process goes on.
			cur.Listens = nf.Listens
			running = append(running, cur)
			if !cur.proc.exited {
				if err := d.sendSettings(cur); err != nil {
					d.log.Error("reload: cannot update a front-end", "child", cur.Role, "err", err)
				}
			}
		}
	}
	d.frontends = running
	for _, f := range retire {
		d.retire(f)
		for _, l := range f.Listeners {
			if !keep[l] {
				l.Close()
			}
		}
	}
	d.reloadNotify()
	for _, c := range p.changes {
		d.log.Info("reload: " + c)
	}
	for _, f := range p.failures {
		d.log.Error("reload: not applied: " + f)
	}
	d.log.Info("configuration reloaded", "repositories", len(p.cfg.Repositories), "not-applied", len(p.failures))
	lines := slices.Clone(p.changes)
	for _, f := range p.failures {
		lines = append(lines, "not applied: "+f)
	}
	done := ipc.Done{Status: ipc.StatusOK}
	if len(p.failures) > 0 {
		done = ipc.Done{Status: ipc.StatusFailed, Message: fmt.Sprintf("configuration reloaded, but %d change(s) not applied", len(p.failures))}
	} else {
		lines = append(lines, "configuration reloaded")
	}
	// gotctl returns once the replaced front-ends have closed their
	// listeners: from then on the new ones answer.
	d.whenHalted(retire, func() { answer(lines, done) })
}

// haltWait is a reload's answer waiting for the front-ends it replaced
// to close their listeners.
type haltWait struct {
	waiting []*frontend
	then    func()
}

// haltTimeout bounds the wait for a replaced front-end's Halt.
const haltTimeout = 5 * time.Second

// whenHalted calls then once every front-end of fs has answered Halt
// or exited, or after haltTimeout.
func (d *daemon) whenHalted(fs []*frontend, then func()) {
	fs = slices.DeleteFunc(slices.Clone(fs), func(f *frontend) bool { return f.proc == nil || f.proc.exited })
	if len(fs) == 0 {
		then()
		return
	}
	w := &haltWait{waiting: fs, then: then}
	d.haltWaits = append(d.haltWaits, w)
	time.AfterFunc(haltTimeout, func() { d.events <- event{haltWait: w} })
}

// frontendHalted handles a front-end's answer to Halt.
func (d *daemon) frontendHalted(f *frontend, raw msg.Msg) {
	if _, err := ipc.Check(raw, &ipc.Halt{}, false); err != nil {
		d.log.Error("bad message", "child", f.Role, "err", err)
		return
	}
	d.halted1(f)
}

// halted1 notes that f no longer accepts, answering the waits that
// need nothing else.
func (d *daemon) halted1(f *frontend) {
	for _, w := range slices.Clone(d.haltWaits) {
		w.waiting = slices.DeleteFunc(w.waiting, func(g *frontend) bool { return g == f })
		if len(w.waiting) == 0 {
			d.haltWaitDone(w)
		}
	}
}

// haltWaitDone ends w, at once or when its time is up.
func (d *daemon) haltWaitDone(w *haltWait) {
	i := slices.Index(d.haltWaits, w)
	if i < 0 {
		return
	}
	d.haltWaits = slices.Delete(d.haltWaits, i, i+1)
	w.then()
}

// frontendByRole returns the running front-end of role, or nil.
func (d *daemon) frontendByRole(role string) *frontend {
	for _, f := range d.frontends {
		if f.Role == role {
			return f
		}
	}
	return nil
}

// retire halts f's process: it closes its listeners, serves its
// clients to their end and exits; it is not started again.
func (d *daemon) retire(f *frontend) {
	if f.proc == nil || f.proc.exited {
		return // its clients went with it; its restart is dropped
	}
	d.retired = append(d.retired, f)
	ipc.Send(f.proc.ch, &ipc.Halt{}, nil)
}

// truncate cuts s to at most n bytes.
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// ctlConn makes conn, a gotctl connection, one with deadlines.
func ctlConn(conn *msg.Conn) (*msg.Conn, *net.UnixConn, error) {
	fc, err := net.FileConn(conn.File())
	conn.Close()
	if err != nil {
		return nil, nil, err
	}
	uc, ok := fc.(*net.UnixConn)
	if !ok {
		fc.Close()
		return nil, nil, errors.New("not a unix socket")
	}
	c, err := msg.FromUnixConn(uc)
	if err != nil {
		uc.Close()
		return nil, nil, err
	}
	return c, uc, nil
}

// ctlReload is the source of a gotctl reload on c: the daemon's paths
// are sent, then the files gotctl opened are received.
func (d *daemon) ctlReload(c *msg.Conn, uc *net.UnixConn) func() (reloadSource, error) {
	paths := &ipc.ReloadPaths{Config: d.opts.ConfigPath, Secrets: d.opts.SecretsPath}
	return func() (reloadSource, error) {
		uc.SetDeadline(time.Now().Add(reloadTimeout))
		if err := ipc.Send(c, paths, nil); err != nil {
			return nil, fmt.Errorf("gotctl: %w", err)
		}
		return readCtl(c, uc, d.opts.ControlUIDs)
	}
}

// selfReload is the source of a reload with the parent's privileges.
func (d *daemon) selfReload() (reloadSource, error) {
	return &selfSource{configPath: d.opts.ConfigPath, secretsPath: d.opts.SecretsPath}, nil
}
