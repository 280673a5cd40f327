package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/smtp"
	"net/textproto"
	"strings"
	"time"
)

// smtpPort is the relay's port when the target names none.
const smtpPort = "25"

// EmailTarget is an "email" notification target.
type EmailTarget struct {
	// Relay and Port are the SMTP server (default localhost, 25).
	Relay, Port string
	// From, To and ReplyTo are the addresses of the message.
	From, To, ReplyTo string
	// TLS, if set, is the configuration STARTTLS uses (tests give their
	// own roots); nil verifies the relay's certificate against the
	// system's roots.
	TLS *tls.Config
}

// Message returns a plain-text mail message: From, To, Reply-To when
// set, Date, Message-ID (unique, at host), Subject (encoded when not
// ASCII) and body, lines ending in CRLF.
func Message(t EmailTarget, host, subject, body string, now time.Time) []byte {
	var b bytes.Buffer
	header := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	header("From", t.From)
	header("To", t.To)
	if t.ReplyTo != "" {
		header("Reply-To", t.ReplyTo)
	}
	header("Date", now.Format(time.RFC1123Z))
	var id [12]byte
	rand.Read(id[:])
	header("Message-ID", "<"+hex.EncodeToString(id[:])+"."+fmt.Sprint(now.Unix())+"@"+host+">")
	header("Subject", mime.QEncoding.Encode("utf-8", oneLine(subject)))
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	// Lines end in CRLF; a carriage return of a commit message is
	// made a line break. Lines a relay could refuse or break (over 998
	// bytes, RFC 5322) have the body sent quoted-printable.
	body = strings.ReplaceAll(strings.ReplaceAll(body, "\r\n", "\n"), "\r", "\n")
	long := false
	for line := range strings.Lines(body) {
		long = long || len(strings.TrimSuffix(line, "\n")) > maxLine
	}
	if !long {
		header("Content-Transfer-Encoding", "8bit")
		b.WriteString("\r\n")
		for line := range strings.Lines(body) {
			b.WriteString(strings.TrimSuffix(line, "\n"))
			b.WriteString("\r\n")
		}
		return b.Bytes()
	}
	header("Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")
	w := quotedprintable.NewWriter(&b)
	w.Write([]byte(body)) // to a buffer: no error
	w.Close()
	if !bytes.HasSuffix(b.Bytes(), []byte("\r\n")) {
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

// maxLine bounds a line of a message's body sent as it is (RFC 5322's
// 998 characters).
const maxLine = 998

// oneLine keeps a header value on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// sendMail delivers msg to t's recipient through t's relay, with
// STARTTLS when the relay offers it. The envelope sender is t.From.
// Refusals with a 5xx reply are permanent errors.
func sendMail(ctx context.Context, t EmailTarget, host string, msg []byte, timeout time.Duration) (err error) {
	relay, port := t.Relay, t.Port
	if relay == "" {
		relay = "localhost"
	}
	if port == "" {
		port = smtpPort
	}
	addr := net.JoinHostPort(relay, port)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("notify: smtp %s: %w", addr, err)
	}
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	c, err := smtp.NewClient(conn, relay)
	if err != nil {
		conn.Close()
		return classifySMTP(addr, err)
	}
	defer c.Close()
	step := func(err error) error {
		if err != nil {
			return classifySMTP(addr, err)
		}
		return nil
	}
	if err := step(c.Hello(host)); err != nil {
		return err
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		cfg := t.TLS
		if cfg == nil {
			cfg = &tls.Config{}
			// The message does not leave the host: a relay on
			// loopback (the default, a local MTA) commonly has a
			// self-signed certificate, and checking it would protect
			// from nothing that could not read the message anyway.
			cfg.InsecureSkipVerify = loopback(relay)
		}
		cfg = cfg.Clone()
		cfg.ServerName = relay
		if err := step(c.StartTLS(cfg)); err != nil {
			return err
		}
	}
	if err := step(c.Mail(bareAddress(t.From))); err != nil {
		return err
	}
	if err := step(c.Rcpt(bareAddress(t.To))); err != nil {
		return err
	}
	w, err := c.Data()
	if err := step(err); err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return step(err)
	}
	if err := step(w.Close()); err != nil {
		return err
	}
	return step(c.Quit())
}

// loopback reports whether host names this machine: "localhost" or a
// loopback address.
func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// bareAddress returns the address of "Name <addr>", or s.
func bareAddress(s string) string {
	if i := strings.LastIndexByte(s, '<'); i >= 0 {
		if j := strings.IndexByte(s[i:], '>'); j > 0 {
			return s[i+1 : i+j]
		}
	}
	return strings.TrimSpace(s)
}

// classifySMTP wraps an SMTP failure: a 5xx reply is permanent.
func classifySMTP(addr string, err error) error {
	err = fmt.Errorf("notify: smtp %s: %w", addr, err)
	var reply *textproto.Error
	if errors.As(err, &reply) && reply.Code >= 500 {
		return &PermanentError{err}
	}
	return err
}
