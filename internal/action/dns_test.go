package action

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	r53types "github.com/aws/aws-sdk-go-v2/service/route53/types"

	"github.com/linkapp/linkdr/internal/dnszone"
	"github.com/linkapp/linkdr/internal/plan"
	"github.com/linkapp/linkdr/internal/testenv"
)

// dig asks the server with the dig CLI, so the answer is checked by a
// tool that shares no code with linkdr.
func dig(t *testing.T, server, name, typ string) []string {
	t.Helper()
	host, port, _ := strings.Cut(server, ":")
	out, err := exec.Command(testenv.Bin(t, "dig"), "+short", "+norec", "@"+host, "-p", port, name, typ).Output()
	if err != nil {
		t.Fatalf("dig: %v", err)
	}
	vals := strings.Fields(string(out))
	sort.Strings(vals)
	return vals
}

func dnsPlan(info testenv.DNSInfo, secret string) *plan.Plan {
	return &plan.Plan{DNS: plan.DNS{Providers: map[string]*plan.DNSProvider{
		"zone": {Type: "rfc2136", Zone: info.Zone, Server: info.Addr, TSIGName: info.TSIGName,
			TSIGAlgorithm: info.TSIGAlgorithm, TSIGSecret: plan.Secret(secret), Verify: "dns"},
	}}}
}

func TestDNSFailoverRFC2136(t *testing.T) {
	info := testenv.NewDNS(t)
	var out bytes.Buffer
	var masked []string
	env := &Env{Plan: dnsPlan(info, info.TSIGSecret), Output: &out, AddSecret: func(s string) { masked = append(masked, s) }}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, _ := Get("dns.failover")

	t.Run("SwitchToDR", func(t *testing.T) {
		res, err := a.Run(ctx, env, Params{"provider": "zone", "record": "api", "from": "10.0.1.10", "to": "10.1.0.10", "interval": "10ms"})
		if err != nil {
			t.Fatal(err)
		}
		if got := dig(t, info.Addr, "api."+info.Zone, "A"); len(got) != 1 || got[0] != "10.1.0.10" {
			t.Fatalf("dig answers %v after failover", got)
		}
		if prev := res["previous"].([]string); len(prev) != 1 || prev[0] != "10.0.1.10" {
			t.Fatalf("previous %v", prev)
		}
		if len(masked) == 0 || masked[0] != info.TSIGSecret {
			t.Fatal("the TSIG secret was not registered for masking")
		}
	})
	t.Run("CheckRefusesUnexpectedCurrentValue", func(t *testing.T) {
		err := a.Check(ctx, env, Params{"provider": "zone", "record": "api", "from": "10.9.9.9", "to": "10.8.8.8"})
		if err == nil || !strings.Contains(err.Error(), "someone else changed it") {
			t.Fatalf("got %v", err)
		}
		if got := dig(t, info.Addr, "api."+info.Zone, "A"); got[0] != "10.1.0.10" {
			t.Fatalf("check changed the record: %v", got)
		}
	})
	t.Run("SwitchBack", func(t *testing.T) {
		if _, err := a.Run(ctx, env, Params{"provider": "zone", "record": "api." + info.Zone, "from": "10.1.0.10", "to": []any{"10.0.1.10"}, "ttl": 30}); err != nil {
			t.Fatal(err)
		}
		if got := dig(t, info.Addr, "api."+info.Zone, "A"); len(got) != 1 || got[0] != "10.0.1.10" {
			t.Fatalf("dig answers %v after failback", got)
		}
	})
	t.Run("CNAME", func(t *testing.T) {
		// A relative target is inside the zone, as in a zone file.
		if _, err := a.Run(ctx, env, Params{"provider": "zone", "record": "www", "from": "api", "to": "api-dr"}); err != nil {
			t.Fatal(err)
		}
		if got := dig(t, info.Addr, "www."+info.Zone, "CNAME"); len(got) != 1 || got[0] != "api-dr.linkapp.test." {
			t.Fatalf("dig answers %v", got)
		}
	})
	t.Run("WrongKey", func(t *testing.T) {
		bad := &Env{Plan: dnsPlan(info, "d3JvbmcgZnJvbSB0aGUgc3RhcnQgdG8gdGhlIGVuZCEhIQ=="), Output: &out}
		_, err := a.Run(ctx, bad, Params{"provider": "zone", "record": "api", "to": "10.6.6.6"})
		if !errors.Is(err, dnszone.ErrRefused) {
			t.Fatalf("wrong TSIG key: %v", err)
		}
		if got := dig(t, info.Addr, "api."+info.Zone, "A"); got[0] != "10.0.1.10" {
			t.Fatalf("record changed with a wrong key: %v", got)
		}
	})
}

// TestDNSFailoverRoute53 runs the Route 53 provider against moto's Route 53
// API (Route 53 itself cannot run here). moto serves no DNS, so the change
// is verified through the API.
func TestDNSFailoverRoute53(t *testing.T) {
	endpoint := testenv.NewMoto(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion("us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	api := route53.NewFromConfig(cfg, func(o *route53.Options) { o.BaseEndpoint = aws.String(endpoint) })
	hz, err := api.CreateHostedZone(ctx, &route53.CreateHostedZoneInput{Name: aws.String("linkapp.com."), CallerReference: aws.String(t.Name())})
	if err != nil {
		t.Fatal(err)
	}
	_, err = api.ChangeResourceRecordSets(ctx, &route53.ChangeResourceRecordSetsInput{
		HostedZoneId: hz.HostedZone.Id,
		ChangeBatch: &r53types.ChangeBatch{Changes: []r53types.Change{{Action: r53types.ChangeActionCreate, ResourceRecordSet: &r53types.ResourceRecordSet{
			Name: aws.String("api.linkapp.com."), Type: r53types.RRTypeA, TTL: aws.Int64(60),
			ResourceRecords: []r53types.ResourceRecord{{Value: aws.String("10.0.1.10")}},
		}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	env := &Env{Output: &out, Plan: &plan.Plan{DNS: plan.DNS{Providers: map[string]*plan.DNSProvider{
		"r53": {Type: "route53", HostedZoneID: aws.ToString(hz.HostedZone.Id), Zone: "linkapp.com.", Region: "us-east-1", Endpoint: endpoint, Verify: "api"},
	}}}}
	a, _ := Get("dns.failover")
	read := func() []string {
		rs, err := api.ListResourceRecordSets(ctx, &route53.ListResourceRecordSetsInput{HostedZoneId: hz.HostedZone.Id, StartRecordName: aws.String("api.linkapp.com."), StartRecordType: r53types.RRTypeA, MaxItems: aws.Int32(1)})
		if err != nil {
			t.Fatal(err)
		}
		var v []string
		for _, r := range rs.ResourceRecordSets[0].ResourceRecords {
			v = append(v, aws.ToString(r.Value))
		}
		return v
	}
	if err := a.Check(ctx, env, Params{"provider": "r53", "record": "api", "from": "10.0.1.10", "to": "10.1.0.10"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Run(ctx, env, Params{"provider": "r53", "record": "api", "from": "10.0.1.10", "to": "10.1.0.10", "interval": "10ms"}); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if got := read(); len(got) != 1 || got[0] != "10.1.0.10" {
		t.Fatalf("route53 has %v after failover", got)
	}
	if _, err := a.Run(ctx, env, Params{"provider": "r53", "record": "api", "from": "10.1.0.10", "to": "10.0.1.10", "interval": "10ms"}); err != nil {
		t.Fatal(err)
	}
	if got := read(); len(got) != 1 || got[0] != "10.0.1.10" {
		t.Fatalf("route53 has %v after failback", got)
	}
}
