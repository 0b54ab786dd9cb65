// Package demo plays Rampart's showcase, `rampart demo`: a server, a simulated fleet and the
// whole vulnerability loop on one machine, ending in a timeline, a coverage-over-time chart (SVG)
// and a JSON record of the run. Only the CLI's demo verb imports it.
package demo

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
	"time"
)

// Point is the share of the fleet on the fix at one moment.
type Point struct {
	At    time.Time `json:"at"`
	Share float64   `json:"share"` // 0..1
}

// Mark is a moment worth labelling on the chart (the report, the revocation, a coverage level).
type Mark struct {
	At    time.Time `json:"at"`
	Label string    `json:"label"`
}

// Chart is a coverage-over-time line chart.
type Chart struct {
	Title  string
	Points []Point
	Marks  []Mark
}

const (
	chartW, chartH         = 900, 420
	padL, padR, padT, padB = 70, 30, 50, 60
)

// WriteSVG draws the chart as a standalone SVG document that any browser opens.
func (c Chart) WriteSVG(w io.Writer) error {
	if len(c.Points) == 0 {
		return fmt.Errorf("demo.Chart: no points to draw")
	}
	start, end := c.Points[0].At, c.Points[len(c.Points)-1].At
	for _, m := range c.Marks {
		if m.At.Before(start) {
			start = m.At
		}
		if m.At.After(end) {
			end = m.At
		}
	}
	span := end.Sub(start)
	if span <= 0 {
		span = time.Second
	}
	plotW, plotH := float64(chartW-padL-padR), float64(chartH-padT-padB)
	x := func(t time.Time) float64 { return padL + plotW*float64(t.Sub(start))/float64(span) }
	y := func(share float64) float64 { return padT + plotH*(1-math.Max(0, math.Min(1, share))) }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", chartW, chartH, chartW, chartH)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="28" font-size="16" font-weight="bold">%s</text>`+"\n", padL, html.EscapeString(c.Title))
	// Grid and axes: 0, 25, 50, 75, 100 %.
	for _, s := range []float64{0, 0.25, 0.5, 0.75, 1} {
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", padL, y(s), chartW-padR, y(s))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%d %%</text>`+"\n", padL-8, y(s)+4, int(s*100))
	}
	for i := 0; i <= 5; i++ {
		t := start.Add(time.Duration(float64(span) * float64(i) / 5))
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x(t), chartH-padB+18, formatOffset(t.Sub(start)))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">time since the report</text>`+"\n", padL+int(plotW/2), chartH-padB+40)
	// Marks.
	for i, m := range c.Marks {
		ly := padT + 14 + float64(i%4)*14
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#c33" stroke-dasharray="4 3"/>`+"\n", x(m.At), padT, x(m.At), chartH-padB)
		// Labels near the right edge go to the left of their line, so that they stay inside.
		if lx := x(m.At); lx > chartW-padR-70 {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="#c33" text-anchor="end">%s</text>`+"\n", lx-4, ly, html.EscapeString(m.Label))
		} else {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="#c33">%s</text>`+"\n", lx+4, ly, html.EscapeString(m.Label))
		}
	}
	// The coverage line, as steps: the share holds until the next reading.
	var path strings.Builder
	for i, p := range c.Points {
		if i == 0 {
			fmt.Fprintf(&path, "M%.1f %.1f", x(p.At), y(p.Share))
			continue
		}
		fmt.Fprintf(&path, " H%.1f V%.1f", x(p.At), y(p.Share))
	}
	fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="#1565c0" stroke-width="2.5"/>`+"\n", path.String())
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>`+"\n", padL, chartH-padB, chartW-padR, chartH-padB)
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>`+"\n", padL, padT, padL, chartH-padB)
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// formatOffset prints a duration the way the timeline does: 1.2s, 3m05s, 2h10m.
func formatOffset(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}
