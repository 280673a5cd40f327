package parent

import (
	"fmt"
	"os"
	"slices"
	"sort"
	"time"

	"gotd/internal/daemon/config"
	"gotd/internal/daemon/ipc"
)

// Frontend is a network front-end the daemon runs: its role, the
// source its clients are marked with, the listening sockets it
// inherits (the parent keeps them, to start the role again should it
// die) with the configuration's listeners they are bound for
// (parallel), and the private keys it needs, read before root was given
// up or passed by gotctl reload.
type Frontend struct {
	Role        string
	Via         uint32
	Listeners   []*os.File
	Listens     []config.Listen
	Credentials []ipc.Credential
}

// addrs are the addresses of f's listeners.
func (f *Frontend) addrs() []string {
	var a []string
	for _, l := range f.Listens {
		a = append(a, l.Addr())
	}
	return a
}

// frontend is a running front-end.
type frontend struct {
	Frontend
	proc *child
}

// restartDelay spaces out the starts of a front-end that keeps dying.
const restartDelay = time.Second

// startFrontend starts f's process and sends it its keys and settings.
func (d *daemon) startFrontend(f *frontend) error {
	p, err := d.spawn(f.Role, 0, f.Listeners)
	if err != nil {
		return err
	}
	f.proc = p
	for i := range f.Credentials {
		if err := ipc.Send(p.ch, &f.Credentials[i], nil); err != nil {
			return fmt.Errorf("parent: %s: %w", f.Role, err)
		}
	}
	return d.sendSettings(f)
}

// sendSettings sends the configuration's settings for f: timeouts,
// limits and, to the front-ends that authenticate, the accounts they
// may claim (frontendAccounts).
func (d *daemon) sendSettings(f *frontend) error {
	cfg := d.cfg
	s := &ipc.Frontend{
		HandshakeTimeout:  uint32(cfg.HandshakeTimeout / time.Second),
		RequestTimeout:    uint32(cfg.RequestTimeout / time.Second),
		BodyLimit:         uint64(cfg.BodyLimit),
		Default:           config.DefaultUserLimit,
		Total:             config.MaxClients,
		PendingTotal:      uint32(cfg.PendingTotal),
		PendingPerAddress: uint32(cfg.PendingPerAddress),
		MinRate:           uint64(cfg.Pace.MinRate),
		RateInterval:      uint32(cfg.Pace.RateInterval / time.Second),
	}
	names := make([]string, 0, len(cfg.UserLimits))
	for name := range cfg.UserLimits {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		s.Names = append(s.Names, name)
		s.PerName = append(s.PerName, uint32(cfg.UserLimits[name]))
	}
	msgs := []ipc.Message{s}
	for _, m := range frontendAccounts(cfg, f.Via) {
		msgs = append(msgs, m)
	}
	msgs = append(msgs, &ipc.AccountsEnd{})
	for _, m := range msgs {
		if err := ipc.Send(f.proc.ch, m, nil); err != nil {
			return fmt.Errorf("parent: %s settings: %w", f.Role, err)
		}
	}
	return nil
}

// frontendAccounts are the accounts sent to the front-end of via: to
// sshd those with a key, with their public keys; to httpd the names of
// those with a password or a token, without them: an auth process
// verifies what its clients present (verify.go); to gitd none.
func frontendAccounts(cfg *config.Config, via uint32) []*ipc.Account {
	var ms []*ipc.Account
	for _, a := range cfg.Accounts {
		switch {
		case via == ipc.ViaSSH && len(a.Keys) > 0:
			ms = append(ms, &ipc.Account{Name: a.Name, Keys: a.Keys})
		case via == ipc.ViaHTTP && (a.Password != "" || len(a.Tokens) > 0):
			ms = append(ms, &ipc.Account{Name: a.Name})
		}
	}
	return ms
}

// frontendOf returns the front-end whose process ch is, or nil.
func (d *daemon) frontendOf(ch *child) *frontend {
	for _, f := range slices.Concat(d.frontends, d.retired) {
		if f.proc == ch {
			return f
		}
	}
	return nil
}

// frontendExited starts a front-end again after its process died: its
// clients are gone with it, the daemon and other clients go on.
func (d *daemon) frontendExited(f *frontend) {
	if d.halted {
		return
	}
	d.log.Error("front-end exited: starting it again", "child", f.Role, "err", f.proc.status)
	d.restartLater(f)
}

// restartLater has run start f again after restartDelay.
func (d *daemon) restartLater(f *frontend) {
	d.afterDelay(event{restart: f})
}

// afterDelay has run handle ev after restartDelay.
func (d *daemon) afterDelay(ev event) {
	time.AfterFunc(restartDelay, func() { d.events <- ev })
}

// decide grants or refuses c the access its identity has in the
// repository: what auth answers for system users, the parent works out
// itself for the front-ends' accounts and anonymous clients, whose
// groups come from the configuration and not from a user database.
func (d *daemon) decide(c *client) {
	id := config.Identity{User: "anonymous", Anonymous: true}
	if name := c.connect.Account; name != "" {
		a := d.cfg.FindAccount(name)
		if a == nil {
			// Removed by a reload since the front-end checked it.
			d.refuse(c, ipc.ReasonDenied, "permission denied", "account no longer exists")
			return
		}
		id = a.Identity()
	}
	d.access(c, c.repoCfg.Access(id), id)
}
