package daemon

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/linkapp/linkdr/internal/drillreport"
	"github.com/linkapp/linkdr/internal/metrics"
	"github.com/linkapp/linkdr/internal/plan"
	"github.com/linkapp/linkdr/internal/schedule"
)

// KindDrill jobs run the plan's drills: "drill NAME".
const KindDrill = "drill"

// drillGroup is shared by every drill: two drills never run at once (both
// would restore into scratch targets and load the same servers), while a
// drill may run beside backups.
const drillGroup = "drill"

func drillJob(name string) string { return KindDrill + " " + name }

// drillSchedule is a drill's cron or monthly slot as a schedule.Schedule.
type drillSchedule struct{ d *plan.Drill }

func (s drillSchedule) Next(t time.Time) time.Time { return s.d.NextOccurrence(t) }

// drillJobs lists a job per drill of the plan; drills without a schedule
// are jobs too, run only when triggered.
func (d *Daemon) drillJobs() []schedule.Job {
	var out []schedule.Job
	for _, name := range d.plan.DrillNames() {
		dr := d.plan.Drills[name]
		if dr == nil {
			continue
		}
		j := schedule.Job{Name: drillJob(name), Group: drillGroup, CatchUp: dr.CatchUp.D()}
		if dr.Scheduled() {
			j.Schedule = drillSchedule{dr}
		}
		out = append(out, j)
	}
	return out
}

// drillState is what the daemon knows of the drill reports.
type drillState struct {
	cache drillreport.Cache
	mu    sync.Mutex
	// reports of the primary repository, oldest first, plus those this
	// replica wrote since the last reading.
	reports []*drillreport.Report
	status  []metrics.Drill
}

// readDrills reads the drill reports of the primary repository and
// updates the drill gauges. A plan without drills reads nothing.
func (d *Daemon) readDrills(ctx context.Context) ([]*drillreport.Report, error) {
	if len(d.plan.Drills) == 0 {
		return nil, nil
	}
	rp, err := d.cfg.Runner.OpenRepo(ctx, plan.DefaultRepository)
	if err != nil {
		return nil, err
	}
	defer rp.Close()
	reps, err := d.drills.cache.List(ctx, rp.Bucket())
	if err != nil {
		return nil, err
	}
	d.drills.mu.Lock()
	defer d.drills.mu.Unlock()
	d.drills.reports = reps
	d.drills.status = drillStatus(d.plan, reps)
	return reps, nil
}

// noteDrill adds a report this replica just wrote, so the gauges show it
// before the next reading.
func (d *Daemon) noteDrill(rep *drillreport.Report) {
	d.drills.mu.Lock()
	defer d.drills.mu.Unlock()
	for _, r := range d.drills.reports {
		if r.ID == rep.ID {
			return
		}
	}
	d.drills.reports = append(d.drills.reports, rep)
	d.drills.status = drillStatus(d.plan, d.drills.reports)
}

// DrillStatus is what the reports say of each drill of the plan.
func (d *Daemon) DrillStatus() []metrics.Drill {
	d.drills.mu.Lock()
	defer d.drills.mu.Unlock()
	if d.drills.status == nil {
		return drillStatus(d.plan, nil)
	}
	return d.drills.status
}

// drillStatus sums up the reports (oldest first) per drill of the plan.
// Ad-hoc drills (no name) and drills no longer in the plan are left out.
func drillStatus(p *plan.Plan, reports []*drillreport.Report) []metrics.Drill {
	byName := map[string]*metrics.Drill{}
	out := make([]metrics.Drill, 0, len(p.Drills))
	for _, name := range p.DrillNames() {
		dr := p.Drills[name]
		out = append(out, metrics.Drill{Name: name, Scheduled: dr != nil && dr.Scheduled()})
	}
	for i := range out {
		byName[out[i].Name] = &out[i]
	}
	for _, r := range reports {
		m := byName[r.Drill]
		if m == nil || r.Started.Before(m.LastRun) {
			continue
		}
		m.LastRun, m.LastOK = r.Started, r.OK
		m.RTO, m.RTOObjective, m.RPO, m.HasRTO, m.HasRPO = 0, 0, 0, false, false
		if r.OK && r.Started.After(m.LastSuccess) {
			m.LastSuccess = r.Started
		}
		switch {
		case r.Scenario != nil:
			m.RTO, m.HasRTO = secs(r.Scenario.RTOSeconds), true
			m.RTOObjective = secs(r.Scenario.RTOObjectiveSeconds)
		case len(r.Stores) > 0:
			m.HasRTO, m.HasRPO = true, true
			m.RTOObjective = secs(r.Objectives.RTOSeconds)
			for _, s := range r.Stores {
				m.RTO, m.RPO = max(m.RTO, secs(s.RTOSeconds)), max(m.RPO, secs(s.RPOSeconds))
				// Every store is judged by the plan's RTO today; should
				// they differ, the strictest bounds the drill.
				if o := secs(s.RTOObjectiveSeconds); o > 0 && (m.RTOObjective == 0 || o < m.RTOObjective) {
					m.RTOObjective = o
				}
			}
		}
	}
	return out
}

func secs(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// doDrill runs the plan's drill name through the Drill hook.
func (d *Daemon) doDrill(ctx context.Context, name string, rec *RunRecord) error {
	if d.cfg.Drill == nil {
		return errors.New("this daemon was built without a way to run drills")
	}
	rep, err := d.cfg.Drill(ctx, name)
	if rep != nil {
		rec.Detail = rep.ID
		d.noteDrill(rep)
	}
	if err != nil && ctx.Err() == nil {
		d.Metrics.DrillFailures.WithLabelValues(name).Inc()
	}
	return err
}
