package e2enet

import (
	"fmt"
	"io"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"gotd/internal/daemon/pushnote"
	"gotd/internal/daemon/role/notify"
)

// Credentials of the notification targets in the secrets file.
const (
	hookUser     = "hookbot"
	hookPassword = "hook pass"
	hookKey      = "an hmac key of the test"
)

// hook is an HTTP receiver of notifications on a loopback port: it
// checks basic auth and the HMAC signature, and keeps the documents.
type hook struct {
	t      *testing.T
	port   int
	mu     sync.Mutex
	docs   []*pushnote.Document
	bad    []string
	hang   chan struct{} // if set, requests wait for it to close
	server *http.Server
}

func newHook(t *testing.T) *hook {
	return &hook{t: t, port: freePort(t)}
}

func (h *hook) url() string { return fmt.Sprintf("http://127.0.0.1:%d/hook", h.port) }

// start serves on the hook's port.
func (h *hook) start() {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", h.port))
	if err != nil {
		h.t.Fatal(err)
	}
	h.server = &http.Server{Handler: http.HandlerFunc(h.serve)}
	go h.server.Serve(l)
	h.t.Cleanup(func() { h.server.Close() })
}

func (h *hook) serve(w http.ResponseWriter, r *http.Request) {
	if h.hang != nil {
		select {
		case <-h.hang:
		case <-r.Context().Done():
		}
		return
	}
	body, err := io.ReadAll(r.Body)
	user, pass, ok := r.BasicAuth()
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case err != nil:
		h.bad = append(h.bad, err.Error())
	case !ok || user != hookUser || pass != hookPassword:
		h.bad = append(h.bad, fmt.Sprintf("basic auth %q %q %v", user, pass, ok))
	case r.Header.Get(notify.SignatureHeader) != notify.Sign([]byte(hookKey), body):
		h.bad = append(h.bad, "bad signature "+r.Header.Get(notify.SignatureHeader))
	case r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json":
		h.bad = append(h.bad, r.Method+" "+r.Header.Get("Content-Type"))
	default:
		d, err := pushnote.Decode(body)
		if err != nil {
			h.bad = append(h.bad, err.Error())
			break
		}
		h.docs = append(h.docs, d)
		return
	}
	http.Error(w, "refused", http.StatusForbidden)
}

func (h *hook) received() ([]*pushnote.Document, []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*pushnote.Document(nil), h.docs...), append([]string(nil), h.bad...)
}

// wait waits for n documents, within limit.
func (h *hook) wait(n int, limit time.Duration) []*pushnote.Document {
	h.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		docs, bad := h.received()
		if len(bad) > 0 {
			h.t.Fatalf("the hook refused requests: %v", bad)
		}
		if len(docs) >= n || time.Now().After(deadline) {
			return docs
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// mailbox is an SMTP server (go-smtp) on a loopback port.
type mailbox struct {
	port int
	mu   sync.Mutex
	got  []*mail.Message
	from []string
}

func startMailbox(t *testing.T) *mailbox {
	m := &mailbox{port: freePort(t)}
	s := smtp.NewServer(m)
	s.Domain = "localhost"
	s.Addr = fmt.Sprintf("127.0.0.1:%d", m.port)
	s.ReadTimeout, s.WriteTimeout = 30*time.Second, 30*time.Second
	l, err := net.Listen("tcp", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	t.Cleanup(func() { s.Close() })
	return m
}

func (m *mailbox) NewSession(*smtp.Conn) (smtp.Session, error) { return &mailSession{box: m}, nil }

type mailSession struct {
	box  *mailbox
	from string
}

func (s *mailSession) Reset()                                      {}
func (s *mailSession) Logout() error                               { return nil }
func (s *mailSession) Rcpt(string, *smtp.RcptOptions) error        { return nil }
func (s *mailSession) Mail(from string, _ *smtp.MailOptions) error { s.from = from; return nil }
func (s *mailSession) Data(r io.Reader) error {
	msg, err := mail.ReadMessage(r)
	if err != nil {
		return err
	}
	var text io.Reader = msg.Body
	if msg.Header.Get("Content-Transfer-Encoding") == "quoted-printable" {
		text = quotedprintable.NewReader(msg.Body)
	}
	body, err := io.ReadAll(text)
	if err != nil {
		return err
	}
	msg.Body = strings.NewReader(string(body))
	s.box.mu.Lock()
	s.box.got = append(s.box.got, msg)
	s.box.from = append(s.box.from, s.from)
	s.box.mu.Unlock()
	return nil
}

func (m *mailbox) wait(t *testing.T, n int, limit time.Duration) []*mail.Message {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		m.mu.Lock()
		got := append([]*mail.Message(nil), m.got...)
		m.mu.Unlock()
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// spoolParent is a directory for a test's notification spool that the
// daemon's user may reach.
func spoolParent(t *testing.T) string {
	dir, err := os.MkdirTemp("", "gotd-e2enet-spool-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// notifyOptions configures notifications of repository "test" to the
// hook and, if box is not nil, to the mailbox, with extra notify lines.
func notifyOptions(t *testing.T, dir string, h *hook, box *mailbox, extra string) options {
	o := options{
		extraTop:     fmt.Sprintf("notify spool %q\nnotify timeout 3", filepath.Join(dir, "spool")),
		extraSecrets: fmt.Sprintf("auth hooks user %q password %q\nhmac hooks %q\n", hookUser, hookPassword, hookKey),
	}
	lines := fmt.Sprintf("\t\turl %q auth hooks insecure hmac hooks\n", h.url())
	if box != nil {
		lines += fmt.Sprintf("\t\temail to \"dev@example.com\" reply to \"list@example.com\" relay 127.0.0.1 port %d\n", box.port)
	}
	o.extraTest = "\tnotify {\n" + lines + extra + "\t}"
	return o
}

// pusher is a clone of "test" that commits and pushes over SSH.
type pusher struct {
	s   *server
	dir string
	env []string
	n   int
}

func newPusher(s *server, name string) *pusher {
	p := &pusher{s: s, dir: s.clientDir(name), env: []string{"GIT_SSH_COMMAND=" + s.sshCommand(s.writerKey)}}
	s.mustGit(p.dir, p.env, "clone", "-q", s.sshURL(rwAccount, "test"), "w")
	p.dir = filepath.Join(p.dir, "w")
	return p
}

// commit makes a commit changing a file and returns its id.
func (p *pusher) commit(subject string) string {
	p.n++
	write(p.s.t, filepath.Join(p.dir, "notes.txt"), fmt.Sprintf("change %d\n", p.n), 0o644)
	p.s.mustGit(p.dir, p.env, "add", "notes.txt")
	p.s.mustGit(p.dir, p.env, "commit", "-q", "-m", subject)
	return strings.TrimSpace(p.s.mustGit(p.dir, p.env, "rev-parse", "HEAD"))
}

func (p *pusher) push(args ...string) {
	p.s.mustGit(p.dir, p.env, append([]string{"push", "-q", "origin"}, args...)...)
}

func (p *pusher) rev(r string) string {
	return strings.TrimSpace(p.s.mustGit(p.dir, p.env, "rev-parse", r))
}

// TestNotify pushes with C Git and checks the mail and the web hook's
// document: headers, body, basic auth, HMAC, and the filters.
func TestNotify(t *testing.T) {
	h := newHook(t)
	h.start()
	box := startMailbox(t)
	dir := spoolParent(t)
	s := start(t, notifyOptions(t, dir, h, box, "\t\tbranch main\n\t\treference namespace \"refs/tags\"\n"))
	p := newPusher(s, "notify")
	old := p.rev("HEAD")
	id := p.commit("Add notes\n\nWith a body line.")
	p.push("main")

	docs := h.wait(1, 30*time.Second)
	if len(docs) != 1 {
		t.Fatalf("%d documents", len(docs))
	}
	d := docs[0]
	if d.Repo != "test" || d.User != rwAccount || d.Ref != (pushnote.Ref{Name: "refs/heads/main", Action: pushnote.FastForward, Old: old, New: id}) {
		t.Errorf("document: %+v", d)
	}
	if len(d.Notifications) != 1 || d.Notifications[0].ID != id || d.Notifications[0].Subject != "Add notes" ||
		d.Notifications[0].Diffstat.Total.Files != 1 || d.Notifications[0].Diffstat.Files[0].File != "notes.txt" {
		t.Errorf("commits: %+v", d.Notifications)
	}

	mails := box.wait(t, 1, 30*time.Second)
	if len(mails) != 1 {
		t.Fatalf("%d mails", len(mails))
	}
	m := mails[0]
	body, _ := io.ReadAll(m.Body)
	wantSubject := "test: " + rwAccount + " changed refs/heads/main: " + id[:12]
	if m.Header.Get("Subject") != wantSubject || m.Header.Get("To") != "dev@example.com" ||
		m.Header.Get("Reply-To") != "list@example.com" || !strings.Contains(m.Header.Get("From"), "@") {
		t.Errorf("mail headers: %v", m.Header)
	}
	if _, err := m.Header.Date(); err != nil {
		t.Errorf("mail Date: %v", err)
	}
	if !regexp.MustCompile(`^<[0-9a-f]+\.[0-9]+@.+>$`).MatchString(m.Header.Get("Message-ID")) {
		t.Errorf("Message-ID %q", m.Header.Get("Message-ID"))
	}
	for _, want := range []string{"commit " + id, "from: A U Thor <author@example.com>", " Add notes", " With a body line.", " A  notes.txt | 1+ 0-"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("mail body lacks %q:\n%s", want, body)
		}
	}

	// Filters: a branch other than main is not told; a tag is; so is
	// the deletion of a tag.
	p.commit("elsewhere")
	p.push("HEAD:refs/heads/other")
	p.s.mustGit(p.dir, p.env, "tag", "-a", "-m", "Release 1", "v1")
	p.push("v1")
	p.push(":refs/tags/v1")
	docs = h.wait(3, 30*time.Second)
	time.Sleep(500 * time.Millisecond) // anything late would show now
	docs, _ = h.received()
	var got []string
	for _, d := range docs[1:] {
		got = append(got, d.Ref.Action+" "+d.Ref.Name)
	}
	if strings.Join(got, ", ") != "created refs/tags/v1, deleted refs/tags/v1" {
		t.Errorf("after the filters: %v", got)
	}
	if len(docs) == 3 && (len(docs[1].Notifications) != 1 || docs[1].Notifications[0].Type != pushnote.TypeTag ||
		docs[1].Notifications[0].Message != "Release 1\n") {
		t.Errorf("tag: %+v", docs[1].Notifications)
	}
	if info, err := s.gotctl("info"); err != nil || !strings.Contains(info, "notifications queued: 0") {
		t.Errorf("gotctl info: %v\n%s", err, info)
	}
}

// TestNotifyReceiverDown pushes while the hook is down: the push
// succeeds, the notification waits in the queue (gotctl info says so),
// survives a restart of gotd, and arrives once the hook is up.
func TestNotifyReceiverDown(t *testing.T) {
	h := newHook(t)
	dir := spoolParent(t)
	s := start(t, notifyOptions(t, dir, h, nil, ""))
	p := newPusher(s, "down")
	id := p.commit("while the hook is down")
	p.push("main")
	waitInfo(t, s, "notifications queued: 1")
	s.restart()
	waitInfo(t, s, "notifications queued: 1")
	h.start()
	docs := h.wait(1, 60*time.Second)
	time.Sleep(time.Second)
	docs, _ = h.received()
	if len(docs) != 1 || docs[0].Ref.New != id {
		t.Fatalf("received %d documents: %+v", len(docs), docs)
	}
	waitInfo(t, s, "notifications queued: 0")
	if ents, _ := os.ReadDir(filepath.Join(dir, "spool")); len(ents) != 0 {
		t.Errorf("spool not empty: %v", ents)
	}
}

// TestNotifyHangingReceiver: a hook that never answers does not slow the
// push, its attempt times out (logged), and mail still goes out.
func TestNotifyHangingReceiver(t *testing.T) {
	h := newHook(t)
	h.hang = make(chan struct{})
	defer close(h.hang)
	h.start()
	box := startMailbox(t)
	dir := spoolParent(t)
	s := start(t, notifyOptions(t, dir, h, box, ""))
	p := newPusher(s, "hang")
	p.commit("the hook hangs")
	begin := time.Now()
	p.push("main")
	t.Logf("push took %v", time.Since(begin))
	if mails := box.wait(t, 1, 30*time.Second); len(mails) != 1 {
		t.Errorf("%d mails while the hook hangs", len(mails))
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(s.log.String(), "notification failed; will retry") && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if log := s.log.String(); !strings.Contains(log, "notification failed; will retry") || !strings.Contains(log, "Timeout") {
		t.Errorf("no time-out logged")
	}
}

// TestNotifyManyPushes pushes 1,000 times in a row: 1,000 documents
// arrive, each push's once.
func TestNotifyManyPushes(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 pushes")
	}
	h := newHook(t)
	h.start()
	dir := spoolParent(t)
	s := start(t, notifyOptions(t, dir, h, nil, ""))
	p := newPusher(s, "many")
	const n = 1000
	want := map[string]bool{}
	for i := range n {
		id := p.commit(fmt.Sprintf("push %d", i))
		want[id] = true
		p.push("main")
	}
	h.wait(n, 2*time.Minute)
	time.Sleep(time.Second)
	docs, _ := h.received()
	seen := map[string]bool{}
	for _, d := range docs {
		if seen[d.Ref.New] {
			t.Errorf("%s told twice", d.Ref.New)
		}
		seen[d.Ref.New] = true
		if !want[d.Ref.New] {
			t.Errorf("%s never pushed", d.Ref.New)
		}
	}
	if len(docs) != n || len(seen) != n {
		t.Errorf("%d documents, %d distinct, for %d pushes", len(docs), len(seen), n)
	}
}

// waitInfo waits for gotctl info to say want.
func waitInfo(t *testing.T, s *server, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		info, err := s.gotctl("info")
		if err == nil && strings.Contains(info, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gotctl info never said %q: %v\n%s", want, err, info)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestNotifyReload adds a notify block with gotctl reload: the notify
// process starts again with its new spool and ports, and the next push
// is told.
func TestNotifyReload(t *testing.T) {
	h := newHook(t)
	h.start()
	dir := spoolParent(t)
	if os.Geteuid() == 0 {
		// The daemon, no longer root, makes the spool.
		run(t, "chown", rootDaemon, dir)
	}
	o := notifyOptions(t, dir, h, nil, "")
	s := start(t, options{extraSecrets: o.extraSecrets, extraTop: o.extraTop})
	old := s.waitRole("notify", 0)
	conf, err := os.ReadFile(s.conf)
	if err != nil {
		t.Fatal(err)
	}
	added := strings.Replace(string(conf), "\tpermit ro anonymous\n", "\tpermit ro anonymous\n"+o.extraTest+"\n", 1)
	write(t, s.conf, added, 0o644)
	if out, err := s.gotctl("reload"); err != nil {
		t.Fatalf("gotctl reload: %v\n%s", err, out)
	}
	s.waitRole("notify", old)
	p := newPusher(s, "reload")
	id := p.commit("after the reload")
	p.push("main")
	if docs := h.wait(1, 30*time.Second); len(docs) != 1 || docs[0].Ref.New != id {
		t.Fatalf("received %+v", docs)
	}
}
