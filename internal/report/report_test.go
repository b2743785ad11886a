package report_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linkapp/linkdr/internal/check"
	"github.com/linkapp/linkdr/internal/drillreport"
	"github.com/linkapp/linkdr/internal/ops"
	"github.com/linkapp/linkdr/internal/report"
	"github.com/linkapp/linkdr/internal/testenv"
)

var t0 = time.Date(2026, 12, 8, 10, 0, 0, 0, time.UTC)

func f(v float64) *float64 { return &v }

// history is three monthly drills of two stores and one failover
// rehearsal; the last restore drill of orders-db failed.
func history() []*drillreport.Report {
	var out []*drillreport.Report
	for i := range 3 {
		at := t0.AddDate(0, i, 0)
		r := &drillreport.Report{ID: at.Format("20060102T150405Z") + "-0001", Drill: "backup-restore", Kind: "restore", Started: at,
			Finished: at.Add(5 * time.Minute), OK: i < 2,
			Stores: []drillreport.Store{
				{Store: "users-db", OK: true, RTOSeconds: 120 + 30*float64(i), RPOSeconds: 900 + 600*float64(i), CanaryRPOSeconds: f(1500)},
				{Store: "orders-db", OK: i < 2, RTOSeconds: 300, RPOSeconds: 1800 + 1200*float64(i), Phase: "history", Error: "public.orders shrank 100%"},
			}}
		if !r.OK {
			r.Error = "orders-db: history: public.orders shrank 100%"
		}
		out = append(out, r)
	}
	at := t0.AddDate(0, 2, 7)
	out = append(out, &drillreport.Report{ID: at.Format("20060102T150405Z") + "-0002", Drill: "cross-region", Kind: "failover",
		Started: at, Finished: at.Add(2 * time.Hour), OK: true, Scenario: &drillreport.Scenario{ID: "regional-failure", RTOSeconds: 7200, RTOObjectiveSeconds: 14400}})
	return out
}

func posture() *report.Posture {
	now := t0.AddDate(0, 2, 10)
	st := []ops.StoreStatus{
		{Store: "users-db", Kind: "postgres", State: ops.StateOK, Backups: 40, LatestID: "20270217T093000Z-aa01", Exposure: 30 * time.Minute, RPO: time.Hour},
		{Store: "orders-db", Kind: "postgres", State: ops.StateBreached, Backups: 12, LatestID: "20270216T093000Z-bb02", Exposure: 26 * time.Hour, RPO: time.Hour},
	}
	checks := check.Results{
		{Check: "api-health", Type: "http", Status: check.StatusPass, OK: true, Required: true, Message: "status=200"},
		{Check: "error-rate", Type: "prometheus", Status: check.StatusFail, Required: true, Message: "value < 0.01 is false: value=0.042"},
	}
	return report.Build("link", drillreport.Objectives{RTOSeconds: 4 * 3600, RPOSeconds: 3600}, st, history(), checks, now)
}

func TestPostureData(t *testing.T) {
	p := posture()
	if p.Failed != 1 || len(p.Drills) != 4 || len(p.Stores) != 2 {
		t.Fatalf("%+v", p)
	}
	users := p.Stores[0]
	if users.LastDrill == nil || users.LastDrill.RTOSeconds != 180 || users.LastDrill.RPOSeconds != 2100 || !users.LastDrill.OK {
		t.Fatalf("users-db last drill: %+v", users.LastDrill)
	}
	if o := p.Stores[1].LastDrill; o == nil || o.OK || o.Error == "" {
		t.Fatalf("orders-db last drill: %+v", o)
	}
	if pts := p.Drills[3].Points; len(pts) != 1 || pts[0].Name != "scenario regional-failure" || pts[0].RTOSeconds != 7200 {
		t.Fatalf("scenario points: %+v", pts)
	}
	b, err := json.Marshal(p)
	if err != nil || !strings.Contains(string(b), `"exposure_seconds":93600`) {
		t.Fatalf("json: %s %v", b, err)
	}
}

func TestPostureMarkdown(t *testing.T) {
	var md bytes.Buffer
	if err := posture().Doc().Markdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"## Objectives vs measured", "| users-db | 4h00m | 3m00s | 1h00m | 35m00s | 25m00s | MET (20270208T100000Z-0001) |",
		"| orders-db | 4h00m | 5m00s | 1h00m | 1h10m | - | MISSED (20270208T100000Z-0001) |",
		"## Backup freshness", "| orders-db | postgres | 20270216T093000Z-bb02 | 26h00m | 1h00m | BREACHED |",
		"## Drill trend", "| FAILED |", "## Failed checks", "| error-rate | prometheus | required | FAIL | value < 0.01 is false: value=0.042 |",
		"*Chart: Measured RTO per store and scenario",
	} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("missing %q in:\n%s", want, md.String())
		}
	}
}

func TestPostureHTMLInChromium(t *testing.T) {
	var html bytes.Buffer
	if err := posture().Doc().HTML(&html); err != nil {
		t.Fatal(err)
	}
	s := html.String()
	for _, bad := range []string{"<script", "src=", "<link", "url(", "@import"} {
		if strings.Contains(s, bad) {
			t.Fatalf("the page is not self-contained: it has %q", bad)
		}
	}
	// Three inline charts: RTO and RPO over time, freshness bars.
	if n := strings.Count(s, "<svg "); n != 3 {
		t.Fatalf("%d charts, want 3", n)
	}
	file := filepath.Join(t.TempDir(), "posture.html")
	if err := os.WriteFile(file, html.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	page := testenv.Chromium(t, file, 1200, 2200)
	if len(page.Problems) > 0 {
		t.Fatalf("chromium reported problems:\n%s", strings.Join(page.Problems, "\n"))
	}
	for _, id := range []string{"summary", "objectives", "rto-trend", "rpo-trend", "freshness", "drills", "checks"} {
		if !strings.Contains(page.DOM, `<section id="`+id+`">`) {
			t.Errorf("section %s missing from the DOM", id)
		}
	}
	// The failed drill's point is red; the objective line is drawn.
	if !strings.Contains(page.DOM, `fill="#cf222e"><title>orders-db`) || !strings.Contains(page.DOM, "objective 4h00m") {
		t.Error("chart details missing from the DOM")
	}
	testenv.CheckScreenshot(t, page, 1200, 2200)
}

func TestDrillDoc(t *testing.T) {
	r := history()[2]
	r.Stores[1].Integrity = drillreport.Integrity{OK: true, Summary: "2 tables, 4000 rows: counts and checksums match the manifest",
		Items: []drillreport.IntegrityItem{{Name: "shop.public.orders", ExpectedRows: 0, Rows: 0, OK: true}}}
	r.Stores[1].History = []drillreport.HistoryFinding{{Name: "shop.public.orders", PreviousBackup: "X", PreviousRows: 1000, Rows: 0, Shrink: 1, Problem: "shrank 100%"}}
	r.Stores[0].Canaries = []drillreport.Canary{{ID: "c1", WrittenAt: t0, Survived: true, Expected: true}, {ID: "c2", WrittenAt: t0.Add(time.Hour)}}
	r.Stores[0].Cleanup = drillreport.Cleanup{OK: true, Removed: []string{"database linkdr_drill_x"}}
	var md, html bytes.Buffer
	d := report.DrillDoc(r)
	if err := d.Markdown(&md); err != nil {
		t.Fatal(err)
	}
	if err := d.HTML(&html); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"**FAILED**: orders-db: history", "| shop.public.orders | 1000 (X) | 0 | 100% | FAILED shrank 100% |",
		"| c1 | - | 2026-12-08 10:00:00Z | yes | OK survived |", "| c2 | - | 2026-12-08 11:00:00Z | no (written after the backup) | LOST |",
		"Removed: database linkdr_drill_x."} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("missing %q in:\n%s", want, md.String())
		}
	}
	if !strings.Contains(html.String(), `<td class="bad">LOST</td>`) {
		t.Error("lost canary not marked in HTML")
	}
}
