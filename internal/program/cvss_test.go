package program

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	gocvss40 "github.com/pandatix/go-cvss/40"
)

func TestParseCVSS(t *testing.T) {
	// Scores published by FIRST's calculators for these vectors.
	tests := []struct {
		vector string
		want   Score
	}{
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
			Score{Version: CVSS31, Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", Score: 9.8, Severity: SeverityCritical}},
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N",
			Score{Version: CVSS31, Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", Score: 6.1, Severity: SeverityMedium}},
		{"CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H",
			Score{Version: CVSS31, Vector: "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", Score: 7.8, Severity: SeverityHigh}},
		{"CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N",
			Score{Version: CVSS31, Vector: "CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N", Score: 1.6, Severity: SeverityLow}},
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N",
			Score{Version: CVSS31, Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", Score: 0, Severity: SeverityNone}},
		{"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
			Score{Version: CVSS40, Vector: "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", Score: 9.3, Severity: SeverityCritical, Nomenclature: "CVSS-B"}},
		{"CVSS:4.0/AV:L/AC:L/AT:N/PR:L/UI:P/VC:N/VI:H/VA:H/SC:N/SI:L/SA:L",
			Score{Version: CVSS40, Vector: "CVSS:4.0/AV:L/AC:L/AT:N/PR:L/UI:P/VC:N/VI:H/VA:H/SC:N/SI:L/SA:L", Score: 5.2, Severity: SeverityMedium, Nomenclature: "CVSS-B"}},
		{"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H/E:U",
			Score{Version: CVSS40, Vector: "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H/E:U", Score: 9.1, Severity: SeverityCritical, Nomenclature: "CVSS-BT"}},
		{"CVSS:4.0/AV:P/AC:H/AT:P/PR:H/UI:A/VC:L/VI:N/VA:N/SC:N/SI:N/SA:N",
			Score{Version: CVSS40, Vector: "CVSS:4.0/AV:P/AC:H/AT:P/PR:H/UI:A/VC:L/VI:N/VA:N/SC:N/SI:N/SA:N", Score: 1.0, Severity: SeverityLow, Nomenclature: "CVSS-B"}},
	}
	for _, tt := range tests {
		t.Run(tt.vector, func(t *testing.T) {
			got, err := ParseCVSS(tt.vector)
			if err != nil {
				t.Fatalf("ParseCVSS: %v", err)
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("ParseCVSS (-got +want):\n%s", diff)
			}
		})
	}
}

func TestParseCVSSRejects(t *testing.T) {
	tests := []string{
		"",
		"AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
		"CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
		"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H",
		"CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
		"CVSS:3.1/AV:N/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
		"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N",
		"CVSS:4.0/AC:L/AV:N/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
		"CVSS:4.0/" + strings.Repeat("A", MaxVectorLength),
	}
	for _, v := range tests {
		t.Run(v, func(t *testing.T) {
			if s, err := ParseCVSS(v); !errors.Is(err, ErrInvalidVector) {
				t.Errorf("ParseCVSS(%q) = %+v, %v; want ErrInvalidVector", v, s, err)
			}
		})
	}
}

func TestScoresSeverity(t *testing.T) {
	both, err := ParseScores("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N")
	if err != nil {
		t.Fatal(err)
	}
	if got := both.Severity(); got != SeverityCritical {
		t.Errorf("4.0 takes precedence: severity = %s", got)
	}
	only31, err := ParseScores("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", "")
	if err != nil {
		t.Fatal(err)
	}
	if got := only31.Severity(); got != SeverityHigh {
		t.Errorf("3.1 only: severity = %s", got)
	}
	if got := (Scores{}).Severity(); got != SeverityNone {
		t.Errorf("no vector: severity = %s", got)
	}
	if _, err := ParseScores("CVSS:4.0/AV:N", ""); !errors.Is(err, ErrInvalidVector) {
		t.Errorf("a 4.0 vector in the 3.1 slot: %v", err)
	}
}

func TestSeverity(t *testing.T) {
	if !SeverityCritical.AtLeast(SeverityHigh) || SeverityMedium.AtLeast(SeverityHigh) || !SeverityHigh.AtLeast(SeverityHigh) {
		t.Error("AtLeast answers wrongly")
	}
	if s, err := ParseSeverity("HIGH"); err != nil || s != SeverityHigh {
		t.Errorf("ParseSeverity(HIGH) = %q, %v", s, err)
	}
	if _, err := ParseSeverity("severe"); err == nil {
		t.Error("ParseSeverity(severe) accepted")
	}
}

func FuzzParseCVSS(f *testing.F) {
	f.Add("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")
	f.Add("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:P/RL:O/RC:C/CR:H/MAV:A")
	f.Add("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N")
	f.Add("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/E:A/CR:H/MAV:L/S:P")
	f.Fuzz(func(t *testing.T, v string) {
		s, err := ParseCVSS(v)
		if err != nil {
			return
		}
		if s.Score < 0 || s.Score > 10 || !s.Severity.Valid() {
			t.Fatalf("ParseCVSS(%q) = %+v", v, s)
		}
		// The canonical vector parses to the same score.
		again, err := ParseCVSS(s.Vector)
		if err != nil || again.Score != s.Score {
			t.Fatalf("canonical vector %q: %+v, %v", s.Vector, again, err)
		}
	})
}

func BenchmarkParseCVSS40(b *testing.B) {
	for b.Loop() {
		if _, err := ParseCVSS40("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/E:A"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseCVSS40Ceiling is go-cvss alone (parse, score, rate): ParseCVSS40 as a ratio to it
// is the cost of the wrapper.
func BenchmarkParseCVSS40Ceiling(b *testing.B) {
	for b.Loop() {
		v, err := gocvss40.ParseVector("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/E:A")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := gocvss40.Rating(v.Score()); err != nil {
			b.Fatal(err)
		}
		_ = v.Vector()
		_ = v.Nomenclature()
	}
}
