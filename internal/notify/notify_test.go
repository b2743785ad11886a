package notify

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/linkapp/linkdr/internal/plan"
)

// receiver is a local HTTP endpoint that records what it is sent.
type receiver struct {
	mu     sync.Mutex
	bodies []map[string]any
	status int
	srv    *httptest.Server
}

func newReceiver(t *testing.T, status int) *receiver {
	r := &receiver{status: status}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "want a JSON POST", http.StatusBadRequest)
			return
		}
		var body map[string]any
		if err := json.NewDecoder(req.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.bodies = append(r.bodies, body)
		r.mu.Unlock()
		w.WriteHeader(r.status)
		io.WriteString(w, `{"status":"success","message":"Event processed"}`)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) got() []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]map[string]any(nil), r.bodies...)
}

func keys(m map[string]any) string {
	var k []string
	for key := range m {
		k = append(k, key)
	}
	sort.Strings(k)
	return strings.Join(k, ",")
}

var start = time.Date(2026, 11, 26, 6, 15, 0, 0, time.UTC)

func testPlan(channels map[string]*plan.Channel) *plan.Plan {
	p := plan.Default()
	p.Name = "link"
	p.Incidents.Service = "Link App"
	p.Notifications.Channels = channels
	return p
}

func alert(t *testing.T, p *plan.Plan) Message {
	text, err := Render(p, "alert", "", Data{Service: "Link App", Status: "Investigating", Impact: "High",
		Started: start, Issue: "a regional outage in us-west-2", UpdateInterval: 30 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return Message{Event: EventTrigger, Summary: Summary(text), Text: text, Severity: "critical", DedupKey: "inc-20261126t061500z-3fa2", Source: "linkdr/regional-failure", Time: start}
}

func TestDefaultTemplates(t *testing.T) {
	p := testPlan(nil)
	m := alert(t, p)
	want := `🚨 INCIDENT ALERT
Service: Link App
Status: Investigating
Impact: High
Start Time: 2026-11-26 06:15 UTC
We are investigating reports of a regional outage in us-west-2. Updates will be provided every 30 minutes.`
	if m.Text != want {
		t.Fatalf("alert:\n%s\nwant:\n%s", m.Text, want)
	}
	text, err := Render(p, "resolved", "", Data{Service: "Link App", Resolved: start.Add(3 * time.Hour), RootCause: "loss of us-west-2", PostmortemDue: 48 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	want = `✅ RESOLVED
The issue affecting Link App has been resolved as of 2026-11-26 09:15 UTC.
Root cause: loss of us-west-2
Full post-mortem will be available within 48 hours.`
	if text != want {
		t.Fatalf("resolved:\n%s\nwant:\n%s", text, want)
	}
	if _, err := Render(p, "nope", "", Data{}); err == nil {
		t.Fatal("unknown template rendered")
	}
}

func TestSlackPayload(t *testing.T) {
	r := newReceiver(t, http.StatusOK)
	p := testPlan(map[string]*plan.Channel{"slack": {Type: "slack", URL: plan.Secret(r.srv.URL + "/services/T0/B0/secret")}})
	ch, err := Open(p, "slack", nil)
	if err != nil {
		t.Fatal(err)
	}
	m := alert(t, p)
	if err := ch.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	got := r.got()
	if len(got) != 1 || keys(got[0]) != "text" || got[0]["text"] != m.Text {
		t.Fatalf("slack got %v, want exactly {\"text\": alert}", got)
	}
	if s := ch.Secrets(); len(s) != 1 || !strings.Contains(s[0], "secret") {
		t.Fatalf("secrets %v", s)
	}
}

func TestPagerDutyEventsV2(t *testing.T) {
	r := newReceiver(t, http.StatusAccepted)
	key := "R0UT1NGKEY0123456789abcdefabcdef"
	p := testPlan(map[string]*plan.Channel{"pd": {Type: "pagerduty", RoutingKey: plan.Secret(key), URL: plan.Secret(r.srv.URL + "/v2/enqueue")}})
	ch, err := Open(p, "pd", nil)
	if err != nil {
		t.Fatal(err)
	}
	m := alert(t, p)
	m.Details = map[string]string{"scenario": "regional-failure"}
	ctx := context.Background()
	for _, ev := range []string{EventTrigger, EventInfo, EventAcknowledge, EventResolve} {
		m.Event = ev
		if err := ch.Send(ctx, m); err != nil {
			t.Fatalf("%s: %v", ev, err)
		}
	}
	got := r.got()
	if len(got) != 3 {
		t.Fatalf("pagerduty got %d events, want trigger, acknowledge, resolve (info is not sent): %v", len(got), got)
	}
	trig := got[0]
	if keys(trig) != "client,dedup_key,event_action,payload,routing_key" || trig["event_action"] != "trigger" || trig["routing_key"] != key || trig["dedup_key"] != m.DedupKey {
		t.Fatalf("trigger %v", trig)
	}
	pl := trig["payload"].(map[string]any)
	if keys(pl) != "custom_details,severity,source,summary,timestamp" || pl["summary"] != "🚨 INCIDENT ALERT" ||
		pl["severity"] != "critical" || pl["source"] != "linkdr/regional-failure" || pl["timestamp"] != "2026-11-26T06:15:00Z" {
		t.Fatalf("payload %v", pl)
	}
	if cd := pl["custom_details"].(map[string]any); cd["text"] != m.Text || cd["scenario"] != "regional-failure" {
		t.Fatalf("custom_details %v", cd)
	}
	for i, action := range []string{"acknowledge", "resolve"} {
		e := got[i+1]
		if keys(e) != "dedup_key,event_action,routing_key" || e["event_action"] != action || e["dedup_key"] != m.DedupKey {
			t.Fatalf("%s: %v", action, e)
		}
	}
}

func TestPagerDutyRejects(t *testing.T) {
	r := newReceiver(t, http.StatusBadRequest)
	p := testPlan(map[string]*plan.Channel{"pd": {Type: "pagerduty", RoutingKey: "k", URL: plan.Secret(r.srv.URL)}})
	ch, _ := Open(p, "pd", nil)
	err := ch.Send(context.Background(), alert(t, p))
	if err == nil || !strings.Contains(err.Error(), "400") {
		t.Fatalf("got %v", err)
	}
}

func TestWebhookPayload(t *testing.T) {
	r := newReceiver(t, http.StatusNoContent)
	p := testPlan(map[string]*plan.Channel{"hook": {Type: "webhook", URL: plan.Secret(r.srv.URL), Headers: map[string]plan.Secret{"Authorization": "Bearer t0k3n"}}})
	ch, _ := Open(p, "hook", nil)
	m := alert(t, p)
	if err := ch.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	got := r.got()
	if len(got) != 1 || keys(got[0]) != "dedup_key,event,severity,source,summary,text,time" || got[0]["event"] != "trigger" || got[0]["time"] != "2026-11-26T06:15:00Z" {
		t.Fatalf("webhook got %v", got)
	}
}

// smtpBackend records mail like a real relay; go-smtp is a complete SMTP
// server implementation.
type smtpBackend struct {
	mu   sync.Mutex
	mail []struct{ from, to, data, user string }
}

type smtpSession struct {
	b        *smtpBackend
	from     string
	to, user string
}

func (b *smtpBackend) NewSession(*smtp.Conn) (smtp.Session, error) { return &smtpSession{b: b}, nil }
func (s *smtpSession) AuthMechanisms() []string                    { return []string{sasl.Plain} }
func (s *smtpSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != "linkdr" || pass != "s3cret" {
			return errors.New("invalid credentials")
		}
		s.user = user
		return nil
	}), nil
}
func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error { s.from = from; return nil }
func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to += to + ";"
	return nil
}
func (s *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.b.mail = append(s.b.mail, struct{ from, to, data, user string }{s.from, s.to, string(b), s.user})
	return nil
}
func (s *smtpSession) Reset()        {}
func (s *smtpSession) Logout() error { return nil }

func TestEmail(t *testing.T) {
	be := &smtpBackend{}
	srv := smtp.NewServer(be)
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	p := testPlan(map[string]*plan.Channel{
		"mail": {Type: "email", SMTP: l.Addr().String(), From: "linkdr@linkapp.test", To: []string{"oncall@linkapp.test", "cto@linkapp.test"}, Username: "linkdr", Password: "s3cret", StartTLS: "auto"},
		"tls":  {Type: "email", SMTP: l.Addr().String(), From: "linkdr@linkapp.test", To: []string{"oncall@linkapp.test"}, StartTLS: "always"},
		"bad":  {Type: "email", SMTP: l.Addr().String(), From: "linkdr@linkapp.test", To: []string{"oncall@linkapp.test"}, Username: "linkdr", Password: "wrong", StartTLS: "auto"},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ch, _ := Open(p, "mail", nil)
	m := alert(t, p)
	if err := ch.Send(ctx, m); err != nil {
		t.Fatal(err)
	}
	if len(be.mail) != 1 {
		t.Fatalf("%d mails", len(be.mail))
	}
	got := be.mail[0]
	if got.from != "linkdr@linkapp.test" || got.to != "oncall@linkapp.test;cto@linkapp.test;" || got.user != "linkdr" {
		t.Fatalf("envelope %+v", got)
	}
	for _, want := range []string{"Subject: =?utf-8?q?[inc-20261126t061500z-3fa2]_=F0=9F=9A=A8_INCIDENT_ALERT?=\r\n",
		"Content-Type: text/plain; charset=utf-8\r\n", "\r\n\r\n🚨 INCIDENT ALERT\r\nService: Link App\r\n", "Updates will be provided every 30 minutes.\r\n"} {
		if !strings.Contains(got.data, want) {
			t.Errorf("mail lacks %q:\n%s", want, got.data)
		}
	}
	tls, _ := Open(p, "tls", nil)
	if err := tls.Send(ctx, m); err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("starttls always without TLS: %v", err)
	}
	bad, _ := Open(p, "bad", nil)
	if err := bad.Send(ctx, m); err == nil || !strings.Contains(err.Error(), "AUTH") {
		t.Fatalf("wrong password: %v", err)
	}
}
