package drill

import (
	"sort"
	"time"

	"github.com/linkapp/linkdr/internal/drillreport"
	"github.com/linkapp/linkdr/internal/plan"
)

// DueDrill is a drill whose scheduled time has come.
type DueDrill struct {
	Name string
	// At is the scheduled time the run is for.
	At time.Time
}

// Due returns the drills of the plan that should start now: the latest
// scheduled time at or before now is later than the drill's last run
// (last, by drill name; missing means never), and no more than the
// drill's catch_up late — a drill missed by longer (the daemon was down
// for days) waits for its next slot rather than firing unexpectedly.
// It is a pure function: the caller keeps the last runs (LastRuns reads
// them from drill reports).
func Due(p *plan.Plan, last map[string]time.Time, now time.Time) []DueDrill {
	var out []DueDrill
	for _, name := range p.DrillNames() {
		d := p.Drills[name]
		if d == nil || !d.Scheduled() {
			continue
		}
		at := d.LastOccurrence(now)
		if at.IsZero() || !at.After(last[name]) || now.Sub(at) > d.CatchUp.D() {
			continue
		}
		out = append(out, DueDrill{Name: name, At: at})
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].At.Before(out[j].At) || out[i].At.Equal(out[j].At) && out[i].Name < out[j].Name
	})
	return out
}

// LastRuns is each plan drill's most recent start, from its reports.
func LastRuns(reports []*drillreport.Report) map[string]time.Time {
	out := map[string]time.Time{}
	for _, r := range reports {
		if r.Drill != "" && r.Started.After(out[r.Drill]) {
			out[r.Drill] = r.Started
		}
	}
	return out
}
