package plan

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"text/template"
)

// Kubernetes says how runbook steps reach clusters. Steps may name
// another context or kubeconfig.
type Kubernetes struct {
	// Kubeconfig file. Default: $KUBECONFIG, then ~/.kube/config.
	Kubeconfig string `yaml:"kubeconfig"`
	// Context to use when a step names none. Default: the kubeconfig's
	// current context.
	Context string `yaml:"context"`
	// Namespace when a step names none. Default: the context's, else
	// "default".
	Namespace string `yaml:"namespace"`
}

// DNS lists the DNS providers that dns.failover steps switch records in.
type DNS struct {
	Providers map[string]*DNSProvider `yaml:"providers"`
}

// DNSProvider is one zone at one DNS service.
type DNSProvider struct {
	// Type: rfc2136 (BIND, PowerDNS, Knot … dynamic updates with TSIG) or
	// route53.
	Type string `yaml:"type"`
	// Zone apex, e.g. linkapp.com. Records may be given relative to it.
	Zone string `yaml:"zone"`

	// rfc2136: the primary server (host:port) that takes updates.
	Server string `yaml:"server"`
	// rfc2136: TSIG key name, algorithm (default hmac-sha256) and base64
	// secret (or a file holding it). Without a key, updates are unsigned.
	TSIGName       string `yaml:"tsig_name"`
	TSIGAlgorithm  string `yaml:"tsig_algorithm"`
	TSIGSecret     Secret `yaml:"tsig_secret"`
	TSIGSecretFile string `yaml:"tsig_secret_file"`

	// route53: the hosted zone id, region (default us-east-1) and, for
	// tests or API-compatible services, an endpoint URL. Credentials come
	// from the usual AWS environment, profile or instance role.
	HostedZoneID string `yaml:"hosted_zone_id"`
	Region       string `yaml:"region"`
	Endpoint     string `yaml:"endpoint"`

	// Verify says how a change is confirmed: dns (default) queries the
	// authoritative servers until they answer with the new values; api
	// reads the record back from the provider's API; none trusts the
	// provider.
	Verify string `yaml:"verify"`
	// Nameservers (host:port) to query when verifying. Default: rfc2136
	// the server, route53 the zone's delegation set.
	Nameservers []string `yaml:"nameservers"`
}

// Notifications lists the channels messages can go to.
type Notifications struct {
	Channels map[string]*Channel `yaml:"channels"`
}

// Channel is one destination for incident messages.
type Channel struct {
	// Type: slack (incoming webhook), pagerduty (Events API v2), webhook
	// (generic JSON POST) or email (SMTP).
	Type string `yaml:"type"`
	// URL of the Slack or generic webhook; for pagerduty, the events
	// endpoint (default https://events.pagerduty.com/v2/enqueue).
	URL     Secret `yaml:"url"`
	URLFile string `yaml:"url_file"`
	// pagerduty: the integration's routing key.
	RoutingKey     Secret `yaml:"routing_key"`
	RoutingKeyFile string `yaml:"routing_key_file"`
	// webhook: extra HTTP headers.
	Headers map[string]Secret `yaml:"headers"`
	// email: SMTP server host:port, sender, recipients, credentials.
	SMTP         string   `yaml:"smtp"`
	From         string   `yaml:"from"`
	To           []string `yaml:"to"`
	Username     string   `yaml:"username"`
	Password     Secret   `yaml:"password"`
	PasswordFile string   `yaml:"password_file"`
	// StartTLS: auto (default: when the server offers it), always, never.
	StartTLS string `yaml:"starttls"`
}

// Incidents configures incident records and their messages.
type Incidents struct {
	// Service named in messages. Default: the plan's name.
	Service string `yaml:"service"`
	// UpdateInterval is the promised cadence of status updates; a missed
	// update raises a reminder. Default 30m.
	UpdateInterval Duration `yaml:"update_interval"`
	// Notify lists the channels that hear about every incident (open,
	// update, resolve, reminders) and notify steps without a channel.
	Notify []string `yaml:"notify"`
	// Templates are Go templates by name: alert, update, resolved and
	// reminder exist by default (the plan's INCIDENT ALERT and RESOLVED
	// texts); entries here override or add.
	Templates map[string]string `yaml:"templates"`
	// PostmortemDue is promised in the resolution notice. Default 48h.
	PostmortemDue Duration `yaml:"postmortem_due"`
	// Checklist is the post-incident checklist the post-mortem draft ends
	// with. Default: the plan's post-incident activities.
	Checklist []ChecklistGroup `yaml:"checklist"`
}

// ChecklistGroup is a titled list of follow-up items.
type ChecklistGroup struct {
	Title string   `yaml:"title"`
	Items []string `yaml:"items"`
}

// Runbooks says where runbook runs and incidents are journaled.
type Runbooks struct {
	// Repository that receives runs/<id>/journal.jsonl. Default primary.
	Repository string `yaml:"repository"`
	// StateDir keeps the local copy of journals. LINKDR_STATE_DIR
	// overrides it. Default $XDG_STATE_HOME/linkdr or ~/.local/state/linkdr.
	StateDir string `yaml:"state_dir"`
}

var channelTypes = []string{"slack", "pagerduty", "webhook", "email"}
var dnsTypes = []string{"rfc2136", "route53"}

// expandNotificationEnv expands ${VAR} in the secrets of channels and DNS
// providers, as for store URLs.
func (p *Plan) expandNotificationEnv(expand func(path, s string) string) {
	for _, name := range sortedKeys(p.Notifications.Channels) {
		c := p.Notifications.Channels[name]
		if c == nil {
			continue
		}
		base := "notifications.channels." + name
		c.URL = Secret(expand(base+".url", c.URL.Reveal()))
		c.RoutingKey = Secret(expand(base+".routing_key", c.RoutingKey.Reveal()))
		c.Password = Secret(expand(base+".password", c.Password.Reveal()))
		for k, v := range c.Headers {
			c.Headers[k] = Secret(expand(base+".headers."+k, v.Reveal()))
		}
	}
	for _, name := range sortedKeys(p.DNS.Providers) {
		if d := p.DNS.Providers[name]; d != nil {
			d.TSIGSecret = Secret(expand("dns.providers."+name+".tsig_secret", d.TSIGSecret.Reveal()))
		}
	}
}

func applyIncidentDefaults(p *Plan) {
	if p.Incidents.Service == "" {
		p.Incidents.Service = p.Name
	}
	if p.Runbooks.Repository == "" {
		p.Runbooks.Repository = DefaultRepository
	}
	for name, d := range p.DNS.Providers {
		if d == nil {
			continue
		}
		if d.Zone != "" && !strings.HasSuffix(d.Zone, ".") {
			d.Zone += "."
		}
		if d.Type == "rfc2136" && d.TSIGAlgorithm == "" {
			d.TSIGAlgorithm = "hmac-sha256"
		}
		if d.Type == "route53" && d.Region == "" {
			d.Region = "us-east-1"
		}
		if d.Verify == "" {
			d.Verify = "dns"
		}
		p.DNS.Providers[name] = d
	}
	for _, c := range p.Notifications.Channels {
		if c != nil && c.Type == "email" && c.StartTLS == "" {
			c.StartTLS = "auto"
		}
	}
}

func (p *Plan) validateOperations(ps *problems) {
	_, set := p.positions["runbooks.repository"]
	if _, ok := p.Repositories[p.Runbooks.Repository]; set && !ok && len(p.Repositories) > 0 {
		ps.add("runbooks.repository", "repositories: "+strings.Join(p.RepositoryNames(), ", "), "no repository named %q", p.Runbooks.Repository)
	}
	for _, name := range sortedKeys(p.DNS.Providers) {
		p.validateDNSProvider(ps, "dns.providers."+name, p.DNS.Providers[name])
	}
	for _, name := range sortedKeys(p.Notifications.Channels) {
		p.validateChannel(ps, "notifications.channels."+name, p.Notifications.Channels[name])
	}
	for i, n := range p.Incidents.Notify {
		if _, ok := p.Notifications.Channels[n]; !ok {
			ps.add(fmt.Sprintf("incidents.notify[%d]", i), "channels: "+strings.Join(sortedKeys(p.Notifications.Channels), ", "), "no channel named %q", n)
		}
	}
	if p.Incidents.UpdateInterval <= 0 {
		ps.add("incidents.update_interval", "e.g. update_interval: 30m", "must be positive")
	}
	for _, name := range sortedKeys(p.Incidents.Templates) {
		if _, err := template.New(name).Funcs(TemplateFuncs).Parse(p.Incidents.Templates[name]); err != nil {
			ps.add("incidents.templates."+name, "templates use Go template syntax: {{.Service}}, {{.Status}}, {{utc .Started}}", "%v", err)
		}
	}
}

func (p *Plan) validateDNSProvider(ps *problems, base string, d *DNSProvider) {
	if d == nil {
		ps.add(base, "give the provider a type", "empty DNS provider")
		return
	}
	if !contains(dnsTypes, d.Type) {
		ps.add(base+".type", "types: "+strings.Join(dnsTypes, ", "), "unknown DNS provider type %q", d.Type)
		return
	}
	if !contains([]string{"dns", "api", "none"}, d.Verify) {
		ps.add(base+".verify", "one of dns, api, none", "unknown verification %q", d.Verify)
	}
	for i, ns := range d.Nameservers {
		if _, _, err := net.SplitHostPort(ns); err != nil {
			ps.add(fmt.Sprintf("%s.nameservers[%d]", base, i), "e.g. ns1.example.com:53", "want host:port, got %q", ns)
		}
	}
	switch d.Type {
	case "rfc2136":
		if d.Zone == "" {
			ps.add(base+".zone", "e.g. zone: linkapp.com.", "required")
		}
		if _, _, err := net.SplitHostPort(d.Server); err != nil {
			ps.add(base+".server", "the primary that accepts updates, e.g. 10.0.0.53:53", "want host:port, got %q", d.Server)
		}
		hasSecret := d.TSIGSecret != "" || d.TSIGSecretFile != ""
		if d.TSIGName == "" && hasSecret {
			ps.add(base+".tsig_name", "the key's name as in the server's key statement", "required with a TSIG secret")
		}
		if d.TSIGName != "" && !hasSecret {
			ps.add(base+".tsig_secret", "set tsig_secret (e.g. ${TSIG_SECRET}) or tsig_secret_file", "the key %s has no secret", d.TSIGName)
		}
		if d.TSIGName == "" {
			ps.warn(base, "add a TSIG key: unsigned dynamic updates let anyone who can reach the server change the zone", "updates are not signed")
		}
		if d.TSIGSecretFile != "" {
			if _, err := os.Stat(p.Resolve(d.TSIGSecretFile)); err != nil {
				ps.warn(base+".tsig_secret_file", "create it before a failover needs it", "cannot read %s", p.Resolve(d.TSIGSecretFile))
			}
		}
		for _, f := range []string{"hosted_zone_id", "region", "endpoint"} {
			if _, set := p.positions[base+"."+f]; set {
				ps.add(base+"."+f, "it belongs to route53 providers", "%s does not apply to type rfc2136", f)
			}
		}
	case "route53":
		if d.HostedZoneID == "" {
			ps.add(base+".hosted_zone_id", "e.g. hosted_zone_id: Z1234567890", "required")
		}
		if d.Endpoint != "" {
			if u, err := url.Parse(d.Endpoint); err != nil || u.Scheme == "" || u.Host == "" {
				ps.add(base+".endpoint", "e.g. https://route53.amazonaws.com", "invalid URL %q", d.Endpoint)
			}
		}
		for _, f := range []string{"server", "tsig_name", "tsig_secret", "tsig_secret_file"} {
			if _, set := p.positions[base+"."+f]; set {
				ps.add(base+"."+f, "it belongs to rfc2136 providers", "%s does not apply to type route53", f)
			}
		}
	}
}

func (p *Plan) validateChannel(ps *problems, base string, c *Channel) {
	if c == nil {
		ps.add(base, "give the channel a type", "empty channel")
		return
	}
	if !contains(channelTypes, c.Type) {
		ps.add(base+".type", "types: "+strings.Join(channelTypes, ", "), "unknown channel type %q", c.Type)
		return
	}
	fileWarn := func(key, path string) {
		if path == "" {
			return
		}
		if _, err := os.Stat(p.Resolve(path)); err != nil {
			ps.warn(base+"."+key, "create it before an incident needs it", "cannot read %s", p.Resolve(path))
		}
	}
	fileWarn("url_file", c.URLFile)
	fileWarn("routing_key_file", c.RoutingKeyFile)
	fileWarn("password_file", c.PasswordFile)
	switch c.Type {
	case "slack", "webhook":
		if c.URL == "" && c.URLFile == "" {
			ps.add(base+".url", "set url (e.g. ${SLACK_WEBHOOK_URL}) or url_file", "required")
		}
	case "pagerduty":
		if c.RoutingKey == "" && c.RoutingKeyFile == "" {
			ps.add(base+".routing_key", "the Events API v2 integration key: routing_key: ${PAGERDUTY_ROUTING_KEY} or routing_key_file", "required")
		}
	case "email":
		if _, _, err := net.SplitHostPort(c.SMTP); err != nil {
			ps.add(base+".smtp", "e.g. smtp: smtp.example.com:587", "want host:port, got %q", c.SMTP)
		}
		if c.From == "" {
			ps.add(base+".from", "e.g. from: linkdr@linkapp.com", "required")
		}
		if len(c.To) == 0 {
			ps.add(base+".to", "e.g. to: [oncall@linkapp.com]", "at least one recipient is required")
		}
		if !contains([]string{"auto", "always", "never"}, c.StartTLS) {
			ps.add(base+".starttls", "one of auto, always, never", "unknown value %q", c.StartTLS)
		}
	}
}
