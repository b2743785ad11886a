package plandoc_test

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/linkapp/linkdr/internal/drillreport"
	"github.com/linkapp/linkdr/internal/plan"
	"github.com/linkapp/linkdr/internal/plandoc"
	"github.com/linkapp/linkdr/internal/testenv"
)

// sections are the headings of link-dr-plan.md (left) and where the
// rendered plan covers each (right: a heading of the rendered document).
var sections = map[string]string{
	"Overview": "Overview", "Recovery Objectives": "Recovery Objectives", "Architecture Overview": "Architecture Overview",
	"Primary Infrastructure": "Primary Infrastructure", "Disaster Recovery Infrastructure": "Disaster Recovery Infrastructure",
	"Failure Scenarios and Response": "Failure Scenarios and Response", "Communication Plan": "Communication Plan",
	"Stakeholder Notification": "Stakeholder Notification", "Communication Templates": "Communication Templates",
	"Testing and Validation": "Testing and Validation", "Monthly DR Testing Schedule": "DR Testing Schedule",
	"Test Procedures": "Test Procedures", "Recovery Validation Checklist": "Recovery Validation Checklist",
	"Database Validation": "Database Validation", "Application Validation": "Application Validation",
	"Infrastructure Validation": "Infrastructure Validation", "Performance Validation": "Performance Validation",
	"Post-Incident Activities": "Post-Incident Activities", "Immediate (< 24 hours)": "Immediate (< 24 hours)",
	"Short Term (< 1 week)": "Short Term (< 1 week)", "Long Term (< 1 month)": "Long Term (< 30 days)",
	"Emergency Contacts": "Emergency Contacts", "On-Call Rotation": "On-Call Rotation", "External Vendors": "External Vendors",
	"Key Personnel": "Key Personnel", "Appendices": "Appendices", "A. Network Diagrams": "A. Network Diagrams",
	"B. Backup Schedules": "Backup Schedules and Retention", "C. Monitoring Dashboards": "Monitoring Dashboards",
	"D. Security Procedures": "Security Procedures", "E. Vendor Escalation Matrix": "Vendor Escalation Matrix",
	// The six scenarios, from the plan's scenarios: section.
	"Single Pod/Container Failure": "1. Single pod/container failure", "Node/EC2 Instance Failure": "2. Node/EC2 instance failure",
	"Availability Zone Failure": "3. Availability zone failure", "Regional Failure": "4. Regional failure (us-west-2 lost, fail over to us-east-1)",
	"Database Corruption/Data Loss": "5. Database corruption or data loss", "Security Breach/Ransomware": "6. Security breach or ransomware",
}

// content must appear in the rendered plan: the plan document's facts.
var content = []string{
	"Phase 1: Assessment (15 minutes)", "Phase 2: Database recovery (90 minutes)", "Phase 4: Traffic cutover (45 minutes)",
	"4 hours maximum", "1 hour maximum", "99.9% uptime", "7 years", "us-west-2 (Oregon)", "us-east-1 (N. Virginia)",
	"EKS cluster with 3 availability zones", "Route53 with health checks and failover", "Slack #incidents", "(< 15 minutes)",
	"(< 2 hours)", "INCIDENT ALERT", "RESOLVED", "Updates will be provided every 30 minutes", "**Week 1**", "**Week 2**",
	"**Week 3**", "**Week 4**", "Single service failover test", "Database backup and restore test",
	"Cross-region failover simulation", "Security incident response drill", "All databases are accessible and responsive",
	"Error rates are below 1%", "Response times are acceptable (< 500ms for API calls)", "Push notifications are delivered (manual)",
	"`error-rate`: value < 0.01", "AWS Support", "Incident Commander", "Escalation", "root cause analysis",
	"Last updated", "Next review date", "DevOps Team", "CTO", "users-db", "measured RTO",
}

func examplePlan(t *testing.T) *plan.Plan {
	t.Helper()
	p, _, err := plan.Load("../../examples/link/linkdr.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func reports() []*drillreport.Report {
	start := time.Date(2026, 12, 8, 10, 0, 0, 0, time.UTC)
	return []*drillreport.Report{{ID: "20261208T100000Z-ab12", Drill: "backup-restore", Kind: "restore", OK: true,
		Started: start, Finished: start.Add(3 * time.Minute),
		Stores: []drillreport.Store{{Store: "users-db", OK: true, RTOSeconds: 172.5, RPOSeconds: 1260}}}}
}

func TestExampleCoversThePlanDocument(t *testing.T) {
	p := examplePlan(t)
	doc := plandoc.Build(plandoc.Input{Plan: p, Reports: reports(), Updated: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Now: time.Now()})
	var md bytes.Buffer
	if err := doc.Markdown(&md); err != nil {
		t.Fatal(err)
	}
	out := md.String()
	headings := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^#{1,4} (.*)$`).FindAllStringSubmatch(out, -1) {
		headings[strings.TrimSpace(m[1])] = true
	}
	// Every section of the source document, where it is available beside
	// the repository (CI lays shared/ next to the clone).
	if src, err := os.ReadFile("../../../shared/link-dr-plan.md"); err == nil {
		for _, m := range regexp.MustCompile(`(?m)^#{2,3} (?:\d+\. )?(.*)$`).FindAllStringSubmatch(string(src), -1) {
			h := strings.TrimSpace(m[1])
			if _, known := sections[h]; !known {
				t.Errorf("link-dr-plan.md has section %q that this test does not map", h)
			}
		}
	}
	for src, rendered := range sections {
		if !headings[rendered] && !strings.Contains(out, "# "+rendered) && !hasSuffixHeading(headings, rendered) {
			t.Errorf("section %q of the plan (rendered as %q) is missing", src, rendered)
		}
	}
	for _, c := range content {
		if !strings.Contains(out, c) {
			t.Errorf("rendered plan lacks %q", c)
		}
	}
	if !strings.Contains(out, "| users-db | 2m52s | 4 hours | 21m00s | 1 hour | OK 2026-12-08 | 20261208T100000Z-ab12 |") {
		t.Errorf("measured RTO/RPO row missing:\n%s", out)
	}
	if t.Failed() {
		t.Log(out)
	}
}

func hasSuffixHeading(hs map[string]bool, s string) bool {
	for h := range hs {
		if strings.HasSuffix(h, s) {
			return true
		}
	}
	return false
}

func TestScenarios(t *testing.T) {
	p := examplePlan(t)
	doc := plandoc.Build(plandoc.Input{Plan: p, Now: time.Now(), Updated: time.Now(), Scenarios: []plandoc.Scenario{{
		ID: "regional-failure", Title: "Regional Failure", RTO: "4 hours", RPO: "1 hour",
		Detection: []string{"Complete loss of connectivity to us-west-2"},
		Phases: []plandoc.Phase{{Name: "Assessment", Budget: "15 minutes", Steps: []plandoc.Step{
			{ID: "confirm", Action: "check", Text: "Confirm Regional Outage", Timeout: "5m", Code: "curl -s https://status.aws.amazon.com/"}}}},
	}, {ID: "pod-failure", Title: "Single Pod/Container Failure", RTO: "5 minutes", RPO: "0"}}})
	var md bytes.Buffer
	doc.Markdown(&md)
	for _, want := range []string{"### 1. Regional Failure", "**RTO**: 4 hours | **RPO**: 1 hour", "#### Phase 1: Assessment (15 minutes)",
		"1. **Confirm Regional Outage** — `check` (timeout 5m)", "curl -s https://status.aws.amazon.com/", "**Manual Steps**: None required"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("missing %q in:\n%s", want, md.String())
		}
	}
}

// TestHTMLInChromium renders the Link plan as HTML and opens it in
// headless Chromium: it must load without errors, reference nothing
// outside itself, and show every section.
func TestHTMLInChromium(t *testing.T) {
	p := examplePlan(t)
	doc := plandoc.Build(plandoc.Input{Plan: p, Reports: reports(), Updated: time.Now(), Now: time.Now()})
	var html bytes.Buffer
	if err := doc.HTML(&html); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"<script", "src=", "<link", "url(", "@import"} {
		if strings.Contains(html.String(), bad) {
			t.Fatalf("the page is not self-contained: it has %q", bad)
		}
	}
	file := filepath.Join(t.TempDir(), "plan.html")
	if err := os.WriteFile(file, html.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	page := testenv.Chromium(t, file, 1280, 2400)
	if len(page.Problems) > 0 {
		t.Fatalf("chromium reported problems:\n%s", strings.Join(page.Problems, "\n"))
	}
	for _, id := range []string{"overview", "objectives", "architecture", "scenarios", "communication", "testing",
		"validation", "measured", "post-incident", "contacts", "appendices", "document"} {
		if !strings.Contains(page.DOM, `<section id="`+id+`">`) {
			t.Errorf("section %s missing from the DOM", id)
		}
	}
	if !strings.Contains(page.DOM, "<title>Link App Disaster Recovery Plan</title>") {
		t.Error("title missing")
	}
	testenv.CheckScreenshot(t, page, 1280, 2400)
}
