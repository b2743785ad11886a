package runbook

import (
	"bytes"
	"net/url"
	"sort"
	"strings"
	"sync"

	"github.com/linkapp/linkdr/internal/journal"
	"github.com/linkapp/linkdr/internal/plan"
)

// masker replaces known secrets with *** in everything journaled.
type masker struct {
	mu      sync.Mutex
	secrets []string
}

const masked = "***"

func newMasker(p *plan.Plan) *masker {
	m := &masker{}
	for _, name := range p.StoreNames() {
		if s := p.Stores[name]; s != nil {
			m.addURL(s.URL.Reveal())
		}
	}
	for _, c := range p.Notifications.Channels {
		if c == nil {
			continue
		}
		m.add(c.URL.Reveal())
		m.add(c.RoutingKey.Reveal())
		m.add(c.Password.Reveal())
		for _, h := range c.Headers {
			m.add(h.Reveal())
		}
	}
	for _, d := range p.DNS.Providers {
		if d != nil {
			m.add(d.TSIGSecret.Reveal())
		}
	}
	return m
}

func (m *masker) addURL(raw string) {
	if u, err := url.Parse(raw); err == nil {
		if pw, ok := u.User.Password(); ok {
			m.add(pw)
		}
	}
}

// add registers a secret; values shorter than 4 characters would mask
// ordinary text and are ignored.
func (m *masker) add(s string) {
	s = strings.TrimSpace(s)
	if len(s) < 4 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, x := range m.secrets {
		if x == s {
			return
		}
	}
	m.secrets = append(m.secrets, s)
	// Longest first, so a secret containing another is masked whole.
	sort.Slice(m.secrets, func(i, j int) bool { return len(m.secrets[i]) > len(m.secrets[j]) })
}

func (m *masker) text(s string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, x := range m.secrets {
		s = strings.ReplaceAll(s, x, masked)
	}
	return s
}

func (m *masker) value(v any) any {
	switch x := v.(type) {
	case string:
		return m.text(x)
	case []string:
		out := make([]string, len(x))
		for i, e := range x {
			out[i] = m.text(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = m.value(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = m.value(e)
		}
		return out
	}
	return v
}

func (m *masker) event(e journal.Event) journal.Event {
	e.Message, e.Error = m.text(e.Message), m.text(e.Error)
	if e.Data != nil {
		if d, ok := m.value(e.Data).(map[string]any); ok {
			e.Data = d
		}
	}
	return e
}

// lineWriter turns an action's output into one event per line.
type lineWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	emit func(string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for {
		i := bytes.IndexByte(w.buf.Bytes(), '\n')
		if i < 0 {
			break
		}
		line := string(w.buf.Next(i + 1))
		w.emit(strings.TrimRight(line, "\r\n"))
	}
	return len(p), nil
}

// Flush emits a last line without a newline.
func (w *lineWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.buf.Len() > 0 {
		w.emit(w.buf.String())
		w.buf.Reset()
	}
}
