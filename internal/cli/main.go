package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/linkapp/linkdr/internal/ops"
	"github.com/linkapp/linkdr/internal/plan"
	"github.com/linkapp/linkdr/internal/repo"

	// Store kinds register themselves.
	_ "github.com/linkapp/linkdr/internal/store/postgres"
	_ "github.com/linkapp/linkdr/internal/store/qdrant"
	_ "github.com/linkapp/linkdr/internal/store/redis"
	_ "github.com/linkapp/linkdr/internal/store/s3bucket"
)

// Version is set at build time (-ldflags -X).
var Version = "dev"

// globals are the flags every command shares, and the process's streams.
type globals struct {
	config    string
	output    string
	logFormat string
	verbose   int

	stdin          io.Reader
	stdout, stderr io.Writer
	log            *slog.Logger
	context        context.Context
	warned         bool // plan warnings are printed once per command
}

// ctx is the running command's context.
func (g *globals) ctx() context.Context {
	if g.context == nil {
		return context.Background()
	}
	return g.context
}

func (g *globals) addFlags(fs *pflag.FlagSet) {
	def := os.Getenv("LINKDR_CONFIG")
	if def == "" {
		def = "./linkdr.yaml"
	}
	fs.StringVar(&g.config, "config", def, "plan file (env LINKDR_CONFIG)")
	fs.StringVarP(&g.output, "output", "o", "table", "output format: table or json (reports: md, html, json; check: also junit)")
	fs.StringVar(&g.logFormat, "log-format", "text", "log format on stderr: text or json")
	fs.CountVarP(&g.verbose, "verbose", "v", "more logging (-v info, -vv debug)")
}

// outputsAnnotation lists a command's -o formats when they are not
// "table,json"; the first is its default.
const outputsAnnotation = "outputs"

func (g *globals) validate(cmd *cobra.Command) error {
	formats := []string{"table", "json"}
	if a := cmd.Annotations[outputsAnnotation]; a != "" {
		formats = strings.Split(a, ",")
		if f := cmd.Flag("output"); g.output == "table" && (f == nil || !f.Changed) {
			g.output = formats[0]
		}
	}
	ok := false
	for _, f := range formats {
		ok = ok || f == g.output
	}
	if !ok {
		list := strings.Join(formats[:len(formats)-1], ", ") + " or " + formats[len(formats)-1]
		return usagef(fmt.Sprintf("-o %q: use %s", g.output, list))
	}
	if g.logFormat != "text" && g.logFormat != "json" {
		return usagef(fmt.Sprintf("--log-format %q: use text or json", g.logFormat))
	}
	level := slog.LevelWarn
	switch {
	case g.verbose == 1:
		level = slog.LevelInfo
	case g.verbose >= 2:
		level = slog.LevelDebug
	}
	g.log = g.newLogger(level)
	return nil
}

// newLogger logs to stderr in the chosen format from level up.
func (g *globals) newLogger(level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if g.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(g.stderr, opts))
	}
	return slog.New(slog.NewTextHandler(g.stderr, opts))
}

func (g *globals) json() bool { return g.output == "json" }

// loadPlan reads and validates the plan; warnings go to stderr.
func (g *globals) loadPlan() (*plan.Plan, error) {
	p, warns, err := plan.Load(g.config)
	if !g.json() && !g.warned {
		g.warned = true
		for _, w := range warns {
			fmt.Fprintln(g.stderr, w.String())
		}
	}
	return p, err
}

// runner builds an ops.Runner for the plan.
func (g *globals) runner() (*ops.Runner, error) {
	p, err := g.loadPlan()
	if err != nil {
		return nil, err
	}
	r := &ops.Runner{Plan: p, Log: g.log}
	if v := os.Getenv("LINKDR_LEASE_TTL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second {
			return nil, usagef(fmt.Sprintf("LINKDR_LEASE_TTL=%q: want a duration of at least 1s, like 2m", v))
		}
		r.LeaseTTL = d
	}
	if !g.json() {
		r.Progress = newProgress(g.stderr)
	}
	return r, nil
}

// Main runs the linkdr command line and returns the exit status.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	repo.Version = Version
	g := &globals{stdin: stdin, stdout: stdout, stderr: stderr}
	root := newRoot(g)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	code := exitCode(err, ctx.Err() != nil)
	msg := err.Error()
	if code == ExitInterrupted {
		msg = "interrupted: " + strings.TrimPrefix(msg, "context canceled")
		msg = strings.TrimSuffix(msg, ": ")
	}
	fmt.Fprintf(stderr, "linkdr: %s\n", msg)
	return code
}

func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "linkdr",
		Short: "Disaster recovery for the Link stack: backups, restores, runbooks, drills",
		Long: `linkdr makes a disaster-recovery plan executable. One plan file (linkdr.yaml)
declares objectives (RTO, RPO, retention), repositories and stores; linkdr
backs the stores up into encrypted, verifiable repositories, restores them,
and measures how well the plan's promises are kept.

Start with 'linkdr init', then 'linkdr plan check', 'linkdr repo init' and
'linkdr backup'.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       Version,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			g.context = cmd.Context()
			return g.validate(cmd)
		},
	}
	g.addFlags(root.PersistentFlags())
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usagef(fmt.Sprintf("%v (see '%s --help')", err, c.CommandPath()))
	})
	root.AddCommand(
		newInitCmd(g),
		newPlanCmd(g),
		newRepoCmd(g),
		newBackupCmd(g),
		newBackupsCmd(g),
		newVerifyCmd(g),
		newRestoreCmd(g),
		newRetentionCmd(g),
		newStatusCmd(g),
		newWALPushCmd(g),
		newWALFetchCmd(g),
		newWALPrefetchCmd(g),
		newWALCmd(g),
		newWALReceiveCmd(g),
		newPGCmd(g),
		newServeCmd(g),
		newCheckCmd(g),
		newDrillCmd(g),
		newReportCmd(g),
		newRunbookCmd(g),
		newIncidentCmd(g),
		newS3Cmd(g),
	)
	root.SetUsageTemplate(root.UsageTemplate() + "\n" + exitStatusHelp + "\n")
	return root
}

// exactArgs is cobra.ExactArgs with a usage error.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef(fmt.Sprintf("%s: expected %s (see '%s --help')", cmd.CommandPath(), what, cmd.CommandPath()))
		}
		return nil
	}
}

func maxArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > n {
			return usagef(fmt.Sprintf("%s: expected at most %s (see '%s --help')", cmd.CommandPath(), what, cmd.CommandPath()))
		}
		return nil
	}
}
