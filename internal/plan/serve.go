package plan

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Serve configures the daemon, `linkdr serve`.
type Serve struct {
	// Listen is the HTTP address. Default 127.0.0.1:9750: only this host
	// can reach it until an operator opens it up (0.0.0.0:9750 in a pod).
	Listen string `yaml:"listen"`
	// TokenFile holds the bearer token every endpoint but /healthz, /readyz
	// (and /metrics with MetricsPublic) requires. LINKDR_SERVE_TOKEN
	// overrides it. Relative to the plan file. serve refuses to start
	// without a token.
	TokenFile string `yaml:"token_file"`
	// MetricsPublic lets /metrics be scraped without the token.
	MetricsPublic bool `yaml:"metrics_public"`
	// TLS serves HTTPS when both files are set.
	TLS TLS `yaml:"tls"`
	// GracePeriod is how long running work may take to finish after
	// SIGTERM before it is aborted (nothing partial stays visible).
	// Default 30s; keep it below the pod's terminationGracePeriodSeconds.
	GracePeriod Duration `yaml:"grace_period"`
	// Jitter delays each scheduled run by a random time in [0, jitter), so
	// many stores on "@hourly" do not all start at :00. Default 0.
	Jitter Duration `yaml:"jitter"`
	// CopyInterval is how often repositories with copy_from look for new
	// objects (a finished backup also starts a copy at once). Default 1m.
	CopyInterval Duration `yaml:"copy_interval"`
	// RefreshInterval is how often every replica re-reads the repositories
	// for the dashboard, the API and the metrics. Default 15s.
	RefreshInterval Duration `yaml:"refresh_interval"`
	// LeaderElection decides which replica schedules work.
	LeaderElection LeaderElection `yaml:"leader_election"`
}

// TLS names a certificate and its key (PEM files, relative to the plan).
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Enabled reports whether HTTPS is configured.
func (t TLS) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" }

// Leader election modes.
const (
	// ElectAuto is kubernetes inside a pod, repository elsewhere.
	ElectAuto = "auto"
	// ElectKubernetes uses a coordination.k8s.io Lease.
	ElectKubernetes = "kubernetes"
	// ElectRepository uses a lease object in the primary repository.
	ElectRepository = "repository"
	// ElectNone: this process always leads. Only for a single replica.
	ElectNone = "none"
)

// LeaderElection configures how replicas agree on one scheduler.
type LeaderElection struct {
	// Mode: auto (default), kubernetes, repository or none.
	Mode string `yaml:"mode"`
	// LeaseName is the Kubernetes Lease's name. Default linkdr.
	LeaseName string `yaml:"lease_name"`
	// Namespace of the Lease. Default: the pod's namespace
	// (POD_NAMESPACE, or the service account's namespace file).
	Namespace string `yaml:"namespace"`
	// LeaseDuration is how long followers wait before taking over from a
	// leader that stopped renewing. Default 15s.
	LeaseDuration Duration `yaml:"lease_duration"`
	// RenewDeadline is how long the leader keeps trying to renew before it
	// stops leading (and so starting work). Default 10s; less than
	// lease_duration, so a leader always stops before another can start.
	RenewDeadline Duration `yaml:"renew_deadline"`
	// RetryPeriod is the interval between tries. Default 2s.
	RetryPeriod Duration `yaml:"retry_period"`
}

// DefaultListen is where serve listens unless the plan says otherwise.
const DefaultListen = "127.0.0.1:9750"

func defaultServe() Serve {
	return Serve{
		Listen:          DefaultListen,
		GracePeriod:     Duration(30 * time.Second),
		CopyInterval:    Duration(time.Minute),
		RefreshInterval: Duration(15 * time.Second),
		LeaderElection: LeaderElection{
			Mode:          ElectAuto,
			LeaseName:     "linkdr",
			LeaseDuration: Duration(15 * time.Second),
			RenewDeadline: Duration(10 * time.Second),
			RetryPeriod:   Duration(2 * time.Second),
		},
	}
}

var electModes = []string{ElectAuto, ElectKubernetes, ElectRepository, ElectNone}

func (p *Plan) validateServe(ps *problems) {
	s := p.Serve
	if host, port, err := net.SplitHostPort(s.Listen); err != nil {
		ps.add("serve.listen", "e.g. 127.0.0.1:9750, or 0.0.0.0:9750 inside a pod", "invalid listen address %q: %v", s.Listen, err)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		ps.add("serve.listen", "e.g. 127.0.0.1:9750", "invalid port %q", port)
	} else if host != "" && net.ParseIP(host) == nil && host != "localhost" {
		ps.add("serve.listen", "listen on an IP address (127.0.0.1, 0.0.0.0, ::)", "host %q is not an IP address", host)
	}
	if s.TokenFile != "" {
		if _, err := os.Stat(p.Resolve(s.TokenFile)); err != nil {
			ps.warn("serve.token_file", "create it (mode 0600), e.g. `openssl rand -hex 32 > "+s.TokenFile+"`", "cannot read %s", p.Resolve(s.TokenFile))
		}
	}
	if s.TLS.Enabled() {
		if s.TLS.CertFile == "" || s.TLS.KeyFile == "" {
			ps.add("serve.tls", "set both cert_file and key_file, or neither", "TLS needs a certificate and its key")
		}
		for _, kf := range [][2]string{{"cert_file", s.TLS.CertFile}, {"key_file", s.TLS.KeyFile}} {
			key, f := kf[0], kf[1]
			if f == "" {
				continue
			}
			if _, err := os.Stat(p.Resolve(f)); err != nil {
				ps.warn("serve.tls."+key, "serve will refuse to start until it exists", "cannot read %s", p.Resolve(f))
			}
		}
	}
	if s.GracePeriod <= 0 {
		ps.add("serve.grace_period", "e.g. grace_period: 30s", "must be positive")
	}
	if s.Jitter < 0 {
		ps.add("serve.jitter", "use 0 for none", "must not be negative")
	}
	if s.CopyInterval < Duration(time.Second) {
		ps.add("serve.copy_interval", "e.g. copy_interval: 1m", "must be at least 1s")
	}
	if s.RefreshInterval < Duration(time.Second) {
		ps.add("serve.refresh_interval", "e.g. refresh_interval: 15s", "must be at least 1s")
	}
	le := s.LeaderElection
	if !contains(electModes, le.Mode) {
		ps.add("serve.leader_election.mode", "modes: "+strings.Join(electModes, ", "), "unknown mode %q", le.Mode)
	}
	if !validName(le.LeaseName) {
		ps.add("serve.leader_election.lease_name", "a Kubernetes name: lowercase letters, digits and dashes", "invalid lease name %q", le.LeaseName)
	}
	switch {
	case le.RetryPeriod <= 0:
		ps.add("serve.leader_election.retry_period", "e.g. retry_period: 2s", "must be positive")
	case le.RenewDeadline <= le.RetryPeriod:
		ps.add("serve.leader_election.renew_deadline", "e.g. 10s with retry_period 2s", "must be longer than retry_period (%s)", le.RetryPeriod)
	case le.LeaseDuration <= le.RenewDeadline:
		ps.add("serve.leader_election.lease_duration", "e.g. 15s with renew_deadline 10s", "must be longer than renew_deadline (%s): a leader must stop before another may start", le.RenewDeadline)
	}
	if s.Jitter > 0 {
		for _, name := range p.StoreNames() {
			st := p.Stores[name]
			if st == nil {
				continue
			}
			for i, b := range st.Backups {
				if b.Schedule.IsZero() {
					continue
				}
				if iv := b.Schedule.MaxInterval(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)); s.Jitter.D() > iv/2 {
					ps.warn(fmt.Sprintf("stores.%s.backups[%d].schedule", name, i), "lower serve.jitter", "serve.jitter %s is more than half of this schedule's interval %s", s.Jitter, Duration(iv))
				}
			}
		}
	}
}

// validateCopies checks copy_from: the source exists, is not the
// repository itself, and copies do not go round in a circle.
func (p *Plan) validateCopies(ps *problems) {
	for _, name := range p.RepositoryNames() {
		src := p.Repositories[name].CopyFrom
		if src == "" {
			continue
		}
		path := "repositories." + name + ".copy_from"
		if src == name {
			ps.add(path, "name the repository to copy from, e.g. copy_from: primary", "a repository cannot copy from itself")
			continue
		}
		from, ok := p.Repositories[src]
		if !ok {
			ps.add(path, "repositories: "+strings.Join(p.RepositoryNames(), ", "), "no repository named %q", src)
			continue
		}
		if from.URL != "" && from.URL == p.Repositories[name].URL {
			ps.add(path, "a copy belongs in another region: give it its own URL", "repository %s has the same URL as %s", name, src)
			continue
		}
		seen := map[string]bool{name: true}
		for cur := src; cur != ""; cur = p.Repositories[cur].CopyFrom {
			if seen[cur] {
				ps.add(path, "copies must flow one way, e.g. primary → dr", "copy_from forms a cycle through %s", cur)
				break
			}
			seen[cur] = true
		}
	}
}

// CopyRepositories lists the repositories that copy from another, sorted.
func (p *Plan) CopyRepositories() []string {
	var out []string
	for _, name := range p.RepositoryNames() {
		if p.Repositories[name].CopyFrom != "" {
			out = append(out, name)
		}
	}
	return out
}

// CopiesOf lists the repositories that copy from name, directly or
// through another copy.
func (p *Plan) CopiesOf(name string) []string {
	var out []string
	for _, c := range p.CopyRepositories() {
		seen := map[string]bool{c: true}
		for cur := p.Repositories[c].CopyFrom; cur != "" && !seen[cur]; cur = p.Repositories[cur].CopyFrom {
			if cur == name {
				out = append(out, c)
				break
			}
			seen[cur] = true
		}
	}
	return out
}
