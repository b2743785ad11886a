package cli

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/linkapp/linkdr/internal/incident"
	"github.com/linkapp/linkdr/internal/journal"
)

func newIncidentCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "incident",
		Short: "Open, update and resolve incidents; timelines and post-mortems",
		Long: `An incident is a journal (runs/<incident-id>/journal.jsonl in the repository)
of status updates, notifications and the runbook runs that worked on it.
Messages go to the channels in incidents.notify using the plan's templates
(INCIDENT ALERT, update, RESOLVED); PagerDuty gets trigger, acknowledge and
resolve under the incident id as dedup key. See docs/incidents.md.`,
	}
	cmd.AddCommand(newIncidentOpenCmd(g), newIncidentUpdateCmd(g), newIncidentResolveCmd(g), newIncidentListCmd(g),
		newIncidentShowCmd(g), newIncidentTimelineCmd(g), newIncidentPostmortemCmd(g), newIncidentRemindCmd(g))
	return cmd
}

func printIncident(g *globals, o *operations, inc *incident.Incident) error {
	if g.json() {
		return printJSON(g.stdout, inc)
	}
	iv := o.plan.Incidents.UpdateInterval.D()
	w := g.stdout
	fmt.Fprintf(w, "%s  %s\n", inc.ID, inc.Title)
	fmt.Fprintf(w, "  status:    %s\n  severity:  %s, impact %s\n  service:   %s\n  opened:    %s by %s\n", inc.Status, inc.Severity, inc.Impact, inc.Service, stamp(inc.Opened), inc.By)
	if inc.Scenario != "" {
		fmt.Fprintf(w, "  scenario:  %s\n", inc.Scenario)
	}
	if len(inc.Runs) > 0 {
		fmt.Fprintf(w, "  runs:      %s\n", strings.Join(inc.Runs, ", "))
	}
	if inc.Status == "resolved" {
		fmt.Fprintf(w, "  resolved:  %s (after %s)\n  root cause: %s\n", stamp(inc.Resolved), age(inc.Resolved.Sub(inc.Opened)), inc.RootCause)
		return nil
	}
	next := inc.NextUpdate(iv)
	due := "next update due " + stamp(next)
	if inc.Overdue(time.Now(), iv) {
		due = fmt.Sprintf("UPDATE OVERDUE since %s (every %s is promised): `linkdr incident update %s --message …`", stamp(next), o.plan.Incidents.UpdateInterval, inc.ID)
	}
	fmt.Fprintf(w, "  updates:   last %s; %s\n", stamp(inc.LastUpdate), due)
	return nil
}

func newIncidentOpenCmd(g *globals) *cobra.Command {
	var req incident.OpenRequest
	cmd := &cobra.Command{
		Use:   "open",
		Short: "Open an incident and send the INCIDENT ALERT",
		Example: `  linkdr incident open --title "API errors in us-west-2" --severity critical --issue "elevated 5xx on the API"
  linkdr incident open --title "Regional outage" --scenario regional-failure --notify=false`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := g.operations(cmd.Context(), "")
			if err != nil {
				return err
			}
			defer o.closeRepo()
			if req.Scenario != "" {
				sc, ok := o.plan.Scenarios[req.Scenario]
				if !ok {
					return usagef(fmt.Sprintf("--scenario %q: scenarios: %s", req.Scenario, strings.Join(o.plan.ScenarioNames(), ", ")))
				}
				if req.Title == "" {
					req.Title = sc.Title
				}
				if req.Severity == "" {
					req.Severity = sc.Severity
				}
			}
			if req.Title == "" {
				return usagef("--title is required (or --scenario)")
			}
			inc, err := o.incidents.Open(cmd.Context(), req)
			if inc != nil {
				if perr := printIncident(g, o, inc); perr != nil {
					return perr
				}
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Title, "title", "", "what is happening")
	f.StringVar(&req.Severity, "severity", "", "critical, high, medium or low (default high, or the scenario's)")
	f.StringVar(&req.Impact, "impact", "", "High, Medium or Low (default from severity)")
	f.StringVar(&req.Issue, "issue", "", `completes "We are investigating reports of …"`)
	f.StringVar(&req.Scenario, "scenario", "", "the plan's scenario this is")
	f.BoolVar(&req.Notify, "notify", true, "send the alert to incidents.notify")
	return cmd
}

func newIncidentUpdateCmd(g *globals) *cobra.Command {
	var status, message string
	var notify bool
	cmd := &cobra.Command{
		Use:   "update INCIDENT",
		Short: "Post a status update (resets the update cadence)",
		Example: `  linkdr incident update inc-20261126T061500Z-3fa2 --status identified --message "us-west-2 is down; failing over to us-east-1"
  linkdr incident update inc-2026 --message "databases restored, moving traffic"`,
		Args: exactArgs(1, "an incident id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if message == "" {
				return usagef("--message is required")
			}
			o, err := g.operations(cmd.Context(), "")
			if err != nil {
				return err
			}
			defer o.closeRepo()
			inc, err := o.incidents.Update(cmd.Context(), args[0], status, message, notify)
			if inc != nil {
				if perr := printIncident(g, o, inc); perr != nil {
					return perr
				}
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&status, "status", "", "investigating, identified or monitoring")
	f.StringVar(&message, "message", "", "what people should know now")
	f.BoolVar(&notify, "notify", true, "send the update template to incidents.notify")
	return cmd
}

func newIncidentResolveCmd(g *globals) *cobra.Command {
	var cause string
	var notify bool
	cmd := &cobra.Command{
		Use:     "resolve INCIDENT",
		Short:   "Resolve an incident and send the RESOLVED notice",
		Example: `  linkdr incident resolve inc-20261126T061500Z-3fa2 --root-cause "loss of power in us-west-2"`,
		Args:    exactArgs(1, "an incident id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cause == "" {
				return usagef("--root-cause is required (a brief explanation; the post-mortem has the rest)")
			}
			o, err := g.operations(cmd.Context(), "")
			if err != nil {
				return err
			}
			defer o.closeRepo()
			inc, err := o.incidents.Resolve(cmd.Context(), args[0], cause, notify)
			if inc != nil {
				if perr := printIncident(g, o, inc); perr != nil {
					return perr
				}
			}
			return err
		},
	}
	cmd.Flags().StringVar(&cause, "root-cause", "", "brief explanation")
	cmd.Flags().BoolVar(&notify, "notify", true, "send the resolved template to incidents.notify")
	return cmd
}

func newIncidentListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List incidents, newest first, with overdue updates flagged",
		Example: "  linkdr incident list\n  linkdr incident list -o json",
		Args:    exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := g.operations(cmd.Context(), "")
			if err != nil {
				return err
			}
			defer o.closeRepo()
			list, err := o.incidents.List(cmd.Context())
			if err != nil {
				return err
			}
			if g.json() {
				return printJSON(g.stdout, list)
			}
			iv := o.plan.Incidents.UpdateInterval.D()
			t := newTable(g.stdout, "INCIDENT", "STATUS", "SEVERITY", "OPENED", "DURATION", "UPDATE", "TITLE")
			for _, inc := range list {
				end, upd := time.Now(), "due "+stamp(inc.NextUpdate(iv))
				if !inc.Resolved.IsZero() {
					end, upd = inc.Resolved, "-"
				} else if inc.Overdue(time.Now(), iv) {
					upd = "OVERDUE"
				}
				t.row(inc.ID, inc.Status, inc.Severity, stamp(inc.Opened), age(end.Sub(inc.Opened)), upd, inc.Title)
			}
			t.flush()
			return nil
		},
	}
}

func newIncidentShowCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "show INCIDENT",
		Short:   "Show an incident",
		Example: "  linkdr incident show inc-20261126T061500Z-3fa2",
		Args:    exactArgs(1, "an incident id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := g.operations(cmd.Context(), "")
			if err != nil {
				return err
			}
			defer o.closeRepo()
			inc, err := o.incidents.Get(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printIncident(g, o, inc)
		},
	}
}

// runsOf reads the journals of an incident's runs.
func runsOf(g *globals, o *operations, inc *incident.Incident) (map[string][]journal.Event, error) {
	runs := map[string][]journal.Event{}
	for _, id := range inc.Runs {
		evs, err := o.journals.Read(g.ctx(), id)
		if err != nil {
			return nil, err
		}
		runs[id] = evs
	}
	return runs, nil
}

func newIncidentTimelineCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "timeline INCIDENT",
		Short:   "The incident's timeline, merged with the events of its runs",
		Example: "  linkdr incident timeline inc-20261126T061500Z-3fa2\n  linkdr incident timeline inc-2026 -o json",
		Args:    exactArgs(1, "an incident id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := g.operations(cmd.Context(), "")
			if err != nil {
				return err
			}
			defer o.closeRepo()
			inc, err := o.incidents.Get(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			runs, err := runsOf(g, o, inc)
			if err != nil {
				return err
			}
			tl := incident.Timeline(inc, runs)
			if g.json() {
				return printJSON(g.stdout, tl)
			}
			t := newTable(g.stdout, "TIME (UTC)", "+ELAPSED", "SOURCE", "EVENT")
			for _, e := range tl {
				t.row(e.Time.UTC().Format("2006-01-02 15:04:05"), age(e.Time.Sub(inc.Opened)), e.Source, e.Text)
			}
			t.flush()
			return nil
		},
	}
}

func newIncidentPostmortemCmd(g *globals) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "postmortem INCIDENT",
		Short: "Write the post-mortem draft (Markdown)",
		Long: `postmortem writes a Markdown draft: summary, measured RTO against the
scenario's objective, measured data loss (RPO) of every restore, each phase's
time against its budget, automated versus manual work, the merged timeline,
and the plan's post-incident checklist.`,
		Example: "  linkdr incident postmortem inc-20261126T061500Z-3fa2 > postmortem.md\n  linkdr incident postmortem inc-2026 --file postmortem.md",
		Args:    exactArgs(1, "an incident id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := g.operations(cmd.Context(), "")
			if err != nil {
				return err
			}
			defer o.closeRepo()
			inc, err := o.incidents.Get(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			runs, err := runsOf(g, o, inc)
			if err != nil {
				return err
			}
			w := g.stdout
			if out != "" {
				f, err := os.Create(out)
				if err != nil {
					return err
				}
				defer f.Close()
				w = f
			}
			if err := incident.Postmortem(w, o.plan, inc, runs, time.Now()); err != nil {
				return err
			}
			if out != "" {
				fmt.Fprintf(g.stderr, "wrote %s\n", out)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "file", "", "write to this file instead of stdout")
	return cmd
}

func newIncidentRemindCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "remind [INCIDENT]",
		Short: "Send the reminder for every open incident whose update is overdue",
		Long: `remind sends the reminder template to incidents.notify for each open incident
(or the one named) whose last update is older than incidents.update_interval;
once per missed interval. Runs do this by themselves; use it from cron when
no run is active.`,
		Example: "  linkdr incident remind",
		Args:    maxArgs(1, "an incident id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := g.operations(cmd.Context(), "")
			if err != nil {
				return err
			}
			defer o.closeRepo()
			var ids []string
			if len(args) == 1 {
				ids = args
			} else {
				list, err := o.incidents.List(cmd.Context())
				if err != nil {
					return err
				}
				for _, inc := range list {
					if inc.Status != "resolved" {
						ids = append(ids, inc.ID)
					}
				}
			}
			for _, id := range ids {
				sent, err := o.incidents.Remind(cmd.Context(), id)
				if err != nil {
					return err
				}
				if sent {
					fmt.Fprintf(g.stdout, "%s: reminder sent\n", id)
				} else {
					fmt.Fprintf(g.stdout, "%s: updates are on time\n", id)
				}
			}
			return nil
		},
	}
}
