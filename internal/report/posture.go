package report

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/linkapp/linkdr/internal/check"
	"github.com/linkapp/linkdr/internal/drillreport"
	"github.com/linkapp/linkdr/internal/ops"
	"github.com/linkapp/linkdr/internal/render"
)

// Posture is the whole picture at one moment.
type Posture struct {
	Plan       string                 `json:"plan"`
	Generated  time.Time              `json:"generated"`
	Objectives drillreport.Objectives `json:"objectives"`
	Stores     []Store                `json:"stores"`
	Drills     []Drill                `json:"drills"`
	// Checks are all checks run for the report; Failed counts those that
	// did not pass.
	Checks []check.Result `json:"checks"`
	Failed int            `json:"failed_checks"`
}

// Store is one store's freshness and its latest measured RTO/RPO.
type Store struct {
	Store           string    `json:"store"`
	Kind            string    `json:"kind"`
	State           string    `json:"state"`
	Error           string    `json:"error,omitempty"`
	Backups         int       `json:"backups"`
	LatestID        string    `json:"latest_id,omitempty"`
	ConsistentAt    time.Time `json:"consistent_at,omitempty"`
	ExposureSeconds float64   `json:"exposure_seconds"`
	RPOSeconds      float64   `json:"rpo_objective_seconds"`
	RTOSeconds      float64   `json:"rto_objective_seconds"`
	// LastDrill is the newest drill of the store, if any.
	LastDrill *Point `json:"last_drill,omitempty"`
}

// Point is one measurement of a drill for a store or scenario.
type Point struct {
	Drill            string    `json:"drill_id"`
	Name             string    `json:"name"`
	At               time.Time `json:"at"`
	OK               bool      `json:"ok"`
	RTOSeconds       float64   `json:"rto_seconds"`
	RPOSeconds       float64   `json:"rpo_seconds"`
	CanaryRPOSeconds *float64  `json:"canary_rpo_seconds,omitempty"`
	Error            string    `json:"error,omitempty"`
}

// Drill summarises one drill report.
type Drill struct {
	ID       string    `json:"id"`
	Drill    string    `json:"drill,omitempty"`
	Kind     string    `json:"kind"`
	Title    string    `json:"title,omitempty"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	OK       bool      `json:"ok"`
	Error    string    `json:"error,omitempty"`
	Points   []Point   `json:"points"`
}

// Build arranges statuses (ops.Runner.Status), drill reports (oldest
// first) and check results into a posture.
func Build(planName string, obj drillreport.Objectives, statuses []ops.StoreStatus, reports []*drillreport.Report, checks check.Results, now time.Time) *Posture {
	p := &Posture{Plan: planName, Generated: now.UTC(), Objectives: obj, Checks: checks}
	if p.Checks == nil {
		p.Checks = check.Results{}
	}
	for _, c := range checks {
		if !c.OK {
			p.Failed++
		}
	}
	for _, r := range reports {
		d := Drill{ID: r.ID, Drill: r.Drill, Kind: r.Kind, Title: r.Title, Started: r.Started, Finished: r.Finished, OK: r.OK, Error: r.Error}
		d.Points = Points(r)
		p.Drills = append(p.Drills, d)
	}
	for _, s := range statuses {
		st := Store{Store: s.Store, Kind: s.Kind, State: s.State, Error: s.Error, Backups: s.Backups, LatestID: s.LatestID,
			ConsistentAt: s.ConsistentAt, ExposureSeconds: s.Exposure.Seconds(), RPOSeconds: s.RPO.Seconds(), RTOSeconds: obj.RTOSeconds}
		for i := len(p.Drills) - 1; i >= 0 && st.LastDrill == nil; i-- {
			for _, pt := range p.Drills[i].Points {
				if pt.Name == s.Store {
					pt := pt
					st.LastDrill = &pt
				}
			}
		}
		p.Stores = append(p.Stores, st)
	}
	return p
}

// Points are the measurements of a report: one per store, and one for
// the scenario of a failover drill ("scenario <id>").
func Points(r *drillreport.Report) []Point {
	var out []Point
	for _, s := range r.Stores {
		out = append(out, Point{Drill: r.ID, Name: s.Store, At: r.Started, OK: s.OK, RTOSeconds: s.RTOSeconds,
			RPOSeconds: s.RPOSeconds, CanaryRPOSeconds: s.CanaryRPOSeconds, Error: s.Error})
	}
	if sc := r.Scenario; sc != nil {
		out = append(out, Point{Drill: r.ID, Name: "scenario " + sc.ID, At: r.Started, OK: r.OK, RTOSeconds: sc.RTOSeconds, Error: r.Error})
	}
	return out
}

func yes(ok bool) string {
	if ok {
		return "OK"
	}
	return "FAILED"
}

func met(v, limit float64) string {
	if v <= limit {
		return "MET"
	}
	return "MISSED"
}

// Doc renders the posture.
func (p *Posture) Doc() *render.Doc {
	d := &render.Doc{Title: fmt.Sprintf("%s: DR posture", p.Plan),
		Subtitle: fmt.Sprintf("Generated %s by linkdr from the repository, the drill reports and the checks.", p.Generated.Format("2006-01-02 15:04 MST"))}
	breached, drillsFailed := 0, 0
	for _, s := range p.Stores {
		if s.State != ops.StateOK && s.State != ops.StateAtRisk {
			breached++
		}
	}
	for _, dr := range p.Drills {
		if !dr.OK {
			drillsFailed++
		}
	}
	d.H(1, "summary", "Summary")
	d.Add(render.Table{Header: []string{"what", "value"}, Rows: [][]string{
		{"RTO objective", render.Seconds(p.Objectives.RTOSeconds)},
		{"RPO objective", render.Seconds(p.Objectives.RPOSeconds)},
		{"stores", fmt.Sprintf("%d (%d not fresh)", len(p.Stores), breached)},
		{"drills", fmt.Sprintf("%d (%d failed)", len(p.Drills), drillsFailed)},
		{"checks", fmt.Sprintf("%d (%d failed)", len(p.Checks), p.Failed)},
	}})

	d.H(1, "objectives", "Objectives vs measured")
	d.P("The latest drill of each store: measured RTO (restore and validation) and RPO (age of the newest restorable data when the drill started) against the objectives.")
	var rows [][]string
	for _, s := range p.Stores {
		if s.LastDrill == nil {
			rows = append(rows, []string{s.Store, render.Seconds(s.RTOSeconds), "never drilled", render.Seconds(s.RPOSeconds), "never drilled", "-", "UNKNOWN"})
			continue
		}
		l := s.LastDrill
		canary := "-"
		if l.CanaryRPOSeconds != nil {
			canary = render.Seconds(*l.CanaryRPOSeconds)
		}
		verdict := "MET"
		if !l.OK || l.RTOSeconds > s.RTOSeconds || l.RPOSeconds > s.RPOSeconds {
			verdict = "MISSED"
		}
		rows = append(rows, []string{s.Store, render.Seconds(s.RTOSeconds), render.Seconds(l.RTOSeconds), render.Seconds(s.RPOSeconds),
			render.Seconds(l.RPOSeconds), canary, verdict + " (" + l.Drill + ")"})
	}
	d.Add(render.Table{Header: []string{"store", "RTO objective", "measured RTO", "RPO objective", "measured RPO", "canary RPO", "verdict"}, Rows: rows})

	series := func(rpo bool) []render.Series {
		byName := map[string][]render.Point{}
		for _, dr := range p.Drills {
			for _, pt := range dr.Points {
				v := pt.RTOSeconds
				if rpo {
					v = pt.RPOSeconds
					if strings.HasPrefix(pt.Name, "scenario ") {
						continue
					}
				}
				byName[pt.Name] = append(byName[pt.Name], render.Point{T: pt.At, V: v, OK: pt.OK})
			}
		}
		var names []string
		for n := range byName {
			names = append(names, n)
		}
		sort.Strings(names)
		var out []render.Series
		for _, n := range names {
			out = append(out, render.Series{Name: n, Points: byName[n]})
		}
		return out
	}
	d.H(1, "rto-trend", "RTO over time")
	if svg := render.Trend(series(false), p.Objectives.RTOSeconds, render.Seconds); svg != "" {
		d.Add(render.Chart{Caption: "Measured RTO per store and scenario, by drill; dashed: the RTO objective; red points: failed drills.", SVG: svg})
	} else {
		d.Add(render.Note{Text: "No drills yet: run `linkdr drill run restore`."})
	}
	d.H(1, "rpo-trend", "RPO over time")
	if svg := render.Trend(series(true), p.Objectives.RPOSeconds, render.Seconds); svg != "" {
		d.Add(render.Chart{Caption: "Measured RPO per store, by drill; dashed: the RPO objective.", SVG: svg})
	} else {
		d.Add(render.Note{Text: "No drills yet."})
	}

	d.H(1, "freshness", "Backup freshness")
	var bars []render.Bar
	rows = nil
	for _, s := range p.Stores {
		exp := "-"
		if s.Backups > 0 {
			exp = render.Seconds(s.ExposureSeconds)
			bars = append(bars, render.Bar{Label: s.Store, Value: s.ExposureSeconds, Limit: s.RPOSeconds,
				Text: exp + " of " + render.Seconds(s.RPOSeconds)})
		}
		state := s.State
		if s.Error != "" {
			state += ": " + s.Error
		}
		latest := s.LatestID
		if latest == "" {
			latest = "none"
		}
		rows = append(rows, []string{s.Store, s.Kind, latest, exp, render.Seconds(s.RPOSeconds), state})
	}
	if svg := render.Bars(bars); svg != "" {
		d.Add(render.Chart{Caption: "Age of the newest restorable backup (RPO exposure) against each store's RPO objective (the tick).", SVG: svg})
	}
	d.Add(render.Table{Header: []string{"store", "kind", "latest backup", "exposure", "RPO objective", "state"}, Rows: rows})

	d.H(1, "drills", "Drill trend")
	if len(p.Drills) == 0 {
		d.Add(render.Note{Text: "No drill has run yet."})
	} else {
		rows = nil
		for i := len(p.Drills) - 1; i >= 0; i-- {
			dr := p.Drills[i]
			var parts []string
			for _, pt := range dr.Points {
				parts = append(parts, fmt.Sprintf("%s RTO %s RPO %s", pt.Name, render.Seconds(pt.RTOSeconds), render.Seconds(pt.RPOSeconds)))
			}
			name := dr.Drill
			if name == "" {
				name = "(ad hoc)"
			}
			rows = append(rows, []string{dr.Started.UTC().Format("2006-01-02 15:04"), dr.ID, name, dr.Kind, yes(dr.OK), strings.Join(parts, "; "), dr.Error})
		}
		d.Add(render.Table{Header: []string{"started", "drill id", "drill", "kind", "result", "measured", "error"}, Rows: rows})
	}

	d.H(1, "checks", "Failed checks")
	rows = nil
	for _, c := range p.Checks {
		if !c.OK {
			req := "optional"
			if c.Required {
				req = "required"
			}
			rows = append(rows, []string{c.Check, c.Type, req, strings.ToUpper(c.Status), c.Message})
		}
	}
	switch {
	case len(p.Checks) == 0:
		d.Add(render.Note{Text: "No checks were run for this report (the plan has none, or --no-checks)."})
	case len(rows) == 0:
		d.P("All %d checks passed.", len(p.Checks))
	default:
		d.Add(render.Table{Header: []string{"check", "type", "", "status", "message"}, Rows: rows})
	}
	return d
}
