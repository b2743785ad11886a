package drill_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linkapp/linkdr/internal/drill"
	"github.com/linkapp/linkdr/internal/drillreport"
	"github.com/linkapp/linkdr/internal/plan"
)

// The plan's monthly schedule: week 1 service failover, week 2 backup
// restore, week 3 cross-region failover, week 4 security drill, all on
// Tuesdays at 10:00 UTC; plus a nightly restore by cron.
const monthly = `version: 1
name: link
encryption: {recipients: ["age1xr6u8t73dv7sccmfhau34tvcs4pnjkgyxucrgukk9wpp89zd2fzqn6v5nt"], identity_file: k}
repositories: {primary: {url: ./repo}}
drills:
  service-failover: {kind: failover, scenario: pod-failure, week: 1, weekday: tuesday}
  backup-restore: {kind: restore, week: 2, weekday: tuesday}
  cross-region: {kind: failover, scenario: regional-failure, week: 3, weekday: tuesday}
  security: {kind: failover, scenario: security-breach, week: 4, weekday: tuesday, at: "14:30"}
  month-end: {kind: restore, week: 5, weekday: friday}
  nightly: {kind: restore, schedule: "0 3 * * *", catch_up: 2h}
  on-demand: {kind: restore}
`

func monthlyPlan(t *testing.T) *plan.Plan {
	t.Helper()
	path := filepath.Join(t.TempDir(), "linkdr.yaml")
	if err := os.WriteFile(path, []byte(monthly), 0o644); err != nil {
		t.Fatal(err)
	}
	p, _, err := plan.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func names(ds []drill.DueDrill) string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Name+"@"+d.At.Format(time.RFC3339))
	}
	return strings.Join(out, " ")
}

func TestDue(t *testing.T) {
	p := monthlyPlan(t)
	// December 2026: Tuesdays are the 1st, 8th, 15th, 22nd, 29th; the last
	// Friday is the 25th.
	for _, tc := range []struct {
		name string
		now  string
		last map[string]string
		want string
	}{
		{"Week1AtTen", "2026-12-01T10:00:00Z", map[string]string{"nightly": "2026-12-01T03:00:00Z"},
			"service-failover@2026-12-01T10:00:00Z"},
		{"Week1BeforeTen", "2026-12-01T09:59:59Z", map[string]string{"nightly": "2026-12-01T03:00:00Z"}, ""},
		{"AlreadyRan", "2026-12-01T10:05:00Z", map[string]string{"nightly": "2026-12-01T03:00:00Z", "service-failover": "2026-12-01T10:00:01Z"}, ""},
		{"Week2", "2026-12-08T11:00:00Z", map[string]string{"nightly": "2026-12-08T03:00:00Z", "service-failover": "2026-12-01T10:00:00Z"},
			"backup-restore@2026-12-08T10:00:00Z"},
		{"Week3", "2026-12-15T10:00:00Z", map[string]string{"nightly": "2026-12-15T03:00:00Z", "backup-restore": "2026-12-08T10:00:00Z"},
			"cross-region@2026-12-15T10:00:00Z"},
		{"Week4At1430", "2026-12-22T14:30:00Z", map[string]string{"nightly": "2026-12-22T03:00:00Z", "cross-region": "2026-12-15T10:00:00Z"},
			"security@2026-12-22T14:30:00Z"},
		{"LastFriday", "2026-12-25T10:00:00Z", map[string]string{"nightly": "2026-12-25T03:00:00Z", "security": "2026-12-22T14:30:00Z"},
			"month-end@2026-12-25T10:00:00Z"},
		{"Nightly", "2026-12-02T03:00:30Z", map[string]string{"nightly": "2026-12-01T03:00:00Z", "service-failover": "2026-12-01T10:00:00Z"},
			"nightly@2026-12-02T03:00:00Z"},
		// The daemon was down: a slot missed by less than catch_up still
		// runs, one missed by more waits for the next.
		{"CatchUp", "2026-12-02T04:59:00Z", map[string]string{"nightly": "2026-12-01T03:00:00Z", "service-failover": "2026-12-01T10:00:00Z"},
			"nightly@2026-12-02T03:00:00Z"},
		{"TooLate", "2026-12-02T05:01:00Z", map[string]string{"nightly": "2026-12-01T03:00:00Z", "service-failover": "2026-12-01T10:00:00Z"}, ""},
		{"Week1NextDayStillDue", "2026-12-02T09:00:00Z", map[string]string{"nightly": "2026-12-02T03:00:00Z"},
			"service-failover@2026-12-01T10:00:00Z"},
		{"January", "2027-01-05T10:00:00Z", map[string]string{"nightly": "2027-01-05T03:00:00Z", "service-failover": "2026-12-01T10:00:00Z"},
			"service-failover@2027-01-05T10:00:00Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			last := map[string]time.Time{}
			for k, v := range tc.last {
				last[k] = ts(v)
			}
			if got := names(drill.Due(p, last, ts(tc.now))); got != tc.want {
				t.Fatalf("due at %s: %q, want %q", tc.now, got, tc.want)
			}
		})
	}
}

func TestNextOccurrence(t *testing.T) {
	p := monthlyPlan(t)
	for name, want := range map[string]string{
		"service-failover": "2027-01-05T10:00:00Z", "backup-restore": "2026-12-08T10:00:00Z",
		"security": "2026-12-22T14:30:00Z", "month-end": "2026-12-25T10:00:00Z", "nightly": "2026-12-02T03:00:00Z",
	} {
		if got := p.Drills[name].NextOccurrence(ts("2026-12-01T10:00:00Z")); !got.Equal(ts(want)) {
			t.Errorf("%s: next %s, want %s", name, got.Format(time.RFC3339), want)
		}
	}
	if p.Drills["on-demand"].Scheduled() || !p.Drills["on-demand"].NextOccurrence(time.Now()).IsZero() {
		t.Error("on-demand drill has a schedule")
	}
}

func TestLastRuns(t *testing.T) {
	got := drill.LastRuns([]*drillreport.Report{
		{Drill: "a", Started: ts("2026-12-01T10:00:00Z")}, {Drill: "a", Started: ts("2026-12-08T10:00:00Z")},
		{Drill: "", Started: ts("2026-12-09T10:00:00Z")}, {Drill: "b", Started: ts("2026-11-01T10:00:00Z")},
	})
	if len(got) != 2 || !got["a"].Equal(ts("2026-12-08T10:00:00Z")) || !got["b"].Equal(ts("2026-11-01T10:00:00Z")) {
		t.Fatalf("%v", got)
	}
}
