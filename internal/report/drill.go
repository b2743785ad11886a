package report

import (
	"fmt"
	"strings"

	"github.com/linkapp/linkdr/internal/drillreport"
	"github.com/linkapp/linkdr/internal/render"
)

// DrillDoc renders one drill report.
func DrillDoc(r *drillreport.Report) *render.Doc {
	title := r.Title
	if title == "" {
		title = r.Kind + " drill"
	}
	d := &render.Doc{Title: fmt.Sprintf("Drill %s: %s", r.ID, title),
		Subtitle: fmt.Sprintf("Plan %s, %s drill started %s, finished %s (%s), trigger %s, host %s.", r.Plan, r.Kind,
			r.Started.UTC().Format("2006-01-02 15:04:05Z"), r.Finished.UTC().Format("15:04:05Z"),
			render.Seconds(r.Finished.Sub(r.Started).Seconds()), orDash(r.Trigger), orDash(r.Host))}
	d.H(1, "result", "Result")
	if r.OK {
		d.P("**PASSED**: every store restored, matched its manifest and passed its checks; every scratch resource was removed.")
	} else {
		d.P("**FAILED**: %s", r.Error)
	}
	if len(r.Skipped) > 0 {
		d.Add(render.Note{Text: "Not drilled (no drill for their kind yet): " + strings.Join(r.Skipped, ", ") + "."})
	}
	var rows [][]string
	for _, s := range r.Stores {
		canary := "-"
		if s.CanaryRPOSeconds != nil {
			canary = render.Seconds(*s.CanaryRPOSeconds)
		}
		rows = append(rows, []string{s.Store, yes(s.OK), render.Seconds(s.RTOSeconds), met(s.RTOSeconds, s.RTOObjectiveSeconds) + " (" + render.Seconds(s.RTOObjectiveSeconds) + ")",
			render.Seconds(s.RPOSeconds), met(s.RPOSeconds, s.RPOObjectiveSeconds) + " (" + render.Seconds(s.RPOObjectiveSeconds) + ")", canary})
	}
	if len(rows) > 0 {
		d.Add(render.Table{Header: []string{"store", "result", "measured RTO", "RTO objective", "measured RPO", "RPO objective", "canary RPO"}, Rows: rows})
	}
	for _, s := range r.Stores {
		d.H(1, "store-"+s.Store, "Store %s", s.Store)
		info := [][]string{
			{"backup", fmt.Sprintf("%s (%s), consistent at %s", s.BackupID, s.BackupMethod, s.ConsistentAt.UTC().Format("2006-01-02 15:04:05Z"))},
			{"scratch target", orDash(s.Scratch)},
			{"restore", render.Seconds(s.RestoreSeconds)},
			{"validation", render.Seconds(s.ValidateSeconds)},
			{"result", yes(s.OK)},
		}
		if !s.OK {
			info = append(info, []string{"failed in", s.Phase}, []string{"error", s.Error})
		}
		d.Add(render.Table{Header: []string{"", ""}, Rows: info})
		d.H(2, "", "Integrity against the manifest")
		if s.Integrity.Summary != "" {
			d.P("%s", s.Integrity.Summary)
		}
		rows = nil
		for _, it := range s.Integrity.Items {
			rows = append(rows, []string{it.Name, fmt.Sprint(it.ExpectedRows), fmt.Sprint(it.Rows), it.ExpectedSum, it.Sum, yes(it.OK) + " " + it.Problem})
		}
		if len(rows) > 0 {
			d.Add(render.Table{Header: []string{"table", "manifest rows", "restored rows", "manifest checksum", "restored checksum", "result"}, Rows: rows})
		}
		if len(s.History) > 0 {
			d.H(2, "", "Against the previous backup")
			rows = nil
			for _, h := range s.History {
				rows = append(rows, []string{h.Name, fmt.Sprintf("%d (%s)", h.PreviousRows, h.PreviousBackup), fmt.Sprint(h.Rows),
					fmt.Sprintf("%.0f%%", 100*h.Shrink), yes(h.OK) + " " + h.Problem})
			}
			d.Add(render.Table{Header: []string{"table", "previous rows", "rows", "shrink", "result"}, Rows: rows})
		}
		if len(s.Canaries) > 0 {
			d.H(2, "", "Canaries")
			d.P("Canary records written into the live store before drills. A canary written before the backup's consistent_at must survive; later ones show what an outage at that moment would have lost.")
			rows = nil
			for _, c := range s.Canaries {
				surv := "LOST"
				if c.Survived {
					surv = "OK survived"
				}
				exp := "no (written after the backup)"
				if c.Expected {
					exp = "yes"
				}
				rows = append(rows, []string{c.ID, orDash(c.Database), c.WrittenAt.UTC().Format("2006-01-02 15:04:05Z"), exp, surv})
			}
			d.Add(render.Table{Header: []string{"canary", "database", "written", "expected in backup", "in the restore"}, Rows: rows})
		}
		if len(s.Checks) > 0 {
			d.H(2, "", "Checks against the scratch copy")
			d.Add(checkTable(s.Checks))
		}
		d.H(2, "", "Cleanup")
		if s.Cleanup.OK {
			d.P("Removed: %s.", orDash(strings.Join(s.Cleanup.Removed, ", ")))
		} else {
			d.Add(render.Note{Text: "Scratch resources may be left behind: " + s.Cleanup.Error})
		}
	}
	if sc := r.Scenario; sc != nil {
		d.H(1, "scenario", "Scenario %s", sc.ID)
		rows = nil
		for _, ph := range sc.Phases {
			rows = append(rows, []string{ph.Name, render.Seconds(ph.Seconds), render.Seconds(ph.BudgetSeconds), yes(ph.OK)})
		}
		d.Add(render.Table{Header: []string{"phase", "took", "budget", "result"}, Rows: rows})
	}
	if len(r.Checks) > 0 {
		d.H(1, "checks", "Checks")
		d.Add(checkTable(r.Checks))
	}
	return d
}

func checkTable(cs []drillreport.Check) render.Table {
	var rows [][]string
	for _, c := range cs {
		rows = append(rows, []string{c.Name, c.Type, strings.ToUpper(c.Status), c.Message})
	}
	return render.Table{Header: []string{"check", "type", "status", "observed"}, Rows: rows}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
