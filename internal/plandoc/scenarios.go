package plandoc

import (
	"fmt"
	"sort"
	"strings"

	"github.com/linkapp/linkdr/internal/plan"
)

// FromPlan turns the plan's scenarios into the document's, in the order
// they are written in the plan file (the Link plan escalates from a pod
// to a region), by name where the plan was not read from a file.
func FromPlan(p *plan.Plan) []Scenario {
	names := p.ScenarioNames()
	sort.SliceStable(names, func(i, j int) bool {
		return p.Line("scenarios."+names[i]) < p.Line("scenarios."+names[j])
	})
	var out []Scenario
	for _, n := range names {
		sc := p.Scenarios[n]
		rto := sc.RTO
		if rto == 0 {
			rto = p.Objectives.RTO
		}
		rpo := p.Objectives.RPO
		if sc.RPO != nil {
			rpo = *sc.RPO
		}
		s := Scenario{ID: n, Title: sc.Title, Severity: sc.Severity, RTO: human(rto), RPO: human(rpo),
			Automatic: sc.AutomaticRecovery}
		if rpo == 0 {
			s.RPO = "0 (no data loss)"
		}
		for _, a := range sc.Detection.Alerts {
			s.Detection = append(s.Detection, "Alert `"+a+"`")
		}
		for _, c := range sc.Detection.Checks {
			s.Detection = append(s.Detection, "Check `"+c+"` fails")
		}
		s.Detection = append(s.Detection, sc.Detection.Signals...)
		for _, ph := range sc.Phases {
			dp := Phase{Name: ph.Title, Budget: human(ph.Budget)}
			if dp.Name == "" {
				dp.Name = ph.ID
			}
			for _, st := range ph.Steps {
				ds := Step{ID: st.ID, Action: st.Action, Text: st.Title}
				if st.Timeout > 0 {
					ds.Timeout = st.Timeout.String()
				}
				if st.Confirm {
					ds.Text = strings.TrimSpace(ds.Text + " (manual approval)")
				}
				if cmd, ok := st.With["command"].(string); ok && st.Action == "shell" {
					ds.Code = strings.TrimSpace(cmd)
				}
				if st.When != "" {
					ds.Text = fmt.Sprintf("%s — when %s", strings.TrimSpace(ds.Text), st.When)
				}
				dp.Steps = append(dp.Steps, ds)
			}
			s.Phases = append(s.Phases, dp)
		}
		out = append(out, s)
	}
	return out
}
