package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"gotd/internal/daemon/config"
	"gotd/internal/daemon/users"
	"gotd/internal/git/repo"
)

// daemonUser is who the daemon's processes run as, as its Unix
// permissions see it.
type daemonUser struct {
	name   string
	uid    int
	groups []int // the primary group first
}

// may reports whether u may do what bits asks (4 read, 2 write, 1
// search or execute, or a sum) of a file whose status is fi, by its
// mode: owner, else group, else others; root may do anything.
func (u *daemonUser) may(fi os.FileInfo, bits os.FileMode) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || u.uid == 0 {
		return true
	}
	mode := fi.Mode().Perm()
	switch {
	case int(st.Uid) == u.uid:
		mode >>= 6
	case containsInt(u.groups, int(st.Gid)):
		mode >>= 3
	}
	return mode&bits == bits
}

func containsInt(l []int, v int) bool {
	for _, x := range l {
		if x == v {
			return true
		}
	}
	return false
}

// checkSystem checks what gotd -n can check beyond the configuration's
// syntax, before anything starts: the daemon's user exists; the TLS
// certificates and keys are readable and pairs; the SSH host key is
// valid, or its directory can be made; every repository is a
// bare repository of a format gotd reads, which the daemon's user can
// read, and write where a rule allows writes; the notification spool
// can be made. It returns the problems found, "file:line: message"
// each, with the line of the directive concerned ("file: message" for
// a default).
func checkSystem(cfg *config.Config) []string {
	var probs []string
	at := func(line int, format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		if line > 0 {
			probs = append(probs, fmt.Sprintf("%s:%d: %s", cfg.File, line, msg))
		} else {
			probs = append(probs, fmt.Sprintf("%s: %s", cfg.File, msg))
		}
	}
	u, err := lookupDaemonUser(cfg.User)
	if err != nil {
		at(cfg.Lines["user"], "%v", err)
	}
	for _, l := range cfg.HTTP {
		if l.Certificate == "" {
			continue
		}
		if _, err := tls.LoadX509KeyPair(l.Certificate, l.Key); err != nil {
			at(l.Line, "listen http on %s: tls: %s", l.Addr(), strings.TrimPrefix(err.Error(), "tls: "))
		}
	}
	if len(cfg.SSH) > 0 {
		keys := cfg.SSHHostKeys
		if len(keys) == 0 {
			keys = []string{cfg.SSHHostKey}
		}
		for _, key := range keys {
			line := cfg.Lines["ssh hostkey "+key]
			if line == 0 {
				line = cfg.SSH[0].Line
			}
			if err := checkHostKey(key); err != nil {
				at(line, "ssh hostkey: %v", err)
			}
		}
	}
	for _, r := range cfg.Repositories {
		if r.Path == "" {
			continue
		}
		for _, msg := range checkRepository(r, u) {
			at(r.Line, "repository \"%s\": %s", r.Name, msg)
		}
		if r.Mirror != nil {
			for _, msg := range checkMirror(r, u) {
				at(r.Mirror.Line, "repository \"%s\": %s", r.Name, msg)
			}
		}
	}
	if cfg.NotifyTargets() {
		if err := checkSpool(cfg.NotifySpool, u); err != nil {
			at(cfg.Lines["notify spool"], "notify spool: %v", err)
		}
	}
	return probs
}

// lookupDaemonUser returns who the daemon's processes will run as: the
// configured user when gotd runs as root (with its primary group only,
// as the parent sets it), else whoever runs it.
func lookupDaemonUser(name string) (*daemonUser, error) {
	if os.Geteuid() != 0 {
		u := &daemonUser{name: strconv.Itoa(os.Geteuid()), uid: os.Geteuid(), groups: []int{os.Getegid()}}
		if pw, _ := users.ByUID(u.uid); pw != nil {
			u.name = pw.Name
		}
		more, _ := os.Getgroups()
		u.groups = append(u.groups, more...)
		return u, nil
	}
	var pw *users.User
	var err error
	if uid, nerr := strconv.Atoi(name); nerr == nil {
		pw, err = users.ByUID(uid)
	} else {
		pw, err = users.ByName(name)
	}
	switch {
	case err != nil:
		return nil, fmt.Errorf("user %s: %w", name, err)
	case pw == nil:
		return nil, fmt.Errorf("user %s does not exist", name)
	}
	return &daemonUser{name: pw.Name, uid: pw.UID, groups: []int{pw.GID}}, nil
}

// checkHostKey checks the SSH host key as the daemon reads it at start,
// or, when there is none, that the daemon can make it.
func checkHostKey(path string) error {
	fi, err := os.Lstat(path)
	switch {
	case missing(err):
		return creatable(filepath.Dir(path))
	case err != nil:
		return err
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s: not a regular file", path)
	case fi.Mode().Perm()&0o077 != 0:
		return fmt.Errorf("%s: accessible to others than its owner (mode %v)", path, fi.Mode().Perm())
	}
	key, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if _, err := ssh.ParsePrivateKey(key); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// creatable reports why this process could not make dir and the
// directories it lacks: its nearest existing ancestor must be a
// directory it may write.
func creatable(dir string) error {
	p := dir
	for {
		fi, err := os.Stat(p)
		if err == nil {
			if !fi.IsDir() {
				return fmt.Errorf("cannot make %s: %s is not a directory", dir, p)
			}
			break
		}
		if !missing(err) || p == filepath.Dir(p) {
			return err
		}
		p = filepath.Dir(p)
	}
	if p == dir {
		return nil
	}
	if err := unix.Access(p, unix.W_OK|unix.X_OK); err != nil {
		return fmt.Errorf("cannot make %s: %s: %w", dir, p, err)
	}
	return nil
}

// missing reports whether err says a path does not exist, or that one
// of its parents is not a directory.
func missing(err error) bool {
	return errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// reach reports the first directory above path that u may not search.
func reach(path string, u *daemonUser) error {
	for p := filepath.Dir(path); ; p = filepath.Dir(p) {
		if fi, err := os.Stat(p); err == nil && !u.may(fi, 0o1) {
			return fmt.Errorf("the daemon's user %s cannot reach %s: no search permission on %s", u.name, path, p)
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// checkRepository checks that r's path is a bare repository gotd can
// open, and that u (nil when unknown) can read it, and write it when a
// rule allows writes. It returns what is wrong, one message each.
func checkRepository(r *config.Repository, u *daemonUser) []string {
	fi, err := os.Stat(r.Path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return []string{fmt.Sprintf("%s does not exist", r.Path)}
	case err != nil:
		return []string{err.Error()}
	case !fi.IsDir():
		return []string{fmt.Sprintf("%s is not a directory", r.Path)}
	}
	rp, err := repo.Open(r.Path, repo.Options{})
	if errors.Is(err, repo.ErrNotRepository) {
		return []string{fmt.Sprintf("%s is not a Git repository", r.Path)}
	} else if err != nil {
		return []string{strings.TrimPrefix(err.Error(), "repo: ")}
	}
	gitDir := rp.GitDir
	bare, set := rp.Config.Get("core", "", "bare")
	rp.Close()
	if gitDir != r.Path {
		return []string{fmt.Sprintf("%s is a work tree, not a bare repository (give the path of a bare one, as git clone --bare makes)", r.Path)}
	}
	if set && isFalse(bare) {
		return []string{fmt.Sprintf("%s is not a bare repository (core.bare is %s)", r.Path, bare)}
	}
	if u == nil || u.uid == 0 {
		return nil
	}
	if err := reach(r.Path, u); err != nil {
		return []string{err.Error()}
	}
	write := false
	for _, rule := range r.Rules {
		write = write || rule.Write && !rule.Deny
	}
	var probs []string
	for _, sub := range []string{"", "objects", "objects/pack", "refs", "refs/heads", "refs/tags"} {
		p := filepath.Join(r.Path, sub)
		fi, err := os.Stat(p)
		switch {
		case err != nil && (sub == "" || sub == "objects" || sub == "refs"):
			probs = append(probs, err.Error())
		case err != nil:
		case !u.may(fi, 0o5):
			probs = append(probs, fmt.Sprintf("the daemon's user %s cannot read %s", u.name, p))
		case write && !u.may(fi, 0o3):
			probs = append(probs, fmt.Sprintf("the daemon's user %s cannot write %s, though a rule allows pushes", u.name, p))
		}
		if len(probs) > 0 {
			break // one message says it
		}
	}
	return probs
}

// isFalse reports whether a Git boolean value is false.
func isFalse(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "false", "no", "off", "0":
		return true
	}
	return false
}

// checkSpool checks that the notification spool can be prepared at
// start (notify.PrepareSpool): an existing one is a directory private
// to its owner, a missing one can be made, and u can reach it.
func checkSpool(dir string, u *daemonUser) error {
	fi, err := os.Lstat(dir)
	switch {
	case missing(err):
		if err := creatable(dir); err != nil {
			return err
		}
	case err != nil:
		return err
	case !fi.IsDir():
		return fmt.Errorf("%s is not a directory", dir)
	case fi.Mode().Perm()&0o077 != 0:
		return fmt.Errorf("%s is accessible to others than its owner (mode %v)", dir, fi.Mode().Perm())
	}
	if u == nil {
		return nil
	}
	return reach(dir, u)
}
