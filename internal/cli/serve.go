package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/klog/v2"

	"github.com/linkapp/linkdr/internal/daemon"
	"github.com/linkapp/linkdr/internal/kube"
	"github.com/linkapp/linkdr/internal/leader"
	"github.com/linkapp/linkdr/internal/ops"
	"github.com/linkapp/linkdr/internal/plan"
	"github.com/linkapp/linkdr/internal/server"
)

// TokenEnv holds the API token; it overrides serve.token_file.
const TokenEnv = "LINKDR_SERVE_TOKEN"

type serveOptions struct {
	listen      string
	kubeconfig  string
	kubeContext string
}

func (o *serveOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.listen, "listen", "", "address to listen on (default serve.listen of the plan, 127.0.0.1:9750)")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig for leader election in mode kubernetes (default $KUBECONFIG, or the pod's service account)")
	fs.StringVar(&o.kubeContext, "context", "", "kubeconfig context to use")
}

func newServeCmd(g *globals) *cobra.Command {
	o := &serveOptions{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the daemon: scheduled backups, retention, verification, drills, DR copy, metrics, API, dashboard",
		Long: `serve runs until SIGTERM or Ctrl-C. On the leader replica it runs every
store's backups on their schedules (cron, with serve.jitter; never two runs
of one store at once; activations missed while no replica ran are made up
by one run at start), retention on retention.schedule, verification of the
newest backups on verify.schedule, the plan's drills on their slots (one
at a time, as "drill run NAME" does; a slot missed while no replica led
is made up only within the drill's catch_up), and copies every new object
(backups, WAL, drills, runs) into each repository with copy_from, verified
by checksum. Every replica serves, on serve.listen:

  /healthz   alive (no token)
  /readyz    primary repository reachable and leader known (no token)
  /metrics   Prometheus metrics (no token with serve.metrics_public)
  /          the dashboard (sign in with the token once; a cookie keeps it)
  /api/v1/status, /api/v1/backups, /api/v1/backups/{id},
  POST /api/v1/backups {"store": "users-db", "wait": true}

The token comes from LINKDR_SERVE_TOKEN or serve.token_file; serve refuses to
start without one. Replicas elect one leader (serve.leader_election.mode):
a Kubernetes Lease inside a cluster, a lease object in the primary
repository elsewhere. On SIGTERM nothing new starts; running work gets
serve.grace_period to finish and is then aborted, leaving nothing partial.
See docs/serve.md.`,
		Example: `  openssl rand -hex 32 > serve.token && chmod 600 serve.token
  LINKDR_SERVE_TOKEN=$(cat serve.token) linkdr serve -v
  linkdr serve --listen 0.0.0.0:9750
  curl -H "Authorization: Bearer $(cat serve.token)" localhost:9750/api/v1/status`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error { return runServe(cmd.Context(), g, o) },
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

func runServe(ctx context.Context, g *globals, o *serveOptions) error {
	r, err := g.runner()
	if err != nil {
		return err
	}
	r.Progress = nil
	p := r.Plan
	log := g.log
	if g.verbose == 0 {
		log = g.newLogger(slog.LevelInfo) // a daemon says what it does
	}
	r.Log = log
	token, err := serveToken(p)
	if err != nil {
		return err
	}
	addr := p.Serve.Listen
	if o.listen != "" {
		addr = o.listen
	}
	tls := p.Serve.TLS
	cert, key := p.Resolve(tls.CertFile), p.Resolve(tls.KeyFile)
	for _, f := range []string{cert, key} {
		if f == "" {
			continue
		}
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("serve.tls: %w", err)
		}
	}
	el, err := newElector(ctx, p, r, o, log)
	if err != nil {
		return err
	}
	log.Info("starting", "version", Version, "plan", p.Path, "stores", len(p.Stores), "leader_election", el.Mode(), "identity", el.Observe().Identity)
	d := daemon.New(daemon.Config{
		Runner: r, Elector: el, Log: log, Version: Version,
		Drill: serveDrill(g, r, log, nil),
		Listen: func(ctx context.Context, d *daemon.Daemon) error {
			h := server.Handler(server.Options{Backend: d, Registry: d.Metrics.Registry, Token: token,
				MetricsPublic: p.Serve.MetricsPublic, Secure: cert != "", Version: Version, Name: p.Name, Log: log})
			return server.Listen(ctx, addr, cert, key, h, log)
		},
	})
	return d.Run(ctx)
}

// serveToken reads the API token: LINKDR_SERVE_TOKEN, else the file.
func serveToken(p *plan.Plan) (string, error) {
	if t := strings.TrimSpace(os.Getenv(TokenEnv)); t != "" {
		return t, nil
	}
	if p.Serve.TokenFile == "" {
		return "", usagef("serve needs an API token: set " + TokenEnv + " or serve.token_file in the plan (hint: openssl rand -hex 32 > serve.token)")
	}
	path := p.Resolve(p.Serve.TokenFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("serve.token_file: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if len(t) < 16 {
		return "", usagef(fmt.Sprintf("serve.token_file %s: the token must be at least 16 characters (hint: openssl rand -hex 32)", path))
	}
	return t, nil
}

func newElector(_ context.Context, p *plan.Plan, r *ops.Runner, o *serveOptions, log *slog.Logger) (leader.Elector, error) {
	le := p.Serve.LeaderElection
	timing := leader.Timing{LeaseDuration: le.LeaseDuration.D(), RenewDeadline: le.RenewDeadline.D(), RetryPeriod: le.RetryPeriod.D()}
	id := leader.Identity()
	mode := le.Mode
	if mode == plan.ElectAuto {
		mode = plan.ElectRepository
		if kube.InCluster() || o.kubeconfig != "" {
			mode = plan.ElectKubernetes
		}
	}
	switch mode {
	case plan.ElectNone:
		return leader.NewNone(id), nil
	case plan.ElectKubernetes:
		cfg, err := kube.Config(o.kubeconfig, o.kubeContext)
		if err != nil {
			return nil, err
		}
		ns := le.Namespace
		if ns == "" {
			ns = kube.Namespace()
		}
		// client-go logs through klog: keep serve's one log format.
		klog.SetSlogLogger(log.With("component", "client-go"))
		return leader.NewKubernetes(cfg, ns, le.LeaseName, id, timing, log)
	default:
		terms := &leader.LazyTerms{Open: func(ctx context.Context) (leader.Terms, error) {
			return r.OpenRepo(ctx, plan.DefaultRepository)
		}}
		return leader.NewRepository(terms, id, timing, log), nil
	}
}
