package notify

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"mime/quotedprintable"
	"net"
	"net/http/httptest"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// mailbox is a go-smtp backend that keeps what it receives.
type mailbox struct {
	mu       sync.Mutex
	got      []received
	refuseTo string // a recipient answered with 550
}

type received struct {
	from, to string
	data     []byte
	tls      bool
}

func (m *mailbox) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &mailSession{box: m, conn: c}, nil
}

type mailSession struct {
	box      *mailbox
	conn     *smtp.Conn
	from, to string
}

func (s *mailSession) Reset()        {}
func (s *mailSession) Logout() error { return nil }
func (s *mailSession) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}
func (s *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if to == s.box.refuseTo {
		return &smtp.SMTPError{Code: 550, Message: "no such user"}
	}
	s.to = to
	return nil
}
func (s *mailSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, isTLS := s.conn.TLSConnectionState()
	s.box.mu.Lock()
	s.box.got = append(s.box.got, received{s.from, s.to, data, isTLS})
	s.box.mu.Unlock()
	return nil
}

// startSMTP serves box on a loopback port with STARTTLS (the test
// certificate of net/http/httptest) and returns its port and the roots
// that trust it.
func startSMTP(t *testing.T, box *mailbox) (string, *x509.CertPool) {
	t.Helper()
	ts := httptest.NewTLSServer(nil) // only for its certificate
	cert := ts.TLS.Certificates[0]
	pool := x509.NewCertPool()
	pool.AddCert(ts.Certificate())
	ts.Close()
	s := smtp.NewServer(box)
	s.Domain = "localhost"
	s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	s.ReadTimeout, s.WriteTimeout = 5*time.Second, 5*time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	t.Cleanup(func() { s.Close() })
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port, pool
}

func TestSendMail(t *testing.T) {
	box := &mailbox{refuseTo: "nobody@example.com"}
	port, roots := startSMTP(t, box)
	target := EmailTarget{Relay: "127.0.0.1", Port: port, From: "gotd <gotd@example.com>",
		To: "dev@example.com", ReplyTo: "list@example.com", TLS: &tls.Config{RootCAs: roots}}
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	body := "commit 0123abcd\nfrom: A U Thor\n.\n.leading dot\nline\n"
	msg := Message(target, "gotd.example.com", "repo: alice changed refs/heads/main: 0123abcd", body, now)
	if err := sendMail(context.Background(), target, "gotd.example.com", msg, 5*time.Second); err != nil {
		t.Fatalf("sendMail: %v", err)
	}
	box.mu.Lock()
	got := box.got
	box.mu.Unlock()
	if len(got) != 1 {
		t.Fatalf("%d messages received", len(got))
	}
	r := got[0]
	if r.from != "gotd@example.com" || r.to != "dev@example.com" || !r.tls {
		t.Errorf("envelope %q -> %q, TLS %v; want gotd@example.com -> dev@example.com over STARTTLS", r.from, r.to, r.tls)
	}
	m, err := mail.ReadMessage(strings.NewReader(string(r.data)))
	if err != nil {
		t.Fatal(err)
	}
	h := m.Header
	date, derr := h.Date()
	if h.Get("From") != target.From || h.Get("To") != target.To || h.Get("Reply-To") != target.ReplyTo ||
		h.Get("Subject") != "repo: alice changed refs/heads/main: 0123abcd" || derr != nil || !date.Equal(now) ||
		!strings.HasSuffix(h.Get("Message-ID"), "@gotd.example.com>") {
		t.Errorf("headers %v (date %v, %v)", h, date, derr)
	}
	text, _ := io.ReadAll(m.Body)
	if want := strings.ReplaceAll(body, "\n", "\r\n"); string(text) != want {
		t.Errorf("body %q; want %q (dot-stuffing undone by the receiver)", text, want)
	}

	// A second message has another Message-ID.
	if a, b := Message(target, "h", "s", "b", now), Message(target, "h", "s", "b", now); string(a) == string(b) {
		t.Error("two messages with the same Message-ID")
	}

	// A refused recipient is a permanent failure; no relay, a temporary one.
	bad := target
	bad.To = "nobody@example.com"
	var perm *PermanentError
	if err := sendMail(context.Background(), bad, "h", msg, 5*time.Second); !errors.As(err, &perm) {
		t.Errorf("refused recipient: %v; want a permanent error", err)
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	_, closed, _ := net.SplitHostPort(l.Addr().String())
	l.Close()
	down := target
	down.Port = closed
	if err := sendMail(context.Background(), down, "h", msg, 5*time.Second); err == nil || errors.As(err, &perm) {
		t.Errorf("relay down: %v; want a temporary error", err)
	}
	// A relay on loopback with its own certificate (a local MTA's
	// self-signed one) is used without checking it.
	local := target
	local.TLS = nil
	if err := sendMail(context.Background(), local, "h", msg, 5*time.Second); err != nil {
		t.Errorf("loopback relay with a self-signed certificate: %v", err)
	}
	// Elsewhere, a relay whose certificate is not trusted gets nothing.
	untrusted := target
	untrusted.TLS = &tls.Config{RootCAs: x509.NewCertPool()}
	if err := sendMail(context.Background(), untrusted, "h", msg, 5*time.Second); err == nil {
		t.Error("delivered through a relay with an untrusted certificate")
	}
}

// TestMessageLongLines checks that a body a relay could refuse (lines
// over 998 bytes, bare carriage returns) is sent quoted-printable, and
// decodes to the text with its line breaks.
func TestMessageLongLines(t *testing.T) {
	target := EmailTarget{From: "gotd@example.com", To: "dev@example.com"}
	body := "short\r\nbare\rreturn\n" + strings.Repeat("x=", 1000) + "\nend\n"
	msg := Message(target, "h", "s", body, time.Now())
	for line := range strings.Lines(string(msg)) {
		if len(line) > 1000 || !strings.HasSuffix(line, "\r\n") || strings.Count(line, "\r") != 1 {
			t.Fatalf("line %q: over 998 bytes or not ending in CRLF", line[:min(len(line), 80)])
		}
	}
	m, err := mail.ReadMessage(strings.NewReader(string(msg)))
	if err != nil {
		t.Fatal(err)
	}
	if cte := m.Header.Get("Content-Transfer-Encoding"); cte != "quoted-printable" {
		t.Fatalf("Content-Transfer-Encoding %q", cte)
	}
	text, err := io.ReadAll(quotedprintable.NewReader(m.Body))
	want := "short\r\nbare\r\nreturn\r\n" + strings.Repeat("x=", 1000) + "\r\nend\r\n"
	if err != nil || string(text) != want {
		t.Errorf("decoded body %q, %v; want %q", text, err, want)
	}
	// A body with short lines goes as it is.
	m, _ = mail.ReadMessage(strings.NewReader(string(Message(target, "h", "s", "one\ntwo\n", time.Now()))))
	if text, _ := io.ReadAll(m.Body); string(text) != "one\r\ntwo\r\n" || m.Header.Get("Content-Transfer-Encoding") != "8bit" {
		t.Errorf("short lines: %q, %q", text, m.Header.Get("Content-Transfer-Encoding"))
	}
}
