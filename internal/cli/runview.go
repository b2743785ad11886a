package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/linkapp/linkdr/internal/incident"
	"github.com/linkapp/linkdr/internal/journal"
	"github.com/linkapp/linkdr/internal/plan"
	"github.com/linkapp/linkdr/internal/runbook"
)

// runView shows a run as it happens. On a terminal it redraws a block:
// the RTO clock, each phase's elapsed time against its budget, the step
// running and its last output line, and the latest warnings. Elsewhere it
// prints one line per event on stderr.
type runView struct {
	w       io.Writer
	tty     bool
	verbose bool
	sc      *plan.Scenario

	mu       sync.Mutex
	started  time.Time
	phases   map[string]*viewPhase
	current  string
	lastLine string
	notes    []string
	lines    int
	paused   bool
	done     chan struct{}
	wg       sync.WaitGroup
}

type viewPhase struct {
	started, finished time.Time
	status            string
}

func newRunView(g *globals, sc *plan.Scenario) *runView {
	return &runView{w: g.stderr, tty: isTTY(g.stderr), verbose: g.verbose > 0, sc: sc, phases: map[string]*viewPhase{}, done: make(chan struct{})}
}

// ask wraps a prompt so the redraws do not overwrite the question.
func (v *runView) ask(prompt func(context.Context, string) (bool, error)) func(context.Context, string) (bool, error) {
	if prompt == nil {
		return nil
	}
	return func(ctx context.Context, q string) (bool, error) {
		v.mu.Lock()
		v.paused = true
		v.lines = 0
		v.mu.Unlock()
		defer func() {
			v.mu.Lock()
			v.paused = false
			v.mu.Unlock()
		}()
		return prompt(ctx, q)
	}
}

// seed starts the view from a resumed run's state.
func (v *runView) seed(st *runbook.State) {
	v.started = st.Started
	for id, ps := range st.Phases {
		v.phases[id] = &viewPhase{started: ps.Started, finished: ps.Finished, status: ps.Status}
	}
}

func (v *runView) start() {
	if !v.tty {
		return
	}
	v.wg.Add(1)
	go func() {
		defer v.wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-v.done:
				return
			case <-t.C:
				v.mu.Lock()
				v.draw()
				v.mu.Unlock()
			}
		}
	}()
}

func (v *runView) stop() {
	close(v.done)
	v.wg.Wait()
	if v.tty {
		v.mu.Lock()
		v.draw()
		v.mu.Unlock()
		fmt.Fprintln(v.w)
	}
}

func (v *runView) event(e journal.Event) {
	v.mu.Lock()
	defer v.mu.Unlock()
	switch e.Type {
	case "run.started":
		v.started = e.Time
	case "phase.started":
		v.phases[e.Phase] = &viewPhase{started: e.Time, status: "running"}
	case "phase.finished":
		if p := v.phases[e.Phase]; p != nil {
			p.finished, p.status = e.Time, e.Status
		}
	case "step.started":
		v.current = fmt.Sprintf("%s: %s (attempt %d)", e.Step, e.Action, e.Attempt)
		v.lastLine = ""
	case "step.output":
		v.lastLine = e.Message
	case "approval.requested":
		v.current = fmt.Sprintf("%s: waiting for approval: %s", e.Step, e.Message)
	case "budget.warning", "budget.breached", "rto.warning", "rto.breached", "incident.update_due", "step.retry", "rollback.started":
		v.notes = append(v.notes, e.Time.Local().Format("15:04:05")+" "+incident.Describe(e))
		if len(v.notes) > 4 {
			v.notes = v.notes[1:]
		}
	}
	if v.tty {
		v.draw()
		return
	}
	if e.Type == "step.output" {
		fmt.Fprintf(v.w, "    | %s\n", e.Message)
		return
	}
	fmt.Fprintf(v.w, "%s %s\n", e.Time.Local().Format("15:04:05"), incident.Describe(e))
}

func bar(frac float64, width int) string {
	n := int(frac * float64(width))
	n = max(0, min(n, width))
	return strings.Repeat("█", n) + strings.Repeat("░", width-n)
}

func clock(d time.Duration) string {
	d = d.Round(time.Second)
	return fmt.Sprintf("%02d:%02d:%02d", int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60)
}

// draw repaints the block in place (the caller holds v.mu).
func (v *runView) draw() {
	if v.paused {
		return
	}
	now := time.Now()
	var b strings.Builder
	if v.lines > 0 {
		fmt.Fprintf(&b, "\033[%dA", v.lines)
	}
	lines := 0
	line := func(format string, a ...any) {
		fmt.Fprintf(&b, "\r\033[K"+format+"\n", a...)
		lines++
	}
	el := time.Duration(0)
	if !v.started.IsZero() {
		el = now.Sub(v.started)
	}
	rto := v.sc.RTO.D()
	line("%s — %s   RTO %s  %s used (%.0f%%)", v.sc.Name, v.sc.Title, v.sc.RTO, clock(el), 100*el.Seconds()/rto.Seconds())
	for _, ph := range v.sc.Phases {
		p := v.phases[ph.ID]
		mark, d, status := "·", time.Duration(0), "pending"
		if p != nil && !p.started.IsZero() {
			end := now
			if !p.finished.IsZero() {
				end = p.finished
			}
			d, mark, status = end.Sub(p.started), "▶", p.status
			if !p.finished.IsZero() {
				mark = "✔"
				if p.status != "succeeded" {
					mark = "✘"
				}
			}
		}
		frac := d.Seconds() / ph.Budget.D().Seconds()
		warn := ""
		switch {
		case frac >= 1:
			warn = "  BUDGET BREACHED"
		case frac >= 0.8:
			warn = "  budget warning"
		}
		line("  %s %-22s %s %s / %-6s %3.0f%%  %s%s", mark, ph.ID, bar(frac, 20), clock(d), ph.Budget, 100*frac, status, warn)
	}
	if v.current != "" {
		line("  now: %s", v.current)
	}
	if v.lastLine != "" {
		l := v.lastLine
		if len(l) > 100 {
			l = l[:100] + "…"
		}
		line("       %s", l)
	}
	for _, n := range v.notes {
		line("  ! %s", n)
	}
	// Clear what a longer previous block left behind.
	for i := lines; i < v.lines; i++ {
		b.WriteString("\r\033[K\n")
		lines++
	}
	v.lines = lines
	io.WriteString(v.w, b.String())
}
