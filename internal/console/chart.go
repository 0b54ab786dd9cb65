package console

import (
	"fmt"
	"html/template"
	"math"
	"strings"
	"time"

	"github.com/rampartsec/rampart/client"
)

// chartMark labels a moment on a coverage chart.
type chartMark struct {
	At    time.Time
	Label string
}

const (
	chartW, chartH         = 900, 380
	padL, padR, padT, padB = 60, 30, 30, 50
)

// coverageSVG draws a release's coverage over time as an SVG the page holds inline: a step
// line of the share covered, a 0-100 % axis, the time since the release's first deployment
// and its milestones as marks. Every label is escaped; nothing in it runs or loads.
func coverageSVG(title string, series client.CoverageSeries, marks []chartMark, now time.Time) template.HTML {
	pts := series.Points
	if len(pts) == 0 {
		return ""
	}
	start, end := series.Since, now
	if end.Before(pts[len(pts)-1].At) {
		end = pts[len(pts)-1].At
	}
	span := end.Sub(start)
	if span <= 0 {
		span = time.Second
	}
	plotW, plotH := float64(chartW-padL-padR), float64(chartH-padT-padB)
	x := func(t time.Time) float64 { return padL + plotW*float64(t.Sub(start))/float64(span) }
	y := func(share float64) float64 { return padT + plotH*(1-math.Max(0, math.Min(1, share))) }
	share := func(p client.CoveragePoint) float64 {
		if p.Devices == 0 {
			return 0
		}
		return float64(p.Covered) / float64(p.Devices)
	}
	esc := template.HTMLEscapeString
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-labelledby="chart-title chart-desc" font-family="sans-serif" font-size="12">`,
		chartW, chartH, chartW, chartH)
	last := pts[len(pts)-1]
	fmt.Fprintf(&b, `<title id="chart-title">%s</title><desc id="chart-desc">%d of %d devices (%.1f %%) run it or a newer release now.</desc>`,
		esc(title), last.Covered, last.Devices, 100*share(last))
	b.WriteString(`<rect width="100%" height="100%" fill="white"/>`)
	for _, s := range []float64{0, 0.25, 0.5, 0.75, 1} {
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`, padL, y(s), chartW-padR, y(s))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%d %%</text>`, padL-8, y(s)+4, int(s*100))
	}
	for i := 0; i <= 5; i++ {
		t := start.Add(time.Duration(float64(span) * float64(i) / 5))
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`, x(t), chartH-padB+18, esc(duration(t.Sub(start))))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">time since the first deployment</text>`, padL+int(plotW/2), chartH-padB+38)
	for i, m := range marks {
		ly := float64(padT+14) + float64(i%4)*14
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#c33" stroke-dasharray="4 3"/>`, x(m.At), padT, x(m.At), chartH-padB)
		anchor, lx := "start", x(m.At)+4
		if x(m.At) > chartW-padR-70 {
			anchor, lx = "end", x(m.At)-4
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="#c33" text-anchor="%s">%s</text>`, lx, ly, anchor, esc(m.Label))
	}
	var path strings.Builder
	for i, p := range pts {
		if i == 0 {
			fmt.Fprintf(&path, "M%.1f %.1f", x(p.At), y(share(p)))
			continue
		}
		fmt.Fprintf(&path, " H%.1f V%.1f", x(p.At), y(share(p)))
	}
	fmt.Fprintf(&path, " H%.1f", x(end))
	fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="#1565c0" stroke-width="2.5"/>`, path.String())
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>`, padL, chartH-padB, chartW-padR, chartH-padB)
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>`, padL, padT, padL, chartH-padB)
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // built here from numbers and escaped labels only
}
