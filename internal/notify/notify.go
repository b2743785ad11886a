package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/template"
	"time"

	"github.com/linkapp/linkdr/internal/plan"
)

// Events say what a message does to an incident; PagerDuty maps them to
// event actions, other channels just deliver the text.
const (
	EventTrigger     = "trigger"
	EventAcknowledge = "acknowledge"
	EventResolve     = "resolve"
	EventInfo        = "info"
)

// Message is one notification.
type Message struct {
	Event    string
	Summary  string // one line: subject, PagerDuty summary
	Text     string // the rendered template
	Severity string // critical, high, medium, low
	// DedupKey ties the messages of one incident together (the incident id).
	DedupKey string
	Source   string
	Time     time.Time
	Details  map[string]string
}

// Channel delivers messages.
type Channel interface {
	Send(ctx context.Context, m Message) error
	// Secrets are the channel's credentials, for masking.
	Secrets() []string
}

// DefaultPagerDutyURL is the Events API v2 endpoint.
const DefaultPagerDutyURL = "https://events.pagerduty.com/v2/enqueue"

// Open builds a channel of the plan. client nil means a client with a
// 30 s timeout.
func Open(p *plan.Plan, name string, client *http.Client) (Channel, error) {
	cfg, ok := p.Notifications.Channels[name]
	if !ok || cfg == nil {
		return nil, fmt.Errorf("no notification channel %q in %s", name, p.Path)
	}
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	read := func(inline plan.Secret, file, what string) (string, error) {
		if file == "" {
			return inline.Reveal(), nil
		}
		b, err := os.ReadFile(p.Resolve(file))
		if err != nil {
			return "", fmt.Errorf("channel %s: %s: %w", name, what, err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	switch cfg.Type {
	case "slack", "webhook":
		u, err := read(cfg.URL, cfg.URLFile, "url_file")
		if err != nil {
			return nil, err
		}
		if cfg.Type == "slack" {
			return &slack{name: name, url: u, client: client}, nil
		}
		headers := map[string]string{}
		for k, v := range cfg.Headers {
			headers[k] = v.Reveal()
		}
		return &webhook{name: name, url: u, headers: headers, client: client}, nil
	case "pagerduty":
		key, err := read(cfg.RoutingKey, cfg.RoutingKeyFile, "routing_key_file")
		if err != nil {
			return nil, err
		}
		u := cfg.URL.Reveal()
		if u == "" {
			u = DefaultPagerDutyURL
		}
		return &pagerDuty{name: name, url: u, key: key, client: client}, nil
	case "email":
		pw, err := read(cfg.Password, cfg.PasswordFile, "password_file")
		if err != nil {
			return nil, err
		}
		return &email{name: name, cfg: cfg, password: pw}, nil
	}
	return nil, fmt.Errorf("channel %s: unknown type %q", name, cfg.Type)
}

// postJSON sends a JSON body and treats any non-2xx answer as an error
// carrying the body the service sent back.
func postJSON(ctx context.Context, client *http.Client, url string, body any, headers map[string]string) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "linkdr")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return redactURLError(err, url)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("HTTP %s: %s", resp.Status, strings.TrimSpace(string(answer)))
	}
	return nil
}

// redactURLError keeps webhook URLs, which are credentials, out of errors.
func redactURLError(err error, url string) error {
	return fmt.Errorf("%s", strings.ReplaceAll(err.Error(), url, "<webhook URL>"))
}

// slack posts to an incoming webhook: {"text": "..."}.
type slack struct {
	name, url string
	client    *http.Client
}

func (s *slack) Secrets() []string { return []string{s.url} }

func (s *slack) Send(ctx context.Context, m Message) error {
	if err := postJSON(ctx, s.client, s.url, map[string]any{"text": m.Text}, nil); err != nil {
		return fmt.Errorf("slack %s: %w", s.name, err)
	}
	return nil
}

// webhook posts a JSON document describing the message.
type webhook struct {
	name, url string
	headers   map[string]string
	client    *http.Client
}

// WebhookPayload is what a generic webhook receives (documented in
// docs/incidents.md).
type WebhookPayload struct {
	Event    string            `json:"event"`
	Summary  string            `json:"summary"`
	Text     string            `json:"text"`
	Severity string            `json:"severity,omitempty"`
	DedupKey string            `json:"dedup_key,omitempty"`
	Source   string            `json:"source,omitempty"`
	Time     time.Time         `json:"time"`
	Details  map[string]string `json:"details,omitempty"`
}

func (w *webhook) Secrets() []string {
	out := []string{w.url}
	for _, v := range w.headers {
		out = append(out, v)
	}
	return out
}

func (w *webhook) Send(ctx context.Context, m Message) error {
	p := WebhookPayload{Event: m.Event, Summary: m.Summary, Text: m.Text, Severity: m.Severity, DedupKey: m.DedupKey, Source: m.Source, Time: m.Time.UTC(), Details: m.Details}
	if err := postJSON(ctx, w.client, w.url, p, w.headers); err != nil {
		return fmt.Errorf("webhook %s: %w", w.name, err)
	}
	return nil
}

// pagerDuty speaks Events API v2.
type pagerDuty struct {
	name, url, key string
	client         *http.Client
}

func (p *pagerDuty) Secrets() []string { return []string{p.key} }

// pdSeverity maps plan severities to the four PagerDuty knows.
func pdSeverity(s string) string {
	switch s {
	case "critical":
		return "critical"
	case "high":
		return "error"
	case "medium":
		return "warning"
	default:
		return "info"
	}
}

func (p *pagerDuty) Send(ctx context.Context, m Message) error {
	body := map[string]any{"routing_key": p.key, "dedup_key": m.DedupKey}
	switch m.Event {
	case EventTrigger:
		summary := m.Summary
		if len(summary) > 1024 {
			summary = summary[:1024]
		}
		details := map[string]any{"text": m.Text}
		for k, v := range m.Details {
			details[k] = v
		}
		body["event_action"] = "trigger"
		body["client"] = "linkdr"
		body["payload"] = map[string]any{
			"summary": summary, "source": m.Source, "severity": pdSeverity(m.Severity),
			"timestamp": m.Time.UTC().Format(time.RFC3339), "custom_details": details,
		}
	case EventAcknowledge, EventResolve:
		body["event_action"] = m.Event
	default:
		// Updates and reminders are for people; PagerDuty tracks state.
		return nil
	}
	if m.DedupKey == "" {
		return fmt.Errorf("pagerduty %s: a dedup key (the incident id) is required", p.name)
	}
	if err := postJSON(ctx, p.client, p.url, body, nil); err != nil {
		return fmt.Errorf("pagerduty %s: %s: %w", p.name, m.Event, err)
	}
	return nil
}

// Data is what message templates see.
type Data struct {
	ID, Title, Service, Status, Impact, Severity string
	Issue, Message, RootCause                    string
	Scenario, Run                                string
	Started, Resolved, NextUpdate                time.Time
	UpdateInterval, PostmortemDue                time.Duration
	Vars                                         map[string]string
}

// Render executes a template of the plan by name, or an inline one.
func Render(p *plan.Plan, name, inline string, d Data) (string, error) {
	src := inline
	if name != "" {
		var ok bool
		if src, ok = p.Incidents.Templates[name]; !ok {
			return "", fmt.Errorf("no template %q (templates: %s)", name, strings.Join(templateNames(p), ", "))
		}
	}
	t, err := template.New(name).Funcs(plan.TemplateFuncs).Option("missingkey=zero").Parse(src)
	if err != nil {
		return "", fmt.Errorf("template %s: %w", name, err)
	}
	var b strings.Builder
	if err := t.Execute(&b, d); err != nil {
		return "", fmt.Errorf("template %s: %w", name, err)
	}
	return strings.TrimSpace(b.String()), nil
}

func templateNames(p *plan.Plan) []string {
	var out []string
	for k := range p.Incidents.Templates {
		out = append(out, k)
	}
	return out
}

// Summary is the first non-empty line of a text.
func Summary(text string) string {
	for _, l := range strings.Split(text, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return ""
}
