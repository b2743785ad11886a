package notify

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"mime"
	"net"
	"net/smtp"
	"strings"
	"time"

	"github.com/linkapp/linkdr/internal/plan"
)

// email sends a plain-text mail over SMTP, with STARTTLS when the server
// offers it (or always, or never) and AUTH PLAIN when a username is set.
type email struct {
	name     string
	cfg      *plan.Channel
	password string
}

func (e *email) Secrets() []string { return []string{e.password} }

func (e *email) Send(ctx context.Context, m Message) error {
	if err := e.send(ctx, m); err != nil {
		return fmt.Errorf("email %s via %s: %w", e.name, e.cfg.SMTP, err)
	}
	return nil
}

func (e *email) send(ctx context.Context, m Message) error {
	host, _, err := net.SplitHostPort(e.cfg.SMTP)
	if err != nil {
		return err
	}
	d := net.Dialer{Timeout: 15 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", e.cfg.SMTP)
	if err != nil {
		return err
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(time.Minute)
	}
	_ = conn.SetDeadline(deadline)
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return err
	}
	defer c.Close()
	if err := c.Hello("linkdr"); err != nil {
		return err
	}
	switch has, _ := c.Extension("STARTTLS"); {
	case e.cfg.StartTLS == "always" && !has:
		return fmt.Errorf("the server does not offer STARTTLS (starttls: always)")
	case has && e.cfg.StartTLS != "never":
		if err := c.StartTLS(&tls.Config{ServerName: host}); err != nil {
			return fmt.Errorf("STARTTLS: %w", err)
		}
	}
	if e.cfg.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", e.cfg.Username, e.password, host)); err != nil {
			return fmt.Errorf("AUTH: %w", err)
		}
	}
	if err := c.Mail(e.cfg.From); err != nil {
		return fmt.Errorf("MAIL FROM: %w", err)
	}
	for _, to := range e.cfg.To {
		if err := c.Rcpt(to); err != nil {
			return fmt.Errorf("RCPT TO %s: %w", to, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(e.compose(m)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// compose builds an RFC 5322 message; the subject is encoded because the
// plan's notices start with emoji.
func (e *email) compose(m Message) []byte {
	var id [8]byte
	_, _ = rand.Read(id[:])
	subject := m.Summary
	if m.DedupKey != "" {
		subject = fmt.Sprintf("[%s] %s", m.DedupKey, subject)
	}
	var b strings.Builder
	h := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	h("From", e.cfg.From)
	h("To", strings.Join(e.cfg.To, ", "))
	h("Subject", mime.QEncoding.Encode("utf-8", subject))
	h("Date", m.Time.UTC().Format(time.RFC1123Z))
	h("Message-ID", fmt.Sprintf("<%s.%s@linkdr>", hex.EncodeToString(id[:]), m.DedupKey))
	h("MIME-Version", "1.0")
	h("Content-Type", "text/plain; charset=utf-8")
	h("Content-Transfer-Encoding", "8bit")
	h("X-Linkdr-Event", m.Event)
	b.WriteString("\r\n")
	b.WriteString(strings.ReplaceAll(strings.ReplaceAll(m.Text, "\r\n", "\n"), "\n", "\r\n"))
	b.WriteString("\r\n")
	return []byte(b.String())
}
