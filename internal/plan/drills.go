package plan

import (
	"fmt"
	"strings"
	"time"
)

// Drill kinds.
const (
	// DrillRestore restores the latest backups into scratch targets and
	// measures RTO and RPO.
	DrillRestore = "restore"
	// DrillFailover rehearses a scenario's runbook against the DR side.
	DrillFailover = "failover"
)

// Drill is a recurring exercise of the plan. When it runs is either a
// cron schedule or a monthly slot ("week 2, Tuesday, 10:00 UTC"), which is
// how the plan's monthly DR testing schedule is written.
type Drill struct {
	// Kind: restore or failover.
	Kind        string `yaml:"kind"`
	Title       string `yaml:"title"`
	Description string `yaml:"description"`

	// Schedule in cron syntax, or Week (1–4 for the nth weekday of the
	// month, 5 for the last) with Weekday and At.
	Schedule Cron   `yaml:"schedule"`
	Week     int    `yaml:"week"`
	Weekday  string `yaml:"weekday"` // default monday
	At       string `yaml:"at"`      // HH:MM UTC, default 10:00
	// CatchUp is how late a missed drill may still start (the daemon was
	// down at its time). Default 24h.
	CatchUp Duration `yaml:"catch_up"`

	// restore: the stores to drill (default all), a scratch server per
	// store (default: a new database on the store's own server), extra
	// checks to run after the restore, and how much a table may shrink
	// between consecutive backups before the drill calls it suspicious.
	Stores         []string          `yaml:"stores"`
	Scratch        map[string]Secret `yaml:"scratch"`
	Checks         []string          `yaml:"checks"`
	MaxTableShrink string            `yaml:"max_table_shrink"`

	// failover: the scenario whose runbook is rehearsed, and the vars
	// that point its steps at the DR side (the rehearsal also sets
	// rehearsal=true, for `when:` conditions that spare the primary).
	Scenario string            `yaml:"scenario"`
	Vars     map[string]string `yaml:"vars"`

	// Name is the key under drills (not part of the YAML).
	Name string `yaml:"-"`
}

// DefaultMaxTableShrink is the share of its rows a table may lose between
// two consecutive backups before a restore drill fails.
const DefaultMaxTableShrink = "50%"

// DrillNames returns the drill names in sorted order.
func (p *Plan) DrillNames() []string { return sortedKeys(p.Drills) }

// ShrinkLimit is MaxTableShrink as a fraction (0.5 for "50%").
func (d *Drill) ShrinkLimit() float64 {
	v, err := ParseAvailability(d.MaxTableShrink)
	if err != nil {
		return 0.5
	}
	return v
}

var weekdays = map[string]time.Weekday{
	"sunday": time.Sunday, "monday": time.Monday, "tuesday": time.Tuesday, "wednesday": time.Wednesday,
	"thursday": time.Thursday, "friday": time.Friday, "saturday": time.Saturday,
}

// Scheduled reports whether the drill has a schedule at all.
func (d *Drill) Scheduled() bool { return !d.Schedule.IsZero() || d.Week > 0 }

// ScheduleText describes when the drill runs, for humans.
func (d *Drill) ScheduleText() string {
	switch {
	case !d.Schedule.IsZero():
		return "cron " + d.Schedule.Spec + " (UTC)"
	case d.Week > 0:
		wd := strings.ToUpper(d.Weekday[:1]) + d.Weekday[1:]
		nth := []string{"", "1st", "2nd", "3rd", "4th", "last"}[d.Week]
		return fmt.Sprintf("monthly, week %d: %s %s of the month, %s UTC", d.Week, nth, wd, d.At)
	}
	return "on demand"
}

// LastOccurrence is the latest scheduled start at or before now (zero if
// the drill has no schedule or none within the last 400 days).
func (d *Drill) LastOccurrence(now time.Time) time.Time {
	now = now.UTC()
	switch {
	case !d.Schedule.IsZero():
		// cron has no "previous": widen a window back from now until it
		// holds an activation, then walk forward to the last one.
		for w := time.Minute; w <= 800*24*time.Hour; w *= 2 {
			t := d.Schedule.Next(now.Add(-w))
			if t.IsZero() || t.After(now) {
				continue
			}
			for {
				n := d.Schedule.Next(t)
				if n.IsZero() || n.After(now) {
					return t
				}
				t = n
			}
		}
	case d.Week > 0:
		// Step from day 1: AddDate turns 31 March − 1 month into 3 March.
		first := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
		for m := 0; m < 3; m++ {
			f := first.AddDate(0, -m, 0)
			if t := d.occurrenceIn(f.Year(), f.Month()); !t.After(now) {
				return t
			}
		}
	}
	return time.Time{}
}

// NextOccurrence is the first scheduled start after now.
func (d *Drill) NextOccurrence(now time.Time) time.Time {
	now = now.UTC()
	switch {
	case !d.Schedule.IsZero():
		return d.Schedule.Next(now)
	case d.Week > 0:
		first := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
		for m := 0; m < 3; m++ {
			f := first.AddDate(0, m, 0)
			if t := d.occurrenceIn(f.Year(), f.Month()); t.After(now) {
				return t
			}
		}
	}
	return time.Time{}
}

// occurrenceIn is the drill's slot in a month: the Week-th Weekday (or
// the last one for week 5) at At.
func (d *Drill) occurrenceIn(y int, m time.Month) time.Time {
	hh, mm := d.clock()
	wd := weekdays[d.Weekday]
	if d.Week == 5 {
		last := time.Date(y, m+1, 0, hh, mm, 0, 0, time.UTC)
		return last.AddDate(0, 0, -((int(last.Weekday()) - int(wd) + 7) % 7))
	}
	first := time.Date(y, m, 1, hh, mm, 0, 0, time.UTC)
	off := (int(wd) - int(first.Weekday()) + 7) % 7
	return first.AddDate(0, 0, off+7*(d.Week-1))
}

func (d *Drill) clock() (int, int) {
	t, err := time.Parse("15:04", d.At)
	if err != nil {
		return 10, 0
	}
	return t.Hour(), t.Minute()
}

func applyDrillDefaults(p *Plan) {
	for name, d := range p.Drills {
		if d == nil {
			continue
		}
		d.Name = name
		d.Weekday = strings.ToLower(d.Weekday)
		if d.Week > 0 && d.Weekday == "" {
			d.Weekday = "monday"
		}
		if d.Week > 0 && d.At == "" {
			d.At = "10:00"
		}
		if d.CatchUp == 0 {
			d.CatchUp = Duration(24 * time.Hour)
		}
		if d.Kind == DrillRestore && d.MaxTableShrink == "" {
			d.MaxTableShrink = DefaultMaxTableShrink
		}
		if d.Title == "" {
			d.Title = name
		}
	}
}

func (p *Plan) expandDrillEnv(expand func(path, s string) string) {
	for _, name := range p.DrillNames() {
		d := p.Drills[name]
		if d == nil {
			continue
		}
		for _, s := range sortedKeys(d.Scratch) {
			d.Scratch[s] = Secret(expand("drills."+name+".scratch."+s, d.Scratch[s].Reveal()))
		}
	}
}

func (p *Plan) validateDrills(ps *problems) {
	for _, name := range p.DrillNames() {
		base := "drills." + name
		d := p.Drills[name]
		if d == nil {
			ps.add(base, "give the drill a kind and a schedule", "empty drill")
			continue
		}
		if !validName(name) {
			ps.add(base, "use lowercase letters, digits and dashes, like backup-restore", "invalid drill name %q", name)
		}
		switch d.Kind {
		case DrillRestore:
			for i, s := range d.Stores {
				if _, ok := p.Stores[s]; !ok {
					ps.add(fmt.Sprintf("%s.stores[%d]", base, i), "stores: "+strings.Join(p.StoreNames(), ", "), "no store named %q", s)
				}
			}
			for _, s := range sortedKeys(d.Scratch) {
				if _, ok := p.Stores[s]; !ok {
					ps.add(base+".scratch."+s, "stores: "+strings.Join(p.StoreNames(), ", "), "no store named %q", s)
				}
			}
			if v, err := ParseAvailability(d.MaxTableShrink); err != nil || v <= 0 {
				ps.add(base+".max_table_shrink", `e.g. max_table_shrink: "50%"; "100%" disables the check`, "want a percentage between 0 and 100, got %q", d.MaxTableShrink)
			}
			if d.Scenario != "" {
				ps.add(base+".scenario", "scenario belongs to failover drills", "restore drills take no scenario")
			}
			if len(d.Vars) > 0 {
				ps.add(base+".vars", "vars belong to failover drills", "restore drills take no vars")
			}
		case DrillFailover:
			if d.Scenario == "" {
				ps.add(base+".scenario", "name the scenario whose runbook the drill rehearses, e.g. regional-failure", "required for failover drills")
			}
			for _, f := range []string{"stores", "scratch", "max_table_shrink"} {
				if _, set := p.positions[base+"."+f]; set {
					ps.add(base+"."+f, "restore drills take it; failover drills rehearse a scenario", "%s does not apply to failover drills", f)
				}
			}
		case "":
			ps.add(base+".kind", "kinds: restore, failover", "required")
		default:
			ps.add(base+".kind", "kinds: restore, failover", "unknown drill kind %q", d.Kind)
		}
		for i, c := range d.Checks {
			if _, ok := p.Checks[c]; !ok {
				ps.add(fmt.Sprintf("%s.checks[%d]", base, i), "checks: "+strings.Join(p.CheckNames(), ", "), "no check named %q", c)
			}
		}
		_, cronSet := p.positions[base+".schedule"]
		switch {
		case cronSet && d.Week > 0:
			ps.add(base+".week", "use schedule (cron) or week/weekday/at, not both", "week and schedule both set")
		case d.Week < 0 || d.Week > 5:
			ps.add(base+".week", "1–4: the nth weekday of the month; 5: the last one", "week must be between 1 and 5, got %d", d.Week)
		case d.Week == 0 && !cronSet:
			if _, set := p.positions[base+".weekday"]; set {
				ps.add(base+".week", "e.g. week: 2 for the second Tuesday", "weekday needs week")
			}
		}
		if d.Week > 0 {
			if _, ok := weekdays[d.Weekday]; !ok {
				ps.add(base+".weekday", "monday … sunday", "unknown weekday %q", d.Weekday)
			}
			if _, err := time.Parse("15:04", d.At); err != nil {
				ps.add(base+".at", `e.g. at: "10:00" (UTC)`, "want HH:MM, got %q", d.At)
			}
		}
	}
}
