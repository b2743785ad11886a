package daemon

import (
	"testing"
	"time"

	"github.com/linkapp/linkdr/internal/drillreport"
	"github.com/linkapp/linkdr/internal/plan"
)

// TestDrillStatus: the gauges describe each plan drill's newest run
// (max RTO and RPO over its stores; the rehearsal's RTO for failover),
// keep the newest success through a later failure, and leave out ad-hoc
// drills and drills no longer in the plan.
func TestDrillStatus(t *testing.T) {
	p := &plan.Plan{Drills: map[string]*plan.Drill{
		"restore":  {Kind: plan.DrillRestore, Week: 2},
		"failover": {Kind: plan.DrillFailover, Scenario: "regional-failure"},
		"never":    {Kind: plan.DrillRestore, Week: 1},
	}}
	t0 := time.Date(2026, 12, 8, 10, 0, 0, 0, time.UTC)
	reps := []*drillreport.Report{
		{Drill: "restore", Started: t0, OK: true, Objectives: drillreport.Objectives{RTOSeconds: 3600},
			Stores: []drillreport.Store{{RTOSeconds: 10, RPOSeconds: 100, RTOObjectiveSeconds: 3600}, {RTOSeconds: 30, RPOSeconds: 50, RTOObjectiveSeconds: 3600}}},
		{Drill: "failover", Started: t0.Add(time.Hour), OK: false,
			Scenario: &drillreport.Scenario{RTOSeconds: 900, RTOObjectiveSeconds: 600}},
		{Drill: "restore", Started: t0.AddDate(0, 1, 0), OK: false, Objectives: drillreport.Objectives{RTOSeconds: 3600},
			Stores: []drillreport.Store{{RTOSeconds: 7200, RPOSeconds: 20, RTOObjectiveSeconds: 3600}}},
		{Drill: "", Started: t0.AddDate(0, 2, 0), OK: true},
		{Drill: "gone", Started: t0.AddDate(0, 2, 0), OK: true},
	}
	got := drillStatus(p, reps)
	if len(got) != 3 || got[0].Name != "failover" || got[1].Name != "never" || got[2].Name != "restore" {
		t.Fatalf("drills %+v", got)
	}
	f, n, r := got[0], got[1], got[2]
	if f.Scheduled || !f.LastRun.Equal(t0.Add(time.Hour)) || f.LastOK || !f.LastSuccess.IsZero() ||
		!f.HasRTO || f.RTO != 900*time.Second || f.RTOObjective != 600*time.Second || f.HasRPO {
		t.Errorf("failover %+v", f)
	}
	if !n.Scheduled || !n.LastRun.IsZero() || n.HasRTO {
		t.Errorf("never %+v", n)
	}
	if !r.Scheduled || !r.LastRun.Equal(t0.AddDate(0, 1, 0)) || r.LastOK || !r.LastSuccess.Equal(t0) ||
		r.RTO != 2*time.Hour || r.RPO != 20*time.Second || r.RTOObjective != time.Hour {
		t.Errorf("restore %+v", r)
	}
}
