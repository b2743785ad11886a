package render

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// Bar is one bar of a bar chart, with the limit it is judged against.
type Bar struct {
	Label string
	Value float64
	Limit float64
	// Text is printed after the bar (e.g. "12m of 1h").
	Text string
}

// Bars draws horizontal bars scaled to the largest value or limit; a bar
// is green below 80 % of its limit, amber up to it, red beyond, and the
// limit is a dark tick.
func Bars(bars []Bar) string {
	if len(bars) == 0 {
		return ""
	}
	const w, left, right, rowH = 720.0, 150.0, 170.0, 28.0
	scale := 0.0
	for _, b := range bars {
		scale = math.Max(scale, math.Max(b.Value, b.Limit))
	}
	if scale <= 0 {
		scale = 1
	}
	plot := w - left - right
	h := rowH*float64(len(bars)) + 10
	var s strings.Builder
	fmt.Fprintf(&s, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" role="img">`, w, h, w, h)
	for i, b := range bars {
		y := 5 + rowH*float64(i)
		bw := plot * math.Min(b.Value, scale) / scale
		color := "#1a7f37"
		if b.Limit > 0 && b.Value > b.Limit {
			color = "#cf222e"
		} else if b.Limit > 0 && b.Value > 0.8*b.Limit {
			color = "#bf8700"
		}
		fmt.Fprintf(&s, `<text x="%.0f" y="%.1f" text-anchor="end">%s</text>`, left-8, y+16, esc(b.Label))
		fmt.Fprintf(&s, `<rect x="%.0f" y="%.1f" width="%.1f" height="18" fill="#f6f8fa" stroke="#d0d7de"/>`, left, y+3, plot)
		fmt.Fprintf(&s, `<rect x="%.0f" y="%.1f" width="%.1f" height="18" fill="%s"/>`, left, y+3, bw, color)
		if b.Limit > 0 {
			lx := left + plot*b.Limit/scale
			fmt.Fprintf(&s, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#1f2328" stroke-width="2"/>`, lx, y, lx, y+24)
		}
		fmt.Fprintf(&s, `<text x="%.0f" y="%.1f">%s</text>`, left+plot+8, y+16, esc(b.Text))
	}
	s.WriteString(`</svg>`)
	return s.String()
}

// Point is one measurement in time.
type Point struct {
	T  time.Time
	V  float64
	OK bool
}

// Series is a named line of points.
type Series struct {
	Name   string
	Points []Point
}

var palette = []string{"#0969da", "#8250df", "#1b7c83", "#bc4c00", "#4d2d00", "#6e7781"}

// Trend draws series over time against an objective (dashed red line);
// points of failed drills are red circles. unit formats the y axis.
func Trend(series []Series, objective float64, unit func(float64) string) string {
	var pts []Point
	for _, se := range series {
		pts = append(pts, se.Points...)
	}
	if len(pts) == 0 {
		return ""
	}
	sort.Slice(pts, func(i, j int) bool { return pts[i].T.Before(pts[j].T) })
	t0, t1 := pts[0].T, pts[len(pts)-1].T
	if !t1.After(t0) {
		t0, t1 = t0.Add(-time.Hour), t1.Add(time.Hour)
	}
	ymax := objective
	for _, p := range pts {
		ymax = math.Max(ymax, p.V)
	}
	if ymax <= 0 {
		ymax = 1
	}
	ymax *= 1.1
	const w, h, l, r, top, bottom = 720.0, 260.0, 70.0, 150.0, 10.0, 40.0
	pw, ph := w-l-r, h-top-bottom
	x := func(t time.Time) float64 { return l + pw*float64(t.Sub(t0))/float64(t1.Sub(t0)) }
	y := func(v float64) float64 { return top + ph*(1-v/ymax) }
	var s strings.Builder
	fmt.Fprintf(&s, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" role="img">`, w, h, w, h)
	fmt.Fprintf(&s, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="#fff" stroke="#d0d7de"/>`, l, top, pw, ph)
	for i := 0; i <= 4; i++ {
		v := ymax * float64(i) / 4
		fmt.Fprintf(&s, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#eaeef2"/>`, l, y(v), l+pw, y(v))
		fmt.Fprintf(&s, `<text x="%.0f" y="%.1f" text-anchor="end">%s</text>`, l-6, y(v)+4, esc(unit(v)))
	}
	fmt.Fprintf(&s, `<text x="%.0f" y="%.0f">%s</text>`, l, h-12, esc(t0.UTC().Format("2006-01-02 15:04")))
	fmt.Fprintf(&s, `<text x="%.0f" y="%.0f" text-anchor="end">%s</text>`, l+pw, h-12, esc(t1.UTC().Format("2006-01-02 15:04")))
	if objective > 0 {
		fmt.Fprintf(&s, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#cf222e" stroke-dasharray="6 4" stroke-width="1.5"/>`, l, y(objective), l+pw, y(objective))
		fmt.Fprintf(&s, `<text x="%.0f" y="%.1f" fill="#cf222e">objective %s</text>`, l+pw+6, y(objective)+4, esc(unit(objective)))
	}
	for i, se := range series {
		c := palette[i%len(palette)]
		ps := append([]Point(nil), se.Points...)
		sort.Slice(ps, func(i, j int) bool { return ps[i].T.Before(ps[j].T) })
		var path []string
		for _, p := range ps {
			path = append(path, fmt.Sprintf("%.1f,%.1f", x(p.T), y(p.V)))
		}
		if len(path) > 1 {
			fmt.Fprintf(&s, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`, c, strings.Join(path, " "))
		}
		for _, p := range ps {
			fill := c
			if !p.OK {
				fill = "#cf222e"
			}
			fmt.Fprintf(&s, `<circle cx="%.1f" cy="%.1f" r="4" fill="%s"><title>%s %s: %s</title></circle>`,
				x(p.T), y(p.V), fill, esc(se.Name), esc(p.T.UTC().Format(time.RFC3339)), esc(unit(p.V)))
		}
		fmt.Fprintf(&s, `<rect x="%.0f" y="%.0f" width="10" height="10" fill="%s"/><text x="%.0f" y="%.0f">%s</text>`,
			l+pw+6, top+20+18*float64(i), c, l+pw+20, top+29+18*float64(i), esc(se.Name))
	}
	s.WriteString(`</svg>`)
	return s.String()
}

// Seconds formats a number of seconds for humans: 850ms, 42s, 12m, 3h05m.
func Seconds(v float64) string {
	d := time.Duration(v * float64(time.Second))
	switch {
	case d == 0:
		return "0"
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
}
