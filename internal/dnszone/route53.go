package dnszone

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/miekg/dns"

	"github.com/linkapp/linkdr/internal/plan"
)

// route53Zone changes a hosted zone through the Route 53 API
// (aws-sdk-go-v2): UPSERT, then wait until the change is INSYNC.
type route53Zone struct {
	api         *route53.Client
	id          string
	apex        string
	verify      string
	nameservers []string
}

func openRoute53(ctx context.Context, cfg *plan.DNSProvider) (*route53Zone, error) {
	awsCfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(cfg.Region))
	if err != nil {
		return nil, fmt.Errorf("route53: AWS configuration: %w", err)
	}
	api := route53.NewFromConfig(awsCfg, func(o *route53.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
	})
	return &route53Zone{
		api: api, id: strings.TrimPrefix(cfg.HostedZoneID, "/hostedzone/"),
		apex: dns.Fqdn(strings.ToLower(cfg.Zone)), verify: cfg.Verify, nameservers: cfg.Nameservers,
	}, nil
}

func (z *route53Zone) Apex() string { return z.apex }

func (z *route53Zone) Ping(ctx context.Context) error {
	out, err := z.api.GetHostedZone(ctx, &route53.GetHostedZoneInput{Id: aws.String(z.id)})
	if err != nil {
		return fmt.Errorf("route53 hosted zone %s: %w", z.id, err)
	}
	name := strings.ToLower(aws.ToString(out.HostedZone.Name))
	if z.apex == "." || z.apex == "" {
		z.apex = dns.Fqdn(name)
	} else if dns.Fqdn(name) != z.apex {
		return fmt.Errorf("route53 hosted zone %s is %s, but the plan says zone %s", z.id, name, z.apex)
	}
	return nil
}

func (z *route53Zone) Get(ctx context.Context, name, typ string) (RecordSet, error) {
	name = dns.Fqdn(strings.ToLower(name))
	out, err := z.api.ListResourceRecordSets(ctx, &route53.ListResourceRecordSetsInput{
		HostedZoneId: aws.String(z.id), StartRecordName: aws.String(name),
		StartRecordType: types.RRType(typ), MaxItems: aws.Int32(1),
	})
	if err != nil {
		return RecordSet{}, fmt.Errorf("route53 read %s %s: %w", name, typ, err)
	}
	rs := RecordSet{Name: name, Type: typ}
	for _, r := range out.ResourceRecordSets {
		if dns.Fqdn(strings.ToLower(aws.ToString(r.Name))) != name || string(r.Type) != typ {
			continue
		}
		if r.AliasTarget != nil {
			return rs, fmt.Errorf("route53 %s %s is an alias record: linkdr switches plain records only", name, typ)
		}
		rs.TTL = uint32(aws.ToInt64(r.TTL))
		var vals []string
		for _, v := range r.ResourceRecords {
			vals = append(vals, strings.Trim(aws.ToString(v.Value), `"`))
		}
		rs.Values = Canonical(typ, vals)
	}
	return rs, nil
}

func (z *route53Zone) Set(ctx context.Context, rs RecordSet) error {
	var rr []types.ResourceRecord
	for _, v := range rs.Values {
		if rs.Type == "TXT" {
			v = fmt.Sprintf("%q", v)
		}
		rr = append(rr, types.ResourceRecord{Value: aws.String(v)})
	}
	out, err := z.api.ChangeResourceRecordSets(ctx, &route53.ChangeResourceRecordSetsInput{
		HostedZoneId: aws.String(z.id),
		ChangeBatch: &types.ChangeBatch{
			Comment: aws.String("linkdr dns.failover"),
			Changes: []types.Change{{
				Action: types.ChangeActionUpsert,
				ResourceRecordSet: &types.ResourceRecordSet{
					Name: aws.String(rs.Name), Type: types.RRType(rs.Type), TTL: aws.Int64(int64(rs.TTL)), ResourceRecords: rr,
				},
			}},
		},
	})
	if err != nil {
		return fmt.Errorf("route53 change %s %s: %w", rs.Name, rs.Type, err)
	}
	// Route 53 applies a change to all its servers within about a
	// minute; INSYNC says it has.
	return z.waitInsync(ctx, aws.ToString(out.ChangeInfo.Id))
}

func (z *route53Zone) waitInsync(ctx context.Context, id string) error {
	w := route53.NewResourceRecordSetsChangedWaiter(z.api, func(o *route53.ResourceRecordSetsChangedWaiterOptions) {
		o.MinDelay, o.MaxDelay = 2e9, 10e9
	})
	deadline, ok := ctx.Deadline()
	if !ok {
		return errors.New("route53: waiting for INSYNC needs a deadline")
	}
	if err := w.Wait(ctx, &route53.GetChangeInput{Id: aws.String(id)}, timeUntil(deadline)); err != nil {
		return fmt.Errorf("route53 change %s not INSYNC: %w", id, err)
	}
	return nil
}

func (z *route53Zone) Nameservers(ctx context.Context) ([]string, error) {
	switch {
	case z.verify == "api":
		return nil, nil
	case len(z.nameservers) > 0:
		return z.nameservers, nil
	}
	out, err := z.api.GetHostedZone(ctx, &route53.GetHostedZoneInput{Id: aws.String(z.id)})
	if err != nil {
		return nil, fmt.Errorf("route53 hosted zone %s: %w", z.id, err)
	}
	var ns []string
	if out.DelegationSet != nil {
		for _, n := range out.DelegationSet.NameServers {
			ns = append(ns, withPort(n))
		}
	}
	if len(ns) == 0 {
		return nil, fmt.Errorf("route53 hosted zone %s has no delegation set: set nameservers: or verify: api", z.id)
	}
	return ns, nil
}
