package program

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time                    { return c.now }
func (c *fakeClock) Advance(d time.Duration) time.Time { c.now = c.now.Add(d); return c.now }

const day = 24 * time.Hour

func TestTimelineCompute(t *testing.T) {
	clock := &fakeClock{now: july}
	tl := Timeline{SubmittedAt: clock.Now()}
	tl.FirstResponseAt = clock.Advance(3 * time.Hour)
	tl.TriagedAt = clock.Advance(21 * time.Hour)
	tl.AwardedAt = clock.Advance(2 * day)
	tl.FixReleasedAt = clock.Advance(25 * day)
	fix := tl.FixReleasedAt
	tl.Coverage = []CoverageSample{
		{At: fix.Add(-time.Hour), Covered: 1000, Total: 1000}, // before the fix: ignored
		{At: fix.Add(2 * day), Covered: 950, Total: 1000},     // 95 %
		{At: fix, Covered: 0, Total: 1000},
		{At: fix.Add(day), Covered: 500, Total: 1000},     // exactly 50 %
		{At: fix.Add(4 * day), Covered: 989, Total: 1000}, // 98.9 %: not yet 99
		{At: fix.Add(5 * day), Covered: 0, Total: 0},      // empty fleet: ignored
		{At: fix.Add(6 * day), Covered: 995, Total: 1005}, // 99.0 %
		{At: fix.Add(9 * day), Covered: 1005, Total: 1005},
	}
	got := tl.Compute()
	want := Metrics{
		MilestoneFirstResponse: 3 * time.Hour,
		MilestoneTriage:        day,
		MilestoneAward:         3 * day,
		MilestoneFixRelease:    28 * day,
		MilestoneCoverage50:    29 * day,
		MilestoneCoverage90:    30 * day,
		MilestoneCoverage99:    34 * day,
		MilestoneCoverage100:   37 * day,
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("Compute (-got +want):\n%s", diff)
	}
}

func TestTimelineComputePartial(t *testing.T) {
	tl := Timeline{SubmittedAt: july, FirstResponseAt: july.Add(time.Hour), TriagedAt: july.Add(-time.Hour),
		Coverage: []CoverageSample{{At: july.Add(day), Covered: 10, Total: 10}}}
	// Triage dated before submission is ignored; coverage without a fix
	// release is not counted.
	if diff := cmp.Diff(tl.Compute(), Metrics{MilestoneFirstResponse: time.Hour}); diff != "" {
		t.Errorf("Compute (-got +want):\n%s", diff)
	}
}

func TestCoverageReached(t *testing.T) {
	samples := []CoverageSample{
		{At: july.Add(3 * day), Covered: 99, Total: 100},
		{At: july.Add(day), Covered: 49, Total: 100},
		{At: july.Add(2 * day), Covered: 90, Total: 100},
		{At: july.Add(4 * day), Covered: 80, Total: 110}, // new devices enrolled: coverage drops
		{At: july.Add(5 * day), Covered: 110, Total: 110},
	}
	got := CoverageReached(samples, july)
	want := map[Milestone]time.Time{
		MilestoneCoverage50:  july.Add(2 * day),
		MilestoneCoverage90:  july.Add(2 * day),
		MilestoneCoverage99:  july.Add(3 * day),
		MilestoneCoverage100: july.Add(5 * day),
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("CoverageReached (-got +want):\n%s", diff)
	}
	if got := (CoverageSample{Covered: 7, Total: 10}).Exposed(); got != 3 {
		t.Errorf("Exposed = %d", got)
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		name string
		in   []time.Duration
		want time.Duration
		ok   bool
	}{
		{"empty", nil, 0, false},
		{"one", []time.Duration{5}, 5, true},
		{"odd, unsorted", []time.Duration{9, 1, 5}, 5, true},
		{"even: mean of the middle two", []time.Duration{4 * time.Hour, time.Hour, 2 * time.Hour, 100 * time.Hour}, 3 * time.Hour, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Median(tt.in)
			if got != tt.want || ok != tt.ok {
				t.Errorf("Median = %v, %v; want %v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
	in := []time.Duration{3, 1, 2}
	Median(in)
	if diff := cmp.Diff(in, []time.Duration{3, 1, 2}); diff != "" {
		t.Errorf("Median changed its input (-got +want):\n%s", diff)
	}
}

func TestMedians(t *testing.T) {
	got := Medians([]Metrics{
		{MilestoneTriage: time.Hour, MilestoneFixRelease: 10 * day},
		{MilestoneTriage: 3 * time.Hour},
		{MilestoneTriage: 2 * time.Hour, MilestoneFixRelease: 20 * day},
		{},
	})
	want := Metrics{MilestoneTriage: 2 * time.Hour, MilestoneFixRelease: 15 * day}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("Medians (-got +want):\n%s", diff)
	}
}

// TestSummarizeSeed rebuilds the challenge's published figures: 40 reports,
// 30 of which led to a fix, 16 bounty-eligible, 10 closed as by design.
func TestSummarizeSeed(t *testing.T) {
	p := loadExample(t)
	applicants := []ResearcherFacts{
		{Country: "US", Accepted: true}, {Country: "DE", Accepted: true}, {Country: "US", Accepted: true},
		{Country: "IL", Accepted: false}, {Country: "FR", Accepted: false},
	}
	var reports []ReportFacts
	awards := []int64{100000, 48000, 40000, 24000, 20000, 20000, 12000, 12000, 10000, 10000, 10000, 6000, 6000, 5000, 1000, 500}
	for i := range 40 {
		r := ReportFacts{
			State:    StateResolved,
			Severity: SeverityHigh,
			Timeline: Timeline{SubmittedAt: july, FirstResponseAt: july.Add(time.Duration(i+1) * time.Hour)},
		}
		switch {
		case i < 16:
			r.Award, r.Awarded, r.FixLinked = awards[i], true, true
			r.Severity = SeverityCritical
		case i < 30:
			r.FixLinked = true
		default:
			r.State, r.Severity = StateByDesign, ""
		}
		reports = append(reports, r)
	}
	got := Summarize(p, applicants, reports)
	var total int64
	for _, a := range awards {
		total += a
	}
	want := Summary{
		Program: "edge-challenge", Currency: "USD",
		Applications: 5, AcceptedResearchers: 3, Countries: map[string]int{"US": 2, "DE": 1},
		Reports: 40, ValidReports: 30, FixedReports: 30,
		BySeverity:     map[Severity]int{SeverityCritical: 16, SeverityHigh: 14},
		BountyEligible: 16, TotalAwarded: total, SmallestAward: 500, LargestAward: 100000,
		ByDesign: 10,
		// First responses after 1..40 hours: the median is 20.5 hours.
		Medians: map[Milestone]Span{MilestoneFirstResponse: Span(20*time.Hour + 30*time.Minute)},
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("Summarize (-got +want):\n%s", diff)
	}
	if total != 324500 {
		t.Errorf("test data: total = %d", total)
	}

	rows := got.Rows()
	find := func(label string) string {
		for _, r := range rows {
			if r[0] == label {
				return r[1]
			}
		}
		t.Errorf("row %q missing from %v", label, rows)
		return ""
	}
	for label, want := range map[string]string{
		"countries":                     "US 2, DE 1",
		"reports by severity":           "critical 16, high 14",
		"total awarded":                 "324500 USD",
		"largest award":                 "100000 USD",
		"closed as by design":           "10",
		"median time to first response": "20h 30m",
		"median time to 100% coverage":  "-",
		"reports that led to a fix":     "30",
		"bounty-eligible reports":       "16",
		"accepted researchers":          "3",
	} {
		if got := find(label); got != want {
			t.Errorf("row %q = %q, want %q", label, got, want)
		}
	}

	js, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	var back Summary
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(back, got); diff != "" {
		t.Errorf("JSON round trip (-got +want):\n%s", diff)
	}
}

func TestSummarizeEmpty(t *testing.T) {
	got := Summarize(loadExample(t), nil, nil)
	if got.Reports != 0 || got.SmallestAward != 0 || len(got.Medians) != 0 {
		t.Errorf("Summarize(empty) = %+v", got)
	}
	for _, r := range got.Rows() {
		if r[1] == "" {
			t.Errorf("row %q is blank", r[0])
		}
	}
}

func TestSpanString(t *testing.T) {
	tests := map[time.Duration]string{
		0:                                   "0m",
		20 * time.Second:                    "under 1m",
		59 * time.Second:                    "1m",
		3*time.Hour + 4*time.Minute:         "3h 4m",
		2*day + 5*time.Hour + 6*time.Minute: "2d 5h 6m",
	}
	for d, want := range tests {
		if got := Span(d).String(); got != want {
			t.Errorf("Span(%v) = %q, want %q", d, got, want)
		}
	}
}

func BenchmarkSummarize(b *testing.B) {
	p := loadExample(b)
	reports := make([]ReportFacts, 1000)
	for i := range reports {
		fix := july.Add(time.Duration(i) * time.Hour)
		reports[i] = ReportFacts{State: StateResolved, Severity: SeverityHigh, Award: int64(i), FixLinked: true,
			Timeline: Timeline{SubmittedAt: july, TriagedAt: july.Add(time.Hour), FixReleasedAt: fix,
				Coverage: []CoverageSample{{At: fix.Add(day), Covered: 50, Total: 100}, {At: fix.Add(2 * day), Covered: 100, Total: 100}}}}
	}
	for b.Loop() {
		Summarize(p, nil, reports)
	}
}
