package check

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/linkapp/linkdr/internal/plan"
)

func probeTCP(ctx context.Context, r *Runner, c *plan.Check) (map[string]any, error) {
	start := time.Now()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", c.Address)
	vars := map[string]any{"connected": err == nil, "latency": time.Since(start)}
	if err != nil {
		if ctx.Err() != nil {
			return vars, err
		}
		vars["error"] = err.Error()
		return vars, nil
	}
	conn.Close()
	return vars, nil
}

// probeDNS asks one server (the check's, else the first of
// /etc/resolv.conf) for one record type, over UDP with a TCP retry when
// the answer is truncated.
func probeDNS(ctx context.Context, r *Runner, c *plan.Check) (map[string]any, error) {
	server := c.Server
	if server == "" {
		cfg, err := dns.ClientConfigFromFile("/etc/resolv.conf")
		if err != nil || len(cfg.Servers) == 0 {
			return nil, fmt.Errorf("no server given and none in /etc/resolv.conf (hint: set server: host:53)")
		}
		server = net.JoinHostPort(cfg.Servers[0], cfg.Port)
	}
	if _, _, err := net.SplitHostPort(server); err != nil {
		server = net.JoinHostPort(server, "53")
	}
	qtype, ok := dns.StringToType[strings.ToUpper(c.Record)]
	if !ok {
		return nil, fmt.Errorf("unknown record type %q", c.Record)
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(c.Host), qtype)
	m.RecursionDesired = true
	client := &dns.Client{Net: "udp"}
	in, rtt, err := client.ExchangeContext(ctx, m, server)
	if err == nil && in.Truncated {
		client.Net = "tcp"
		in, rtt, err = client.ExchangeContext(ctx, m, server)
	}
	if err != nil {
		return nil, fmt.Errorf("query %s %s at %s: %w", c.Host, c.Record, server, err)
	}
	answers := []string{}
	ttl := -1
	for _, rr := range in.Answer {
		if rr.Header().Rrtype != qtype {
			continue // e.g. the CNAME in front of an A answer
		}
		answers = append(answers, strings.TrimSpace(strings.TrimPrefix(rr.String(), rr.Header().String())))
		if t := int(rr.Header().Ttl); ttl < 0 || t < ttl {
			ttl = t
		}
	}
	return map[string]any{"rcode": dns.RcodeToString[in.Rcode], "answers": answers, "ttl": max(ttl, 0),
		"authoritative": in.Authoritative, "latency": rtt}, nil
}
