package cli

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/linkapp/linkdr/internal/check"
)

func newCheckCmd(g *globals) *cobra.Command {
	var checklists []string
	var parallel int
	cmd := &cobra.Command{
		Use:   "check [CHECK...]",
		Short: "Run validation checks or checklists and report what they observed",
		Long: `check runs the plan's checks — http, tls, dns, tcp, postgres, redis, qdrant,
prometheus, backup, kubernetes — in parallel, each within its timeout, and
evaluates each condition over what its probe observed. Name checks, or
checklists with --checklist (a checklist includes its included checklists);
with neither, every check runs.

The exit status is 0 when every required check passed and 1 when any
required check failed or could not probe; optional checks (required: false)
are reported but never fail the run. -o junit writes JUnit XML for CI.`,
		Example: `  linkdr check
  linkdr check --checklist post-recovery
  linkdr check api-health users-db-up -o json
  linkdr check --checklist performance -o junit > checks.xml`,
		Annotations: map[string]string{outputsAnnotation: "table,json,junit"},
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.runner()
			if err != nil {
				return err
			}
			if len(r.Plan.Checks) == 0 {
				return usagef(fmt.Sprintf("%s has no checks: add checks: (see docs/checks.md)", r.Plan.Path))
			}
			names := append(append([]string{}, checklists...), args...)
			for _, cl := range checklists {
				if _, ok := r.Plan.Checklists[cl]; !ok {
					return usagef(fmt.Sprintf("no checklist %q in %s (checklists: %s)", cl, r.Plan.Path, strings.Join(r.Plan.ChecklistNames(), ", ")))
				}
			}
			cr := &check.Runner{Plan: r.Plan, Ops: r, Parallel: parallel, Log: g.log}
			res, err := cr.Run(cmd.Context(), names)
			if err != nil {
				return usagef(err.Error())
			}
			switch g.output {
			case "json":
				if err := printJSON(g.stdout, map[string]any{"ok": res.Err() == nil, "results": res}); err != nil {
					return err
				}
			case "junit":
				if err := writeJUnit(g.stdout, strings.Join(names, ","), res); err != nil {
					return err
				}
			default:
				t := newTable(g.stdout, "CHECK", "TYPE", "RESULT", "TOOK", "OBSERVED")
				for _, c := range res {
					result := strings.ToUpper(c.Status)
					if !c.Required && !c.OK {
						result += " (optional)"
					}
					t.row(c.Check, c.Type, result, c.Duration.Round(time.Millisecond), c.Message)
				}
				t.flush()
			}
			if err := res.Err(); err != nil {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&checklists, "checklist", nil, "run a checklist of the plan (repeatable)")
	cmd.Flags().IntVar(&parallel, "parallel", 8, "how many probes run at once")
	return cmd
}

type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Error     *junitMessage `xml:"error,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Body    string `xml:",chardata"`
}

// writeJUnit writes one suite with a test case per check; a failed
// optional check is reported as skipped so CI does not go red for it.
func writeJUnit(w io.Writer, name string, res check.Results) error {
	if name == "" {
		name = "all checks"
	}
	s := junitSuite{Name: "linkdr check " + name, Tests: len(res)}
	var total time.Duration
	for _, c := range res {
		total += c.Duration
		jc := junitCase{Name: c.Check, Classname: "linkdr." + c.Type, Time: fmt.Sprintf("%.3f", c.Duration.Seconds())}
		msg := &junitMessage{Message: c.Message, Body: "condition: " + c.Condition + "\n" + c.Message}
		switch {
		case c.OK:
		case !c.Required:
			jc.Skipped = msg
		case c.Status == check.StatusError:
			jc.Error = msg
			s.Errors++
		default:
			jc.Failure = msg
			s.Failures++
		}
		s.Cases = append(s.Cases, jc)
	}
	s.Time = fmt.Sprintf("%.3f", total.Seconds())
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(junitSuites{Suites: []junitSuite{s}}); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
