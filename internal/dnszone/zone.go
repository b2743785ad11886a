package dnszone

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/linkapp/linkdr/internal/plan"
)

// RecordSet is the values of one name and type.
type RecordSet struct {
	Name   string   `json:"name"` // fully qualified, with the final dot
	Type   string   `json:"type"` // A, AAAA, CNAME, TXT
	TTL    uint32   `json:"ttl"`
	Values []string `json:"values"` // canonical: sorted, names fully qualified
}

// Zone is a zone at one provider.
type Zone interface {
	// Apex is the zone's name with the final dot.
	Apex() string
	// Ping proves the zone is reachable and the credentials work,
	// without changing anything.
	Ping(ctx context.Context) error
	// Get reads a record set from the provider; no values means none.
	Get(ctx context.Context, name, typ string) (RecordSet, error)
	// Set replaces a record set.
	Set(ctx context.Context, rs RecordSet) error
	// Nameservers are the authoritative servers (host:port) that
	// verification queries; empty means verify through the API.
	Nameservers(ctx context.Context) ([]string, error)
}

// Open connects to the provider of a plan's DNS provider entry. secret
// resolves file paths relative to the plan.
func Open(ctx context.Context, p *plan.Plan, name string) (Zone, error) {
	cfg, ok := p.DNS.Providers[name]
	if !ok || cfg == nil {
		return nil, fmt.Errorf("no DNS provider %q in %s", name, p.Path)
	}
	switch cfg.Type {
	case "rfc2136":
		return openRFC2136(p, cfg)
	case "route53":
		return openRoute53(ctx, cfg)
	}
	return nil, fmt.Errorf("DNS provider %s: unknown type %q", name, cfg.Type)
}

// FQDN makes a record name absolute within a zone: "api" → "api.linkapp.com.".
func FQDN(record, apex string) string {
	if strings.HasSuffix(record, ".") {
		return strings.ToLower(record)
	}
	if record == "@" || record == "" {
		return apex
	}
	return strings.ToLower(record + "." + apex)
}

// TypeFor guesses the record type of values: addresses are A or AAAA,
// anything else a CNAME.
func TypeFor(values []string) string {
	if len(values) == 0 {
		return "A"
	}
	a, err := netip.ParseAddr(values[0])
	switch {
	case err != nil:
		return "CNAME"
	case a.Is4():
		return "A"
	default:
		return "AAAA"
	}
}

// Canonical sorts values and qualifies names, so sets compare equal
// whatever order a server answers in.
func Canonical(typ string, values []string) []string {
	out := make([]string, 0, len(values))
	for _, v := range values {
		v = strings.TrimSpace(v)
		switch typ {
		case "CNAME":
			v = strings.ToLower(dns.Fqdn(v))
		case "A", "AAAA":
			if a, err := netip.ParseAddr(v); err == nil {
				v = a.String()
			}
		}
		out = append(out, v)
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// Qualify makes relative CNAME targets absolute within the zone, as a
// zone file would: "api-dr" in linkapp.com. is api-dr.linkapp.com.
func Qualify(typ string, values []string, apex string) []string {
	if typ != "CNAME" {
		return values
	}
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = FQDN(v, apex)
	}
	return out
}

// Equal compares canonical value lists.
func Equal(a, b []string) bool { return slices.Equal(a, b) }

// rrValue is the value part of a record as a canonical string.
func rrValue(rr dns.RR) (string, bool) {
	switch r := rr.(type) {
	case *dns.A:
		return r.A.String(), true
	case *dns.AAAA:
		return r.AAAA.String(), true
	case *dns.CNAME:
		return strings.ToLower(r.Target), true
	case *dns.TXT:
		return strings.Join(r.Txt, ""), true
	case *dns.SOA:
		return strings.ToLower(r.Ns), true
	}
	return "", false
}

func newRR(rs RecordSet, value string) (dns.RR, error) {
	if rs.Type == "TXT" {
		value = fmt.Sprintf("%q", value)
	}
	rr, err := dns.NewRR(fmt.Sprintf("%s %d IN %s %s", rs.Name, rs.TTL, rs.Type, value))
	if err != nil {
		return nil, fmt.Errorf("record %s %s %s: %w", rs.Name, rs.Type, value, err)
	}
	return rr, nil
}

// Query asks one server for a record set, without recursion, and
// requires an authoritative answer: a cache or forwarder saying
// something proves nothing about the zone.
func Query(ctx context.Context, server, name, typ string) ([]string, error) {
	qt, ok := dns.StringToType[typ]
	if !ok {
		return nil, fmt.Errorf("unknown record type %q", typ)
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qt)
	m.RecursionDesired = false
	c := &dns.Client{Timeout: 5 * time.Second}
	r, _, err := c.ExchangeContext(ctx, m, server)
	if err == nil && r.Truncated {
		c.Net = "tcp"
		r, _, err = c.ExchangeContext(ctx, m, server)
	}
	if err != nil {
		return nil, fmt.Errorf("query %s %s at %s: %w", name, typ, server, err)
	}
	if r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError {
		return nil, fmt.Errorf("query %s %s at %s: %s", name, typ, server, dns.RcodeToString[r.Rcode])
	}
	if !r.Authoritative {
		return nil, fmt.Errorf("query %s %s at %s: the answer is not authoritative (is this server authoritative for the zone?)", name, typ, server)
	}
	var vals []string
	for _, rr := range r.Answer {
		if rr.Header().Rrtype != qt || !strings.EqualFold(rr.Header().Name, dns.Fqdn(name)) {
			continue
		}
		if v, ok := rrValue(rr); ok {
			vals = append(vals, v)
		}
	}
	return Canonical(typ, vals), nil
}

// Verify queries every nameserver once and reports the first one that
// does not answer with the wanted values.
func Verify(ctx context.Context, nameservers []string, rs RecordSet) error {
	want := Canonical(rs.Type, rs.Values)
	for _, ns := range nameservers {
		got, err := Query(ctx, ns, rs.Name, rs.Type)
		if err != nil {
			return err
		}
		if !Equal(got, want) {
			return fmt.Errorf("%s answers %s %s = %v, want %v", ns, rs.Name, rs.Type, got, want)
		}
	}
	return nil
}

// withPort adds :53 to a bare host.
func withPort(s string) string {
	if _, _, err := net.SplitHostPort(s); err == nil {
		return s
	}
	return net.JoinHostPort(strings.TrimSuffix(s, "."), "53")
}
