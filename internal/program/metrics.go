package program

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Clock tells the time; tests pass a clock they control.
type Clock interface {
	Now() time.Time
}

// SystemClock is the wall clock.
type SystemClock struct{}

// Now returns the current time in UTC.
func (SystemClock) Now() time.Time { return time.Now().UTC() }

// Milestone names a step of a report's life that metrics time.
type Milestone string

// Milestones, in the order they normally happen. Every duration is measured
// from the report's submission.
const (
	MilestoneFirstResponse Milestone = "first_response"
	MilestoneTriage        Milestone = "triage"
	MilestoneAward         Milestone = "award"
	MilestoneFixRelease    Milestone = "fix_release"
	MilestoneCoverage50    Milestone = "coverage_50"
	MilestoneCoverage90    Milestone = "coverage_90"
	MilestoneCoverage99    Milestone = "coverage_99"
	MilestoneCoverage100   Milestone = "coverage_100"
)

var milestones = []Milestone{
	MilestoneFirstResponse, MilestoneTriage, MilestoneAward, MilestoneFixRelease,
	MilestoneCoverage50, MilestoneCoverage90, MilestoneCoverage99, MilestoneCoverage100,
}

var milestoneLabels = map[Milestone]string{
	MilestoneFirstResponse: "first response",
	MilestoneTriage:        "triage",
	MilestoneAward:         "award",
	MilestoneFixRelease:    "fix release",
	MilestoneCoverage50:    "50% coverage",
	MilestoneCoverage90:    "90% coverage",
	MilestoneCoverage99:    "99% coverage",
	MilestoneCoverage100:   "100% coverage",
}

// Milestones returns every milestone in order.
func Milestones() []Milestone { return slices.Clone(milestones) }

// coverageThresholds maps each coverage milestone to its threshold in
// thousandths of the fleet.
var coverageThresholds = []struct {
	m        Milestone
	perMille int64
}{
	{MilestoneCoverage50, 500},
	{MilestoneCoverage90, 900},
	{MilestoneCoverage99, 990},
	{MilestoneCoverage100, 1000},
}

// CoverageSample is the fleet's coverage by a fix at one moment: Covered of
// Total affected devices run the fix or a later release.
type CoverageSample struct {
	At      time.Time `json:"at"`
	Covered int64     `json:"covered"`
	Total   int64     `json:"total"`
}

// Exposed is the number of devices still without the fix.
func (s CoverageSample) Exposed() int64 { return s.Total - s.Covered }

// Timeline holds the timestamps of one report. A zero time means the step
// has not happened.
type Timeline struct {
	SubmittedAt     time.Time        `json:"submitted_at"`
	FirstResponseAt time.Time        `json:"first_response_at,omitzero"`
	TriagedAt       time.Time        `json:"triaged_at,omitzero"`
	AwardedAt       time.Time        `json:"awarded_at,omitzero"`
	FixReleasedAt   time.Time        `json:"fix_released_at,omitzero"`
	Coverage        []CoverageSample `json:"coverage,omitempty"`
}

// Metrics maps each milestone a report has reached to the time it took from
// submission.
type Metrics map[Milestone]time.Duration

// CoverageReached returns, for each coverage milestone, the first sample
// time at which coverage reached its threshold, looking only at samples at
// or after notBefore. Samples with no devices are ignored. The samples need
// not be sorted.
func CoverageReached(samples []CoverageSample, notBefore time.Time) map[Milestone]time.Time {
	sorted := slices.Clone(samples)
	slices.SortStableFunc(sorted, func(a, b CoverageSample) int { return a.At.Compare(b.At) })
	out := map[Milestone]time.Time{}
	for _, s := range sorted {
		if s.Total <= 0 || s.At.Before(notBefore) {
			continue
		}
		for _, th := range coverageThresholds {
			if _, done := out[th.m]; done {
				continue
			}
			if s.Covered*1000 >= th.perMille*s.Total {
				out[th.m] = s.At
			}
		}
	}
	return out
}

// Compute returns the durations from submission to each milestone reached.
// Coverage is counted only from the fix release on; a step dated before the
// submission (a clock error) is ignored rather than reported as negative.
func (t Timeline) Compute() Metrics {
	m := Metrics{}
	set := func(ms Milestone, at time.Time) {
		if !at.IsZero() && !at.Before(t.SubmittedAt) {
			m[ms] = at.Sub(t.SubmittedAt)
		}
	}
	set(MilestoneFirstResponse, t.FirstResponseAt)
	set(MilestoneTriage, t.TriagedAt)
	set(MilestoneAward, t.AwardedAt)
	set(MilestoneFixRelease, t.FixReleasedAt)
	if !t.FixReleasedAt.IsZero() {
		for ms, at := range CoverageReached(t.Coverage, t.FixReleasedAt) {
			set(ms, at)
		}
	}
	return m
}

// Median returns the median of ds (the mean of the two middle values for an
// even count) and false when ds is empty.
func Median(ds []time.Duration) (time.Duration, bool) {
	if len(ds) == 0 {
		return 0, false
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2], true
	}
	return s[n/2-1] + (s[n/2]-s[n/2-1])/2, true
}

// Medians returns, per milestone, the median over the reports that reached it.
func Medians(all []Metrics) Metrics {
	out := Metrics{}
	for _, ms := range milestones {
		var ds []time.Duration
		for _, m := range all {
			if d, ok := m[ms]; ok {
				ds = append(ds, d)
			}
		}
		if med, ok := Median(ds); ok {
			out[ms] = med
		}
	}
	return out
}

// ResearcherFacts is what the program summary needs about one applicant.
type ResearcherFacts struct {
	Country  string
	Accepted bool
}

// ReportFacts is what the program summary needs about one report.
type ReportFacts struct {
	State    State
	Severity Severity // empty when not scored
	// Award is the amount awarded; zero when none.
	Award int64
	// Awarded tells whether an award decision was recorded.
	Awarded bool
	// FixLinked tells whether the report is linked to a fix release.
	FixLinked bool
	Timeline  Timeline
}

// Valid reports whether a report was accepted as a vulnerability: triaged
// or resolved.
func (r ReportFacts) Valid() bool { return r.State == StateTriaged || r.State == StateResolved }

// Summary is a program's summary, the figures `rampart program report` prints.
type Summary struct {
	Program             string             `json:"program"`
	Currency            string             `json:"currency"`
	Applications        int                `json:"applications"`
	AcceptedResearchers int                `json:"accepted_researchers"`
	Countries           map[string]int     `json:"countries"`
	Reports             int                `json:"reports"`
	ValidReports        int                `json:"valid_reports"`
	FixedReports        int                `json:"fixed_reports"`
	BySeverity          map[Severity]int   `json:"by_severity"`
	BountyEligible      int                `json:"bounty_eligible"`
	TotalAwarded        int64              `json:"total_awarded"`
	SmallestAward       int64              `json:"smallest_award"`
	LargestAward        int64              `json:"largest_award"`
	ByDesign            int                `json:"by_design"`
	Medians             map[Milestone]Span `json:"medians"`
}

// Span is a duration that encodes in JSON as seconds and in text as a Go duration.
type Span time.Duration

// MarshalJSON encodes the span as whole seconds.
func (s Span) MarshalJSON() ([]byte, error) {
	return strconv.AppendInt(nil, int64(time.Duration(s)/time.Second), 10), nil
}

// UnmarshalJSON decodes whole seconds.
func (s *Span) UnmarshalJSON(b []byte) error {
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return fmt.Errorf("program.Span: %w", err)
	}
	*s = Span(time.Duration(n) * time.Second)
	return nil
}

// String formats the span compactly in days, hours and minutes.
func (s Span) String() string {
	d := time.Duration(s).Round(time.Minute)
	if d == 0 && s > 0 {
		return "under 1m" // not "0m", which reads as instant
	}
	days := d / (24 * time.Hour)
	d -= days * 24 * time.Hour
	h := d / time.Hour
	d -= h * time.Hour
	m := d / time.Minute
	switch {
	case days > 0:
		return fmt.Sprintf("%dd %dh %dm", days, h, m)
	case h > 0:
		return fmt.Sprintf("%dh %dm", h, m)
	default:
		return fmt.Sprintf("%dm", m)
	}
}

// Summarize computes a program's summary from its applications and reports.
func Summarize(p *Program, applicants []ResearcherFacts, reports []ReportFacts) Summary {
	s := Summary{
		Program:      p.Name,
		Currency:     p.Awards.Currency,
		Applications: len(applicants),
		Countries:    map[string]int{},
		Reports:      len(reports),
		BySeverity:   map[Severity]int{},
		Medians:      map[Milestone]Span{},
	}
	for _, a := range applicants {
		if a.Accepted {
			s.AcceptedResearchers++
			s.Countries[a.Country]++
		}
	}
	var all []Metrics
	for _, r := range reports {
		if r.Valid() {
			s.ValidReports++
		}
		if r.FixLinked {
			s.FixedReports++
		}
		if r.State == StateByDesign {
			s.ByDesign++
		}
		if r.Severity != "" {
			s.BySeverity[r.Severity]++
		}
		if r.Award > 0 {
			s.BountyEligible++
			s.TotalAwarded += r.Award
			if s.SmallestAward == 0 || r.Award < s.SmallestAward {
				s.SmallestAward = r.Award
			}
			s.LargestAward = max(s.LargestAward, r.Award)
		}
		all = append(all, r.Timeline.Compute())
	}
	for ms, d := range Medians(all) {
		s.Medians[ms] = Span(d)
	}
	return s
}

// Rows returns the summary as label/value rows, in the order the program
// report prints them.
func (s Summary) Rows() [][2]string {
	itoa := strconv.Itoa
	money := func(n int64) string { return strconv.FormatInt(n, 10) + " " + s.Currency }
	rows := [][2]string{
		{"program", s.Program},
		{"applications", itoa(s.Applications)},
		{"accepted researchers", itoa(s.AcceptedResearchers)},
		{"countries", formatCounts(s.Countries)},
		{"reports", itoa(s.Reports)},
		{"valid reports", itoa(s.ValidReports)},
		{"reports that led to a fix", itoa(s.FixedReports)},
	}
	var bySev []string
	for _, sev := range slices.Backward(severities) {
		if n := s.BySeverity[sev]; n > 0 {
			bySev = append(bySev, string(sev)+" "+itoa(n))
		}
	}
	if len(bySev) == 0 {
		bySev = []string{"-"}
	}
	rows = append(rows,
		[2]string{"reports by severity", strings.Join(bySev, ", ")},
		[2]string{"bounty-eligible reports", itoa(s.BountyEligible)},
		[2]string{"total awarded", money(s.TotalAwarded)},
		[2]string{"smallest award", money(s.SmallestAward)},
		[2]string{"largest award", money(s.LargestAward)},
		[2]string{"closed as by design", itoa(s.ByDesign)},
	)
	for _, ms := range milestones {
		v := "-"
		if d, ok := s.Medians[ms]; ok {
			v = d.String()
		}
		rows = append(rows, [2]string{"median time to " + milestoneLabels[ms], v})
	}
	return rows
}

// formatCounts formats counts as "DE 3, US 2", largest first, then by key.
func formatCounts(m map[string]int) string {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int {
		if m[a] != m[b] {
			return m[b] - m[a]
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + " " + strconv.Itoa(m[k])
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}
