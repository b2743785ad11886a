// Package retention decides which backups to keep. It is a pure function
// of the backups, the policy and the current time — no I/O — so every rule
// is tested against golden files (testdata/*.golden, refreshed with
// `go test ./internal/retention -update`).
//
// The policy is grandfather-father-son, as restic's `forget`: keep the
// newest N backups, and the newest backup in each of the last N hours,
// days, ISO weeks, months and years that have one. Two rules override every
// policy: the newest backup of a series is never removed, and neither is a
// backup whose retain_until lies in the future.
package retention

import (
	"fmt"
	"sort"
	"time"
)

// Policy counts how many of each kind of backup to keep. Zero disables a
// rule.
type Policy struct {
	Last, Hourly, Daily, Weekly, Monthly, Yearly int
}

// Item is what the policy needs to know of one backup.
type Item struct {
	ID string
	// Time is when the data was consistent; buckets are taken in UTC.
	Time time.Time
	// RetainUntil forbids removal before it passes (zero: no hold).
	RetainUntil time.Time
	// Hold names what sets RetainUntil, for the reason ("object lock
	// (compliance)"); empty means retain_until.
	Hold string
}

// Decision is the fate of one backup and why.
type Decision struct {
	ID      string   `json:"id"`
	Time    string   `json:"time"`
	Keep    bool     `json:"keep"`
	Reasons []string `json:"reasons,omitempty"`
}

type rule struct {
	name  string
	count int
	key   func(time.Time) string
}

// Apply decides for every item of one series (one store and method).
// Decisions come back newest first.
func Apply(items []Item, p Policy, now time.Time) []Decision {
	sorted := append([]Item(nil), items...)
	sort.SliceStable(sorted, func(i, j int) bool {
		if !sorted[i].Time.Equal(sorted[j].Time) {
			return sorted[i].Time.After(sorted[j].Time)
		}
		return sorted[i].ID > sorted[j].ID
	})
	rules := []rule{
		{"hourly", p.Hourly, func(t time.Time) string { return t.Format("2006-01-02T15") }},
		{"daily", p.Daily, func(t time.Time) string { return t.Format("2006-01-02") }},
		{"weekly", p.Weekly, func(t time.Time) string { y, w := t.ISOWeek(); return fmt.Sprintf("%d-W%02d", y, w) }},
		{"monthly", p.Monthly, func(t time.Time) string { return t.Format("2006-01") }},
		{"yearly", p.Yearly, func(t time.Time) string { return t.Format("2006") }},
	}
	seen := make([]string, len(rules))
	left := make([]int, len(rules))
	for i, r := range rules {
		left[i] = r.count
	}
	out := make([]Decision, 0, len(sorted))
	for i, it := range sorted {
		t := it.Time.UTC()
		d := Decision{ID: it.ID, Time: t.Format(time.RFC3339)}
		if i == 0 {
			d.Reasons = append(d.Reasons, "newest")
		}
		if i < p.Last {
			d.Reasons = append(d.Reasons, fmt.Sprintf("last %d", p.Last))
		}
		for j, r := range rules {
			k := r.key(t)
			if left[j] > 0 && k != seen[j] {
				d.Reasons = append(d.Reasons, fmt.Sprintf("%s %s", r.name, k))
				left[j]--
			}
			seen[j] = k
		}
		if it.RetainUntil.After(now) {
			hold := it.Hold
			if hold == "" {
				hold = "retain_until"
			} else {
				hold += " until"
			}
			d.Reasons = append(d.Reasons, hold+" "+it.RetainUntil.UTC().Format(time.RFC3339))
		}
		d.Keep = len(d.Reasons) > 0
		out = append(out, d)
	}
	return out
}
