package demo

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"
	"time"
)

func TestChartIsValidSVG(t *testing.T) {
	t0 := time.Unix(1000, 0)
	c := Chart{Title: "Coverage of 1.0.1 <fix>", Points: []Point{{t0, 0}, {t0.Add(2 * time.Second), 0.5}, {t0.Add(5 * time.Second), 1}},
		Marks: []Mark{{t0, "report"}, {t0.Add(time.Second), "1.0.0 revoked"}, {t0.Add(5 * time.Second), "100 %"}}}
	var buf bytes.Buffer
	if err := c.WriteSVG(&buf); err != nil {
		t.Fatal(err)
	}
	// It parses as XML and holds the line and every label, escaped.
	dec := xml.NewDecoder(bytes.NewReader(buf.Bytes()))
	for {
		_, err := dec.Token()
		if err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("not well-formed XML: %v\n%s", err, buf.String())
			}
			break
		}
	}
	for _, want := range []string{"<path d=\"M70.0 ", "1.0.0 revoked", "&lt;fix&gt;", "100 %"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
	if err := (Chart{}).WriteSVG(&buf); err == nil {
		t.Error("an empty chart was drawn")
	}
}

func TestFormatOffset(t *testing.T) {
	for d, want := range map[time.Duration]string{1200 * time.Millisecond: "1.2s", 185 * time.Second: "3m05s", 130 * time.Minute: "2h10m"} {
		if got := formatOffset(d); got != want {
			t.Errorf("formatOffset(%v) = %q, want %q", d, got, want)
		}
	}
}
