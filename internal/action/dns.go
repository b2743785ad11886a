package action

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/linkapp/linkdr/internal/dnszone"
)

func init() { register("dns.failover", dnsFailover{}) }

// dnsFailover points a record at new values (the DR side, or back) and
// waits until the zone's authoritative servers answer with them.
type dnsFailover struct{}

type dnsStep struct {
	zone     dnszone.Zone
	want     dnszone.RecordSet
	from     []string
	ttl      int
	verify   bool
	interval time.Duration
}

func (dnsFailover) prepare(ctx context.Context, env *Env, p Params) (*dnsStep, error) {
	provider, err := p.Required("provider")
	if err != nil {
		return nil, err
	}
	record, err := p.Required("record")
	if err != nil {
		return nil, err
	}
	to := p.Strings("to")
	if len(to) == 0 {
		return nil, fmt.Errorf("parameter to is required")
	}
	z, err := dnszone.Open(ctx, env.Plan, provider)
	if err != nil {
		return nil, err
	}
	if s, ok := z.(interface{ Secret() string }); ok {
		env.secret(s.Secret())
	}
	typ := strings.ToUpper(p.String("type", dnszone.TypeFor(to)))
	s := &dnsStep{zone: z, want: dnszone.RecordSet{Name: dnszone.FQDN(record, z.Apex()), Type: typ, Values: dnszone.Canonical(typ, dnszone.Qualify(typ, to, z.Apex()))}}
	if f := p.Strings("from"); len(f) > 0 {
		s.from = dnszone.Canonical(typ, dnszone.Qualify(typ, f, z.Apex()))
	}
	if s.ttl, err = p.Int("ttl", 0); err != nil {
		return nil, err
	}
	if s.verify, err = p.Bool("verify", true); err != nil {
		return nil, err
	}
	if s.interval, err = p.Duration("interval", 2*time.Second); err != nil {
		return nil, err
	}
	return s, nil
}

// current reads the record and refuses to touch one that is neither
// where a failover starts (from) nor where it ends (to): someone else
// changed it, and overwriting that would hide it.
func (s *dnsStep) current(ctx context.Context) (dnszone.RecordSet, error) {
	cur, err := s.zone.Get(ctx, s.want.Name, s.want.Type)
	if err != nil {
		return cur, err
	}
	if s.from != nil && !dnszone.Equal(cur.Values, s.from) && !dnszone.Equal(cur.Values, s.want.Values) {
		return cur, fmt.Errorf("%s %s is %v, neither the expected %v (from) nor the target %v (to): someone else changed it (check, then correct from)", s.want.Name, s.want.Type, cur.Values, s.from, s.want.Values)
	}
	return cur, nil
}

func (d dnsFailover) Check(ctx context.Context, env *Env, p Params) error {
	s, err := d.prepare(ctx, env, p)
	if err != nil {
		return err
	}
	if err := s.zone.Ping(ctx); err != nil {
		return err
	}
	cur, err := s.current(ctx)
	if err != nil {
		return err
	}
	env.printf("%s %s is %v; would point it at %v", s.want.Name, s.want.Type, cur.Values, s.want.Values)
	return nil
}

func (d dnsFailover) Run(ctx context.Context, env *Env, p Params) (Result, error) {
	s, err := d.prepare(ctx, env, p)
	if err != nil {
		return nil, err
	}
	cur, err := s.current(ctx)
	if err != nil {
		return nil, err
	}
	s.want.TTL = uint32(s.ttl)
	if s.want.TTL == 0 {
		s.want.TTL = cur.TTL
	}
	if s.want.TTL == 0 {
		s.want.TTL = 60
	}
	if dnszone.Equal(cur.Values, s.want.Values) {
		env.printf("%s %s already points at %v", s.want.Name, s.want.Type, s.want.Values)
	} else {
		if err := s.zone.Set(ctx, s.want); err != nil {
			return nil, err
		}
		env.printf("%s %s: %v → %v (ttl %d)", s.want.Name, s.want.Type, cur.Values, s.want.Values, s.want.TTL)
	}
	res := Result{"record": s.want.Name, "type": s.want.Type, "previous": cur.Values, "values": s.want.Values, "ttl": int(s.want.TTL)}
	if !s.verify {
		return res, nil
	}
	ns, err := s.zone.Nameservers(ctx)
	if err != nil {
		return nil, err
	}
	err = poll(ctx, env, s.interval, func() error {
		if len(ns) == 0 {
			got, err := s.zone.Get(ctx, s.want.Name, s.want.Type)
			if err != nil {
				return err
			}
			if !dnszone.Equal(got.Values, s.want.Values) {
				return fmt.Errorf("the provider's API reads %s %s = %v, want %v", s.want.Name, s.want.Type, got.Values, s.want.Values)
			}
			return nil
		}
		return dnszone.Verify(ctx, ns, s.want)
	})
	if err != nil {
		return nil, fmt.Errorf("verify %s: %w", s.want.Name, err)
	}
	if len(ns) == 0 {
		env.printf("verified through the provider's API")
		res["verified_by"] = "api"
	} else {
		env.printf("verified: %s answer %v", strings.Join(ns, ", "), s.want.Values)
		res["verified_by"] = ns
	}
	return res, nil
}
