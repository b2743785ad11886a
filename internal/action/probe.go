package action

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

func init() {
	register("http.wait", httpWait{})
	register("check", check{})
	register("wait", wait{})
	register("approve", approve{})
	register("notify", notify{})
}

// httpProbe is one HTTP request with expectations.
type httpProbe struct {
	url, method, body, contains string
	headers                     map[string]string
	status                      int
	client                      *http.Client
}

func newHTTPProbe(env *Env, p Params, urlKey string) (*httpProbe, error) {
	raw, err := p.Required(urlKey)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("parameter %s: %q is not an http(s) URL", urlKey, raw)
	}
	status, err := p.Int("status", 200)
	if err != nil {
		return nil, err
	}
	insecure, err := p.Bool("insecure", false)
	if err != nil {
		return nil, err
	}
	tc := &tls.Config{InsecureSkipVerify: insecure} //nolint:gosec // opt-in for self-signed DR endpoints
	if ca := p.String("ca_file", ""); ca != "" {
		if env.Plan != nil {
			ca = env.Plan.Resolve(ca)
		}
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("parameter ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("parameter ca_file: no certificate in %s", ca)
		}
		tc.RootCAs = pool
	}
	return &httpProbe{
		url: raw, method: strings.ToUpper(p.String("method", http.MethodGet)), body: p.String("body", ""),
		contains: p.String("contains", ""), headers: p.Map("headers"), status: status,
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tc, Proxy: http.ProxyFromEnvironment}},
	}, nil
}

func (h *httpProbe) try(ctx context.Context) (int, time.Duration, error) {
	var body io.Reader
	if h.body != "" {
		body = strings.NewReader(h.body)
	}
	req, err := http.NewRequestWithContext(ctx, h.method, h.url, body)
	if err != nil {
		return 0, 0, err
	}
	for k, v := range h.headers {
		req.Header.Set(k, v)
	}
	if h.body != "" && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	start := time.Now()
	resp, err := h.client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	lat := time.Since(start)
	if resp.StatusCode != h.status {
		return resp.StatusCode, lat, fmt.Errorf("%s %s: status %d, want %d", h.method, h.url, resp.StatusCode, h.status)
	}
	if h.contains != "" && !strings.Contains(string(b), h.contains) {
		return resp.StatusCode, lat, fmt.Errorf("%s %s: body does not contain %q", h.method, h.url, h.contains)
	}
	return resp.StatusCode, lat, nil
}

// httpWait polls an HTTP endpoint until it answers as expected; the
// step's timeout is the deadline.
type httpWait struct{}

func (httpWait) Check(ctx context.Context, env *Env, p Params) error {
	h, err := newHTTPProbe(env, p, "url")
	if err != nil {
		return err
	}
	if _, err := p.Duration("interval", 2*time.Second); err != nil {
		return err
	}
	env.printf("would wait for %s %s to answer %d", h.method, h.url, h.status)
	return nil
}

func (httpWait) Run(ctx context.Context, env *Env, p Params) (Result, error) {
	h, err := newHTTPProbe(env, p, "url")
	if err != nil {
		return nil, err
	}
	interval, err := p.Duration("interval", 2*time.Second)
	if err != nil {
		return nil, err
	}
	var status, attempts int
	var lat time.Duration
	err = poll(ctx, env, interval, func() error {
		attempts++
		var e error
		status, lat, e = h.try(ctx)
		return e
	})
	if err != nil {
		return nil, err
	}
	env.printf("%s %s: %d in %s after %d attempts", h.method, h.url, status, lat.Round(time.Millisecond), attempts)
	return Result{"url": h.url, "status": status, "latency_ms": lat.Milliseconds(), "attempts": attempts}, nil
}

// check waits until a named check, or an inline http or tcp probe, is in
// the expected state: up (default) or down — confirming an outage is a
// check too.
type check struct{}

func (check) probe(env *Env, p Params) (string, func(ctx context.Context) error, error) {
	switch {
	case p.Has("name"):
		name := p.String("name", "")
		if env.Checks == nil {
			return "", nil, fmt.Errorf("check %q: this plan defines no named checks; use http: or tcp: here", name)
		}
		return "check " + name, func(ctx context.Context) error { return env.Checks.RunCheck(ctx, name) }, nil
	case p.Has("http"):
		h, err := newHTTPProbe(env, p, "http")
		if err != nil {
			return "", nil, err
		}
		return h.method + " " + h.url, func(ctx context.Context) error { _, _, err := h.try(ctx); return err }, nil
	case p.Has("tcp"):
		addr := p.String("tcp", "")
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return "", nil, fmt.Errorf("parameter tcp: want host:port, got %q", addr)
		}
		return "tcp " + addr, func(ctx context.Context) error {
			d := net.Dialer{Timeout: 5 * time.Second}
			c, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				return err
			}
			return c.Close()
		}, nil
	}
	return "", nil, errors.New("one of name, http or tcp is required")
}

func (c check) Check(ctx context.Context, env *Env, p Params) error {
	what, _, err := c.probe(env, p)
	if err != nil {
		return err
	}
	env.printf("would check %s is %s", what, p.String("expect", "up"))
	return nil
}

func (c check) Run(ctx context.Context, env *Env, p Params) (Result, error) {
	what, try, err := c.probe(env, p)
	if err != nil {
		return nil, err
	}
	interval, err := p.Duration("interval", 2*time.Second)
	if err != nil {
		return nil, err
	}
	expect := p.String("expect", "up")
	var last error
	err = poll(ctx, env, interval, func() error {
		probeCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		last = try(probeCtx)
		switch {
		case expect == "down" && last == nil:
			return fmt.Errorf("%s is still up", what)
		case expect != "down" && last != nil:
			return last
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if expect == "down" {
		env.printf("%s is down as expected: %v", what, last)
		return Result{"probe": what, "state": "down", "error": last.Error()}, nil
	}
	env.printf("%s is up", what)
	return Result{"probe": what, "state": "up"}, nil
}

// wait pauses for a duration: letting traffic settle, watching a metric.
type wait struct{}

func (wait) Check(ctx context.Context, env *Env, p Params) error {
	_, err := p.Duration("duration", 0)
	return err
}

func (wait) Run(ctx context.Context, env *Env, p Params) (Result, error) {
	d, err := p.Duration("duration", 0)
	if err != nil {
		return nil, err
	}
	if m := p.String("message", ""); m != "" {
		env.printf("%s", m)
	}
	env.printf("waiting %s", d)
	if err := env.clock().Sleep(ctx, d); err != nil {
		return nil, err
	}
	return Result{"waited": d.String()}, nil
}

// approve is a gate: the engine waits for a person's approval before it
// runs the step (see internal/runbook); running it records the message.
type approve struct{}

func (approve) Check(ctx context.Context, env *Env, p Params) error {
	env.printf("would ask: %s", p.String("message", "approve to continue"))
	return nil
}

func (approve) Run(ctx context.Context, env *Env, p Params) (Result, error) {
	return Result{"message": p.String("message", "")}, nil
}

// notify sends a templated message to channels through env.Notifier,
// which knows the incident the run belongs to.
type notify struct{}

func (notify) request(p Params) NotifyRequest {
	chs := p.Strings("channels")
	if c := p.String("channel", ""); c != "" {
		chs = append([]string{c}, chs...)
	}
	fields := map[string]string{}
	for _, k := range []string{"status", "impact", "issue", "root_cause"} {
		if p.Has(k) {
			fields[k] = p.String(k, "")
		}
	}
	return NotifyRequest{Channels: chs, Template: p.String("template", ""), Message: p.String("message", ""), Event: p.String("event", ""), Fields: fields}
}

func (n notify) Check(ctx context.Context, env *Env, p Params) error {
	if env.Notifier == nil {
		return errors.New("notify: no notifier")
	}
	if c, ok := env.Notifier.(interface {
		Check(context.Context, NotifyRequest) error
	}); ok {
		return c.Check(ctx, n.request(p))
	}
	return nil
}

func (n notify) Run(ctx context.Context, env *Env, p Params) (Result, error) {
	if env.Notifier == nil {
		return nil, errors.New("notify: no notifier")
	}
	sent, err := env.Notifier.Notify(ctx, n.request(p))
	if err != nil {
		return Result{"sent": sent}, err
	}
	env.printf("sent to %s", strings.Join(sent, ", "))
	return Result{"sent": sent}, nil
}
