package server

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"net/http"
	"time"

	"github.com/linkapp/linkdr/internal/ops"
)

// RefreshSeconds is how often the dashboard reloads itself.
const RefreshSeconds = 15

// Colours of the three states (and unknown), shared by bars and badges.
var stateColor = map[string]string{
	ops.StateOK: "#2e7d32", ops.StateAtRisk: "#ef8f00", ops.StateBreached: "#c62828", ops.StateUnknown: "#757575",
}

const (
	barWidth = 600.0
	// The bar shows up to 150 % of the objective; beyond, it is full.
	barSpan = 1.5
)

type storeView struct {
	ops.StoreStatus
	Color, Class          string
	BarW, ObjX, RiskX     float64
	ExposureText, RPOText string
	Percent               string
	Latest                string
	Stored                string
	Copies                []copyView
	Verified              string
	VerifyBad             bool
	WAL                   string
	Timeline              []dot
	WindowText            string
}

type copyView struct {
	ops.CopyExposure
	Color, ExposureText, Verified string
}

type dot struct {
	X     float64
	Title string
}

type repoView struct {
	ops.RepositoryStatus
	Size, Lag, Pending string
}

type failureView struct {
	When, What, Message string
}

type dashboardData struct {
	Status
	Refresh  int
	Stores   []storeView
	Repos    []repoView
	Failures []failureView
	Now      string
}

func (s *server) dashboard(w http.ResponseWriter, r *http.Request) {
	st := s.snapshot()
	data := dashboardData{Status: st, Refresh: RefreshSeconds, Now: st.Now.UTC().Format("2006-01-02 15:04:05Z")}
	now := st.Now
	if p := st.Posture; p != nil {
		for _, ss := range p.Stores {
			data.Stores = append(data.Stores, storeViewOf(ss, now))
			if ss.Error != "" {
				data.Failures = append(data.Failures, failureView{When: stampOf(p.At), What: "store " + ss.Store, Message: ss.Error})
			}
			if v := ss.Verify; v != nil && !v.OK {
				data.Failures = append(data.Failures, failureView{When: stampOf(v.At), What: "verify " + ss.Store + " in " + ss.Repository, Message: v.Error})
			}
			for _, c := range ss.Copies {
				if v := c.Verify; v != nil && !v.OK {
					data.Failures = append(data.Failures, failureView{When: stampOf(v.At), What: "verify " + ss.Store + " in " + c.Repository, Message: v.Error})
				}
			}
		}
		for _, rs := range p.Repositories {
			rv := repoView{RepositoryStatus: rs, Size: sizeText(rs.Bytes)}
			if rs.CopyFrom != "" {
				lag := time.Duration(0)
				if !rs.CopyOldest.IsZero() {
					lag = now.Sub(rs.CopyOldest)
				}
				rv.Lag = durText(lag)
				rv.Pending = fmt.Sprintf("%d objects, %s", rs.CopyPending, sizeText(rs.CopyPendingB))
			}
			data.Repos = append(data.Repos, rv)
			if !rs.Reachable {
				data.Failures = append(data.Failures, failureView{When: stampOf(p.At), What: "repository " + rs.Name, Message: rs.Error})
			}
			if rs.CopyError != "" {
				data.Failures = append(data.Failures, failureView{When: stampOf(p.At), What: "copy into " + rs.Name, Message: rs.CopyError})
			}
		}
	}
	for _, run := range st.Runs {
		if run.Result != "ok" && len(data.Failures) < 30 {
			data.Failures = append(data.Failures, failureView{When: stampOf(run.Finished), What: run.Job + " (" + run.Result + ")", Message: run.Error})
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'")
	if err := dashboardTmpl.Execute(w, data); err != nil {
		s.Log.Warn("render dashboard", "err", err)
	}
}

func storeViewOf(ss ops.StoreStatus, now time.Time) storeView {
	v := storeView{StoreStatus: ss, Color: stateColor[ss.State], RPOText: durText(ss.RPO),
		ObjX: barWidth / barSpan, RiskX: barWidth / barSpan * ops.AtRiskFraction, Stored: sizeText(ss.StoredBytes)}
	v.Class = map[string]string{ops.StateOK: "ok", ops.StateAtRisk: "risk", ops.StateBreached: "breached"}[ss.State]
	if v.Class == "" {
		v.Class = "unknown"
	}
	exposure := time.Duration(0)
	switch {
	case ss.LatestID != "":
		exposure = max(now.Sub(ss.ConsistentAt), 0)
		v.ExposureText = durText(exposure)
		v.Latest = ss.LatestID + " (" + ss.LatestMethod + ")"
		frac := float64(exposure) / float64(ss.RPO)
		v.Percent = fmt.Sprintf("%.0f%%", 100*frac)
		v.BarW = math.Min(frac/barSpan, 1) * barWidth
		// The state follows the live exposure, like the metric.
		if ss.State != ops.StateUnknown {
			v.State = ops.State(exposure, ss.RPO, true)
			v.Color = stateColor[v.State]
			v.Class = map[string]string{ops.StateOK: "ok", ops.StateAtRisk: "risk", ops.StateBreached: "breached"}[v.State]
		}
	case ss.State == ops.StateUnknown:
		v.ExposureText, v.Latest = "unknown", "unknown"
	default:
		v.ExposureText, v.Latest, v.Percent = "no backup yet", "none", "∞"
		v.BarW = barWidth
	}
	for _, c := range ss.Copies {
		cv := copyView{CopyExposure: c, Color: stateColor[c.State], ExposureText: "no backup yet"}
		if c.LatestID != "" {
			e := max(now.Sub(c.ConsistentAt), 0)
			cv.ExposureText = durText(e)
			cv.State = ops.State(e, ss.RPO, true)
			cv.Color = stateColor[cv.State]
		}
		if c.State == ops.StateUnknown {
			cv.ExposureText = "unknown: " + c.Error
		}
		if c.Verify != nil && !c.Verify.LastSuccess.IsZero() {
			cv.Verified = durText(now.Sub(c.Verify.LastSuccess)) + " ago"
		}
		v.Copies = append(v.Copies, cv)
	}
	if vr := ss.Verify; vr != nil {
		if !vr.LastSuccess.IsZero() {
			v.Verified = durText(now.Sub(vr.LastSuccess)) + " ago (" + vr.LastSuccessBackup + ")"
		}
		v.VerifyBad = !vr.OK
	}
	if !ss.WALNewest.IsZero() {
		v.WAL = durText(now.Sub(ss.WALNewest))
	}
	// The timeline spans four objectives (at least a minute, at most a
	// week) ending now.
	window := min(max(4*ss.RPO, time.Minute), 7*24*time.Hour)
	v.WindowText = durText(window)
	for _, b := range ss.Recent {
		age := now.Sub(b.ConsistentAt)
		if age < 0 || age > window {
			continue
		}
		v.Timeline = append(v.Timeline, dot{
			X:     barWidth - 6 - float64(age)/float64(window)*(barWidth-12),
			Title: fmt.Sprintf("%s (%s) consistent at %s, %s, took %s", b.ID, b.Method, stampOf(b.ConsistentAt), sizeText(b.StoredBytes), durText(b.Finished.Sub(b.Started))),
		})
	}
	return v
}

func stampOf(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// durText renders a duration for humans: 45s, 12m05s, 3h05m, 4d02h.
func durText(d time.Duration) string {
	switch {
	case d < 0:
		return "-" + durText(-d)
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
	}
}

func sizeText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func renderLogin(w io.Writer, name, msg string) {
	loginTmpl.Execute(w, map[string]string{"Name": name, "Message": msg})
}

const style = `
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#f5f6f8;color:#1d1f23}
header{background:#1d2733;color:#fff;padding:12px 24px;display:flex;gap:24px;align-items:baseline;flex-wrap:wrap}
header h1{font-size:18px;margin:0}
header .meta{color:#c8d0da;font-size:13px}
main{padding:16px 24px;max-width:1100px}
section{background:#fff;border-radius:6px;padding:12px 16px;margin:0 0 14px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
section.store{border-left:6px solid #757575}
section.ok{border-left-color:#2e7d32}section.risk{border-left-color:#ef8f00}section.breached{border-left-color:#c62828}
h2{font-size:16px;margin:0 0 6px}
.badge{display:inline-block;color:#fff;border-radius:3px;padding:1px 6px;font-size:12px;vertical-align:middle}
.kind{color:#666;font-weight:normal;font-size:13px}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:3px 8px 3px 0;border-bottom:1px solid #eee;vertical-align:top}
th{font-weight:600;color:#444}
.err{color:#c62828}.muted{color:#666}
svg text{font:11px system-ui,sans-serif;fill:#333}
`

var funcs = template.FuncMap{"stamp": stampOf, "dur": durText, "size": sizeText}

var dashboardTmpl = template.Must(template.New("dashboard").Funcs(funcs).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{{.Refresh}}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>linkdr — {{.Name}}</title>
<style>` + style + `</style></head>
<body>
<header><h1>linkdr — {{.Name}}</h1>
<span class="meta">{{.Now}} · version {{.Version}} · refreshes every {{.Refresh}}s</span>
<span class="meta" id="leader">leader: {{if .Leader.Known}}<b>{{.Leader.Leader}}</b>{{else}}<b class="err">unknown</b>{{end}} ({{.Leader.Mode}}){{if .Leader.IsLeader}} · this replica leads{{else}} · this replica: {{.Leader.Identity}}{{end}}</span>
<span class="meta">{{if .Ready}}ready{{else}}<b class="err">not ready: {{.ReadyError}}</b>{{end}}</span>
</header>
<main>
{{if not .Posture}}<section><p>Reading the repositories…</p></section>{{end}}
{{range .Stores}}
<section class="store {{.Class}}" id="store-{{.Store}}">
<h2>{{.Store}} <span class="kind">{{.Kind}} → {{.Repository}}</span> <span class="badge" style="background:{{.Color}}">{{.State}}</span></h2>
<svg viewBox="0 0 600 44" width="600" height="44" role="img" aria-label="RPO exposure of {{.Store}}: {{.ExposureText}} against an objective of {{.RPOText}}">
<title>exposure {{.ExposureText}} / objective {{.RPOText}}</title>
<rect x="0" y="4" width="600" height="18" rx="3" fill="#e9ecef"/>
<rect x="0" y="4" width="{{printf "%.1f" .BarW}}" height="18" rx="3" fill="{{.Color}}"/>
<line x1="{{printf "%.1f" .RiskX}}" y1="0" x2="{{printf "%.1f" .RiskX}}" y2="26" stroke="#ef8f00" stroke-dasharray="3,2"/>
<line x1="{{printf "%.1f" .ObjX}}" y1="0" x2="{{printf "%.1f" .ObjX}}" y2="26" stroke="#c62828" stroke-width="2"/>
<text x="{{printf "%.1f" .RiskX}}" y="38" text-anchor="middle">80%</text>
<text x="{{printf "%.1f" .ObjX}}" y="38" text-anchor="middle">RPO {{.RPOText}}</text>
<text x="4" y="38">0</text>
</svg>
<p>RPO exposure <b>{{.ExposureText}}</b>{{if .Percent}} ({{.Percent}} of {{.RPOText}}){{end}} · newest backup {{.Latest}}{{if .LatestID}}, consistent at {{stamp .ConsistentAt}}{{end}} · {{.Backups}} backups, {{.Stored}}</p>
{{range .Copies}}<p>copy in <b>{{.Repository}}</b>: <span style="color:{{.Color}}">■</span> exposure {{.ExposureText}}{{if .Verified}} · verified {{.Verified}}{{end}}</p>{{end}}
<p>verified: {{if .Verified}}{{.Verified}}{{else}}<span class="muted">never</span>{{end}}{{if .VerifyBad}} · <span class="err">last verification failed: {{.Verify.Error}}</span>{{end}}{{if .WAL}} · WAL archived {{.WAL}} ago{{end}}</p>
<svg viewBox="0 0 600 34" width="600" height="34" role="img" aria-label="backups of {{.Store}} in the last {{.WindowText}}">
<title>backups in the last {{.WindowText}}</title>
<line x1="0" y1="12" x2="600" y2="12" stroke="#bbb"/>
{{range .Timeline}}<circle cx="{{printf "%.1f" .X}}" cy="12" r="5" fill="#1565c0"><title>{{.Title}}</title></circle>{{end}}
<text x="0" y="30">−{{.WindowText}}</text><text x="600" y="30" text-anchor="end">now</text>
</svg>
{{if .Error}}<p class="err">{{.Error}}</p>{{end}}
</section>
{{end}}
<section id="failures"><h2>Failures</h2>
{{if .Failures}}<table><tr><th>when</th><th>what</th><th>message</th></tr>
{{range .Failures}}<tr><td>{{.When}}</td><td>{{.What}}</td><td class="err">{{.Message}}</td></tr>{{end}}</table>
{{else}}<p class="muted">None.</p>{{end}}
</section>
<section id="repositories"><h2>Repositories</h2>
<table><tr><th>name</th><th>URL</th><th>state</th><th>data</th><th>copy of</th><th>copy lag</th><th>pending</th></tr>
{{range .Repos}}<tr><td>{{.Name}}</td><td class="muted">{{.URL}}</td><td>{{if .Reachable}}<span style="color:#2e7d32">● reachable</span>{{else}}<span class="err">● unreachable</span>{{end}}</td><td>{{.Size}} in {{.Objects}} objects</td><td>{{.CopyFrom}}</td><td>{{.Lag}}</td><td>{{.Pending}}</td></tr>{{end}}
</table></section>
{{if .Jobs}}<section id="jobs"><h2>Schedule</h2>
<table><tr><th>job</th><th>state</th><th>next run</th></tr>
{{range .Jobs}}<tr><td>{{.Name}}</td><td>{{if .Running}}running since {{stamp .Started}}{{else}}idle{{end}}</td><td>{{stamp .Next}} <span class="muted">{{.NextReason}}</span></td></tr>{{end}}
</table></section>{{end}}
</main></body></html>
`))

var loginTmpl = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>linkdr — sign in</title>
<style>` + style + `</style></head><body>
<header><h1>linkdr — {{.Name}}</h1></header>
<main><section><h2>Sign in</h2>
{{if .Message}}<p class="err">{{.Message}}</p>{{end}}
<form method="post" action="/login"><label>Token <input type="password" name="token" autocomplete="current-password" size="40"></label>
<button type="submit">Sign in</button></form>
<p class="muted">The token is the content of serve.token_file (or LINKDR_SERVE_TOKEN).</p>
</section></main></body></html>
`))
