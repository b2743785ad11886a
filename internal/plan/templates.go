package plan

import (
	"fmt"
	"strings"
	"text/template"
	"time"
)

// Default message templates: the plan document's INCIDENT ALERT and
// RESOLVED texts, and an update and a reminder in the same voice. The
// data they see is documented in docs/incidents.md.
const (
	DefaultAlertTemplate = `🚨 INCIDENT ALERT
Service: {{.Service}}
Status: {{.Status}}
Impact: {{.Impact}}
Start Time: {{utc .Started}}
We are investigating reports of {{.Issue}}. Updates will be provided every {{human .UpdateInterval}}.`

	DefaultUpdateTemplate = `🔄 INCIDENT UPDATE
Service: {{.Service}}
Status: {{.Status}}
Impact: {{.Impact}}
{{.Message}}
Next update by {{utc .NextUpdate}}.`

	DefaultResolvedTemplate = `✅ RESOLVED
The issue affecting {{.Service}} has been resolved as of {{utc .Resolved}}.
Root cause: {{.RootCause}}
Full post-mortem will be available within {{human .PostmortemDue}}.`

	DefaultReminderTemplate = `⏰ UPDATE OVERDUE
Incident {{.ID}} ({{.Title}}): the status update promised every {{human .UpdateInterval}} was due at {{utc .NextUpdate}}.`
)

// DefaultTemplates are the templates every plan has.
func DefaultTemplates() map[string]string {
	return map[string]string{
		"alert":    DefaultAlertTemplate,
		"update":   DefaultUpdateTemplate,
		"resolved": DefaultResolvedTemplate,
		"reminder": DefaultReminderTemplate,
	}
}

// DefaultChecklist is the plan document's post-incident activities.
func DefaultChecklist() []ChecklistGroup {
	return []ChecklistGroup{
		{Title: "Immediate (< 24 hours)", Items: []string{
			"Document the timeline: record all actions taken during recovery",
			"Note any deviations from planned procedures",
			"Identify what worked well and what didn't",
			"Send the final resolution notice",
			"Schedule the post-mortem meeting",
			`Update the status page with "All Systems Operational"`,
		}},
		{Title: "Short term (< 1 week)", Items: []string{
			"Post-mortem report: root cause analysis, timeline, actions taken and effectiveness, lessons learned",
			"Update runbooks based on lessons learned",
			"Modify monitoring and alerting rules",
			"Update contact information and escalation procedures",
		}},
		{Title: "Long term (< 1 month)", Items: []string{
			"Implement additional redundancy if needed",
			"Automate manual recovery steps",
			"Enhance monitoring and observability",
			"Conduct team training on new procedures and update DR training materials",
			"Schedule additional practice drills",
		}},
	}
}

// TemplateFuncs are the functions message templates may call.
var TemplateFuncs = template.FuncMap{
	// utc formats a time as "2026-11-26 06:15 UTC"; the zero time as "-".
	"utc": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	// human spells a duration out: "30 minutes", "48 hours", "1h30m".
	"human": HumanDuration,
	"upper": strings.ToUpper,
	"lower": strings.ToLower,
	// default returns def when v is empty: {{default "unknown" .RootCause}}.
	"default": func(def string, v any) string {
		if s := fmt.Sprint(v); v != nil && strings.TrimSpace(s) != "" {
			return s
		}
		return def
	},
}

// HumanDuration spells a whole number of minutes, hours or days out.
func HumanDuration(d time.Duration) string {
	unit := func(n int64, s string) string {
		if n == 1 {
			return "1 " + s
		}
		return fmt.Sprintf("%d %ss", n, s)
	}
	switch {
	case d <= 0:
		return "0 minutes"
	case d%(24*time.Hour) == 0 && d >= 72*time.Hour:
		return unit(int64(d/(24*time.Hour)), "day")
	case d%time.Hour == 0:
		return unit(int64(d/time.Hour), "hour")
	case d%time.Minute == 0 && d < 2*time.Hour:
		return unit(int64(d/time.Minute), "minute")
	default:
		return Duration(d).String()
	}
}
