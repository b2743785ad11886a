package dnszone

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/linkapp/linkdr/internal/plan"
)

// rfc2136 changes a zone with DNS UPDATE messages (RFC 2136) signed with
// a TSIG key (RFC 8945), sent over TCP to the zone's primary.
type rfc2136 struct {
	apex, server     string
	keyName, keyAlgo string
	keySecret        string
	nameservers      []string
}

// ErrRefused: the server rejected an update (wrong key, no permission).
var ErrRefused = errors.New("DNS update refused")

func openRFC2136(p *plan.Plan, cfg *plan.DNSProvider) (*rfc2136, error) {
	z := &rfc2136{apex: dns.Fqdn(strings.ToLower(cfg.Zone)), server: cfg.Server, nameservers: cfg.Nameservers}
	if cfg.TSIGName != "" {
		z.keyName = dns.Fqdn(cfg.TSIGName)
		z.keyAlgo = dns.Fqdn(strings.ToLower(cfg.TSIGAlgorithm))
		z.keySecret = cfg.TSIGSecret.Reveal()
		if cfg.TSIGSecretFile != "" {
			b, err := os.ReadFile(p.Resolve(cfg.TSIGSecretFile))
			if err != nil {
				return nil, fmt.Errorf("TSIG secret: %w", err)
			}
			z.keySecret = strings.TrimSpace(string(b))
		}
	}
	return z, nil
}

// Secret is the TSIG secret, for masking in journals.
func (z *rfc2136) Secret() string { return z.keySecret }

func (z *rfc2136) Apex() string { return z.apex }

func (z *rfc2136) Ping(ctx context.Context) error {
	vals, err := Query(ctx, z.server, z.apex, "SOA")
	if err != nil {
		return err
	}
	if len(vals) == 0 {
		return fmt.Errorf("%s has no SOA for %s: not authoritative for the zone", z.server, z.apex)
	}
	return nil
}

func (z *rfc2136) Get(ctx context.Context, name, typ string) (RecordSet, error) {
	vals, err := Query(ctx, z.server, name, typ)
	if err != nil {
		return RecordSet{}, err
	}
	rs := RecordSet{Name: dns.Fqdn(name), Type: typ, Values: vals}
	// The TTL comes from a direct look at the answer.
	m := new(dns.Msg)
	m.SetQuestion(rs.Name, dns.StringToType[typ])
	m.RecursionDesired = false
	if r, _, err := (&dns.Client{Timeout: 5 * time.Second}).ExchangeContext(ctx, m, z.server); err == nil {
		for _, rr := range r.Answer {
			if rr.Header().Rrtype == dns.StringToType[typ] {
				rs.TTL = rr.Header().Ttl
			}
		}
	}
	return rs, nil
}

func (z *rfc2136) Set(ctx context.Context, rs RecordSet) error {
	m := new(dns.Msg)
	m.SetUpdate(z.apex)
	if rs.Type == "CNAME" {
		// A CNAME cannot live beside other data: clear the name.
		m.RemoveName([]dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: rs.Name, Rrtype: dns.TypeANY, Class: dns.ClassANY}}})
	} else {
		m.RemoveRRset([]dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: rs.Name, Rrtype: dns.StringToType[rs.Type], Class: dns.ClassANY}}})
		// ...and a CNAME at the name would block the new set.
		m.RemoveRRset([]dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: rs.Name, Rrtype: dns.TypeCNAME, Class: dns.ClassANY}}})
	}
	var rrs []dns.RR
	for _, v := range rs.Values {
		rr, err := newRR(rs, v)
		if err != nil {
			return err
		}
		rrs = append(rrs, rr)
	}
	m.Insert(rrs)
	c := &dns.Client{Net: "tcp", Timeout: 10 * time.Second}
	if z.keyName != "" {
		m.SetTsig(z.keyName, z.keyAlgo, 300, time.Now().Unix())
		c.TsigSecret = map[string]string{z.keyName: z.keySecret}
	}
	r, _, err := c.ExchangeContext(ctx, m, z.server)
	if err != nil {
		if errors.Is(err, dns.ErrSig) || errors.Is(err, dns.ErrAuth) || errors.Is(err, dns.ErrTime) {
			return fmt.Errorf("%w: update %s at %s: TSIG signature rejected (check tsig_name and tsig_secret): %v", ErrRefused, rs.Name, z.server, err)
		}
		return fmt.Errorf("update %s at %s: %w", rs.Name, z.server, err)
	}
	if r.Rcode != dns.RcodeSuccess {
		hint := ""
		switch r.Rcode {
		case dns.RcodeRefused, dns.RcodeNotAuth:
			hint = " (the server does not accept updates from this key: check allow-update / update-policy and the TSIG key)"
		case dns.RcodeNotZone:
			hint = fmt.Sprintf(" (%s is not inside zone %s)", rs.Name, z.apex)
		}
		return fmt.Errorf("%w: update %s at %s: %s%s", ErrRefused, rs.Name, z.server, dns.RcodeToString[r.Rcode], hint)
	}
	return nil
}

func (z *rfc2136) Nameservers(context.Context) ([]string, error) {
	if len(z.nameservers) > 0 {
		return z.nameservers, nil
	}
	return []string{z.server}, nil
}
