package parent

import (
	"time"

	"gotd/internal/daemon/config"
	"gotd/internal/daemon/ipc"
)

// RoleWeb renders the web pages of one class of visitor.
const RoleWeb = "web"

// The web processes: one for anonymous visitors, started with the
// daemon when it has HTTP listeners and again whenever it dies, and one
// per account that browses, started at its first page and ended once
// it has served none for webIdle, at most maxAccountWebs at a time.
// Each reads only the repositories its visitor may read, so that a
// page costs no process start and no visitor's process can reach what
// another may read.
const (
	webIdle        = 10 * time.Minute
	maxAccountWebs = 16
	// webTick is how often idle web processes are looked for.
	webTick = time.Minute
)

// webProc is a running web process.
type webProc struct {
	proc    *child
	account string // "" for anonymous visitors
	last    time.Time
}

// webOf returns the web process ch is, nil if none.
func (d *daemon) webOf(ch *child) *webProc {
	for _, w := range d.webs {
		if w.proc == ch {
			return w
		}
	}
	return nil
}

// startWebs starts the anonymous visitors' web process when there are
// HTTP listeners, and the tick that ends idle ones.
func (d *daemon) startWebs() {
	go func() {
		for range time.Tick(webTick) {
			d.events <- event{webTick: true}
		}
	}()
	d.restartWeb()
}

// webFor returns the web process of account ("" for anonymous
// visitors), starting it if there is none.
func (d *daemon) webFor(account string) (*webProc, error) {
	if w := d.webs[account]; w != nil && !w.proc.exited {
		w.last = time.Now()
		return w, nil
	}
	id := config.Identity{User: "anonymous", Anonymous: true}
	if account != "" {
		a := d.cfg.FindAccount(account)
		if a == nil {
			return nil, errNoAccount
		}
		id = a.Identity()
		d.boundWebs()
	}
	p, err := d.spawn(RoleWeb, 0, nil)
	if err != nil {
		return nil, err
	}
	w := &webProc{proc: p, account: account, last: time.Now()}
	d.webs[account] = w
	start := &ipc.WebStart{Account: account, Timeout: uint32(max(1, d.cfg.RequestTimeout/time.Second)), MemoryLimit: uint64(d.cfg.MemoryLimit),
		Transports: d.webTransports(account), MinRate: uint64(d.cfg.Pace.MinRate), RateInterval: uint32(d.cfg.Pace.RateInterval / time.Second)}
	var repos []*ipc.WebRepo
	for _, r := range d.cfg.Repositories {
		if a := r.Access(id); a == config.Read || a == config.ReadWrite {
			repos = append(repos, &ipc.WebRepo{Name: r.Name, Path: r.Path, Description: r.Description, Hidden: r.Hidden})
		}
		if len(repos) == ipc.MaxWebRepos {
			break
		}
	}
	start.Repos = uint32(len(repos))
	err = ipc.Send(p.ch, start, nil)
	for _, r := range repos {
		if err == nil {
			err = ipc.Send(p.ch, r, nil)
		}
	}
	if err != nil {
		p.kill()
		return nil, err
	}
	return w, nil
}

// errNoAccount: an account removed by a reload since httpd saw it.
var errNoAccount = errorString("account no longer exists")

type errorString string

func (e errorString) Error() string { return string(e) }

// boundWebs ends the account web process served longest ago when
// there are maxAccountWebs already.
func (d *daemon) boundWebs() {
	var oldest *webProc
	n := 0
	for _, w := range d.webs {
		if w.account == "" || w.proc.exited {
			continue
		}
		n++
		if oldest == nil || w.last.Before(oldest.last) {
			oldest = w
		}
	}
	if n >= maxAccountWebs && oldest != nil {
		d.log.Debug("ending the web process served longest ago", "account", oldest.account)
		oldest.proc.kill()
		delete(d.webs, oldest.account)
	}
}

// webTransports are the listeners that clone, for the pages' clone
// URLs: ssh:// names the account, when there is one.
func (d *daemon) webTransports(account string) []ipc.WebTransport {
	var ts []ipc.WebTransport
	add := func(scheme string, l config.Listen, user string) {
		if len(ts) < ipc.MaxWebTransports && l.Port > 0 && l.Port <= 65535 {
			ts = append(ts, ipc.WebTransport{Scheme: scheme, Host: l.Address, Port: uint32(l.Port), User: user})
		}
	}
	for _, l := range d.cfg.HTTP {
		if l.Certificate != "" {
			add("https", l, "")
		} else {
			add("http", l, "")
		}
	}
	if account != "" {
		for _, l := range d.cfg.SSH {
			add("ssh", l, account)
		}
	}
	for _, l := range d.cfg.Git {
		add("git", l, "")
	}
	return ts
}

// web hands a page request's stream to its visitor's web process. The
// client is done for the parent once it is handed over: the web
// process answers on the stream and closes it.
func (d *daemon) web(c *client) {
	if c.connect.Via != ipc.ViaHTTP {
		d.refuse(c, ipc.ReasonBadRequest, "bad request", "web page request from another front-end")
		return
	}
	c.rec.repo = "(web)"
	w, err := d.webFor(c.connect.Account)
	if err == errNoAccount {
		d.refuse(c, ipc.ReasonDenied, "permission denied", err.Error())
		return
	}
	if err == nil {
		err = ipc.Send(w.proc.ch, &ipc.WebRequest{Client: c.id}, c.in)
	}
	if err != nil {
		d.log.Error("cannot pass a page request on", "client", c.id, "err", err)
		d.refuse(c, ipc.ReasonInternal, "internal server error", err.Error())
		return
	}
	c.user = c.connect.Account
	c.end = &ipc.SessionEnd{Status: ipc.StatusOK}
	c.state = stateEnding
	d.maybeDone(c)
}

// webExited forgets a web process that ended, and starts the
// anonymous visitors' one again after a delay. One the parent ended
// was forgotten already.
func (d *daemon) webExited(w *webProc) {
	if d.webs[w.account] != w {
		return
	}
	delete(d.webs, w.account)
	if w.account == "" && !d.halted {
		d.log.Error("the web process exited: starting it again", "err", w.proc.status)
		d.afterDelay(event{restartWeb: true})
	}
}

// restartWeb starts the anonymous visitors' web process again.
func (d *daemon) restartWeb() {
	if d.halted || len(d.cfg.HTTP) == 0 {
		return
	}
	if w := d.webs[""]; w != nil && !w.proc.exited {
		return
	}
	if _, err := d.webFor(""); err != nil {
		d.log.Error("cannot start the web process", "err", err)
		d.afterDelay(event{restartWeb: true})
	}
}

// webTick ends the account web processes idle for webIdle.
func (d *daemon) webTick() {
	for account, w := range d.webs {
		if account != "" && time.Since(w.last) > webIdle {
			w.proc.kill()
			delete(d.webs, account)
		}
	}
}

// webReload ends every web process after a reload, which may have
// changed who reads what: the anonymous one starts again at once,
// the others at their next page.
func (d *daemon) webReload() {
	for account, w := range d.webs {
		w.proc.kill()
		delete(d.webs, account)
	}
	d.restartWeb()
}

// webProcs are the running web processes, for shutdown.
func (d *daemon) webProcs() []*child {
	var out []*child
	for _, w := range d.webs {
		out = append(out, w.proc)
	}
	return out
}
