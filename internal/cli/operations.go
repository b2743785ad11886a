package cli

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"

	"golang.org/x/term"

	"github.com/linkapp/linkdr/internal/check"
	"github.com/linkapp/linkdr/internal/incident"
	"github.com/linkapp/linkdr/internal/journal"
	"github.com/linkapp/linkdr/internal/ops"
	"github.com/linkapp/linkdr/internal/plan"
	"github.com/linkapp/linkdr/internal/repo"
	"github.com/linkapp/linkdr/internal/runbook"
)

// StateDirEnv overrides runbooks.state_dir.
const StateDirEnv = "LINKDR_STATE_DIR"

// operations is what runbook and incident commands share.
type operations struct {
	plan      *plan.Plan
	runner    *ops.Runner
	journals  *journal.Store
	incidents *incident.Store
	engine    *runbook.Engine
	by        string
	closeRepo func()
}

func stateDir(p *plan.Plan) string {
	if d := os.Getenv(StateDirEnv); d != "" {
		return d
	}
	if p.Runbooks.StateDir != "" {
		return p.Resolve(p.Runbooks.StateDir)
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "linkdr")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "linkdr")
	}
	return filepath.Join(os.TempDir(), "linkdr-state")
}

// whoAmI names the person driving a run in journals: LINKDR_USER, else
// user@host.
func whoAmI() string {
	if v := os.Getenv("LINKDR_USER"); v != "" {
		return v
	}
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return name + "@" + host
}

// operations opens the plan, the journal repository (runbooks.repository,
// or a scenario's) and the state directory. An unreachable repository is
// a warning: journals stay local, and a recovery goes on.
func (g *globals) operations(ctx context.Context, repoName string) (*operations, error) {
	r, err := g.runner()
	if err != nil {
		return nil, err
	}
	r.Progress = nil // steps report through the journal, not a progress bar
	p := r.Plan
	o := &operations{plan: p, runner: r, by: whoAmI(), closeRepo: func() {}}
	js := &journal.Store{Dir: stateDir(p)}
	if repoName == "" {
		repoName = p.Runbooks.Repository
	}
	var rp *repo.Repo
	if _, ok := p.Repositories[repoName]; ok {
		rp, err = r.OpenRepo(ctx, repoName)
		if err != nil {
			fmt.Fprintf(g.stderr, "linkdr: warning: journals stay in %s only: %v\n", js.Dir, err)
		} else {
			js.Mirror = rp.Bucket()
			o.closeRepo = func() { rp.Close() }
		}
	}
	o.journals = js
	o.incidents = &incident.Store{Plan: p, Journals: js, Log: g.log, By: o.by}
	o.engine = &runbook.Engine{Plan: p, Runner: r, Journals: js, Incidents: o.incidents, Log: g.log, By: o.by}
	if len(p.Checks) > 0 {
		o.engine.Checks = &check.Runner{Plan: p, Ops: r, Log: g.log}
	}
	return o, nil
}

// prompter asks on the terminal, or returns nil when stdin is not one.
func (g *globals) prompter() func(ctx context.Context, q string) (bool, error) {
	f, ok := g.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	rd := bufio.NewReader(f)
	return func(ctx context.Context, q string) (bool, error) {
		fmt.Fprintf(g.stderr, "\n%s [y/N] ", q)
		line, err := rd.ReadString('\n')
		if err != nil {
			return false, err
		}
		a := strings.ToLower(strings.TrimSpace(line))
		return a == "y" || a == "yes", nil
	}
}

func isTTY(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
