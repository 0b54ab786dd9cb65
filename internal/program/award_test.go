package program

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestComputeAward(t *testing.T) {
	p := mustParse(t, minimalYAML)
	type want struct {
		Eligible       bool
		RangeMin       int64
		RangeMax       int64
		Base           int64
		BonusPercent   int64
		Bonus          int64
		FixedComponent string
		Computed       int64
	}
	tests := []struct {
		name string
		in   AwardInput
		want want
	}{
		{
			name: "base only, low quality pays the minimum",
			in:   AwardInput{Scenario: "general", Impact: "rce", Severity: SeverityCritical, Quality: QualityLow, Product: "gw", Components: []string{"kernel"}},
			want: want{Eligible: true, RangeMin: 20000, RangeMax: 40000, Base: 20000, Computed: 20000},
		},
		{
			name: "medium quality pays the middle",
			in:   AwardInput{Scenario: "general", Impact: "rce", Severity: SeverityCritical, Quality: QualityMedium, Product: "gw", Components: []string{"kernel"}},
			want: want{Eligible: true, RangeMin: 20000, RangeMax: 40000, Base: 30000, Computed: 30000},
		},
		{
			name: "high quality pays the maximum",
			in:   AwardInput{Scenario: "general", Impact: "rce", Severity: SeverityHigh, Quality: QualityHigh, Product: "gw", Components: []string{"kernel"}},
			want: want{Eligible: true, RangeMin: 10000, RangeMax: 20000, Base: 20000, Computed: 20000},
		},
		{
			name: "scenario bonus of 20 percent on top",
			in:   AwardInput{Scenario: "remote", Impact: "rce", Severity: SeverityCritical, Quality: QualityHigh, Product: "gw", Components: []string{"kernel"}},
			want: want{Eligible: true, RangeMin: 20000, RangeMax: 40000, Base: 40000, BonusPercent: 20, Bonus: 8000, Computed: 48000},
		},
		{
			name: "rounding half up: medium of 5000-10001 is 7501, bonus 1500.2 rounds to 1500",
			in:   AwardInput{Scenario: "remote", Impact: "eop", Severity: SeverityHigh, Quality: QualityMedium, Product: "gw", Components: []string{"kernel"}},
			want: want{Eligible: true, RangeMin: 5000, RangeMax: 10001, Base: 7501, BonusPercent: 20, Bonus: 1500, Computed: 9001},
		},
		{
			name: "fixed award for code execution in the named component",
			in:   AwardInput{Scenario: "tee-exec", Impact: "rce", Severity: SeverityCritical, Quality: QualityLow, Product: "gw", Components: []string{"kernel", "tee"}},
			want: want{Eligible: true, FixedComponent: "tee", Computed: 100000},
		},
		{
			name: "fixed award at exactly its minimum severity",
			in:   AwardInput{Scenario: "tee-exec", Impact: "rce", Severity: SeverityHigh, Quality: QualityLow, Product: "gw", Components: []string{"tee"}},
			want: want{Eligible: true, FixedComponent: "tee", Computed: 100000},
		},
		{
			name: "fixed award below its minimum severity falls back to the base table",
			in:   AwardInput{Scenario: "tee-exec", Impact: "rce", Severity: SeverityMedium, Quality: QualityHigh, Product: "gw", Components: []string{"tee"}},
			want: want{},
		},
		{
			name: "fixed award needs the impact it names: another impact falls back to the base table",
			in:   AwardInput{Scenario: "tee-exec", Impact: "eop", Severity: SeverityHigh, Quality: QualityLow, Product: "gw", Components: []string{"tee"}},
			want: want{Eligible: true, RangeMin: 5000, RangeMax: 10001, Base: 5000, Computed: 5000},
		},
		{
			name: "fixed award needs its component",
			in:   AwardInput{Scenario: "tee-exec", Impact: "rce", Severity: SeverityCritical, Quality: QualityLow, Product: "gw", Components: []string{"kernel"}},
			want: want{Eligible: true, RangeMin: 20000, RangeMax: 40000, Base: 20000, Computed: 20000},
		},
		{
			name: "no row for the severity: not eligible",
			in:   AwardInput{Scenario: "remote", Impact: "eop", Severity: SeverityLow, Quality: QualityHigh, Product: "gw", Components: []string{"kernel"}},
			want: want{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := p.ComputeAward(tt.in)
			if err != nil {
				t.Fatalf("ComputeAward: %v", err)
			}
			got := want{a.Eligible, a.RangeMin, a.RangeMax, a.Base, a.BonusPercent, a.Bonus, a.FixedComponent, a.Computed}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("award (-got +want):\n%s\nexplanation: %q", diff, a.Explanation)
			}
			if a.Amount() != a.Computed || a.BountyEligible() != (a.Computed > 0) {
				t.Errorf("Amount() = %d, BountyEligible() = %v for computed %d", a.Amount(), a.BountyEligible(), a.Computed)
			}
			if len(a.Explanation) == 0 {
				t.Error("no explanation")
			}
			if a.Currency != "USD" {
				t.Errorf("currency = %q", a.Currency)
			}
		})
	}
}

func TestComputeAwardExample(t *testing.T) {
	p := loadExample(t)
	// A critical remote code execution with a high-quality report in a 20 %
	// scenario: the top of the Azure-bounty-like range plus the bonus.
	a, err := p.ComputeAward(AwardInput{Scenario: "remote-code-execution", Impact: "remote-code-execution",
		Severity: SeverityCritical, Quality: QualityHigh, Product: "edge-gateway", Components: []string{"kernel"}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := a.Computed, int64(48000); got != want {
		t.Errorf("computed = %d, want %d", got, want)
	}
	a, err = p.ComputeAward(AwardInput{Scenario: "code-execution-secure-world", Impact: "elevation-of-privilege",
		Severity: SeverityCritical, Quality: QualityMedium, Product: "edge-gateway", Components: []string{"secure-world"}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := a.Computed, int64(100000); got != want {
		t.Errorf("secure world: computed = %d, want %d", got, want)
	}
}

func TestComputeAwardRejects(t *testing.T) {
	p := mustParse(t, minimalYAML)
	ok := AwardInput{Scenario: "general", Impact: "rce", Severity: SeverityHigh, Quality: QualityLow, Product: "gw", Components: []string{"kernel"}}
	tests := []struct {
		name   string
		edit   func(*AwardInput)
		target error
	}{
		{"unknown scenario", func(in *AwardInput) { in.Scenario = "other" }, ErrUnknownScenario},
		{"unknown impact", func(in *AwardInput) { in.Impact = "dos" }, ErrUnknownImpact},
		{"unknown product", func(in *AwardInput) { in.Product = "phone" }, ErrOutOfScope},
		{"component out of scope", func(in *AwardInput) { in.Components = []string{"modem"} }, ErrOutOfScope},
		{"bad severity", func(in *AwardInput) { in.Severity = "severe" }, nil},
		{"bad quality", func(in *AwardInput) { in.Quality = "great" }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := ok
			in.Components = append([]string(nil), ok.Components...)
			tt.edit(&in)
			_, err := p.ComputeAward(in)
			if err == nil {
				t.Fatal("ComputeAward accepted it")
			}
			if tt.target != nil && !errors.Is(err, tt.target) {
				t.Errorf("error %v is not %v", err, tt.target)
			}
		})
	}
}

func TestAwardOverride(t *testing.T) {
	p := mustParse(t, minimalYAML)
	a, err := p.ComputeAward(AwardInput{Scenario: "remote", Impact: "rce", Severity: SeverityCritical, Quality: QualityHigh, Product: "gw", Components: []string{"kernel"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		amount int64
		reason string
		target error
	}{
		{"raise with reason", 60000, "exploit chain reaches the TEE too", nil},
		{"lower to zero with reason", 0, "already known internally", nil},
		{"no reason", 60000, "  ", ErrOverrideReason},
		{"negative", -1, "typo", ErrInvalidAmount},
		{"too large", MaxAmount + 1, "generous", ErrInvalidAmount},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := a.WithOverride(tt.amount, tt.reason)
			if !errors.Is(err, tt.target) {
				t.Fatalf("WithOverride error = %v, want %v", err, tt.target)
			}
			if err != nil {
				return
			}
			if got := o.Amount(); got != tt.amount {
				t.Errorf("Amount() = %d, want %d", got, tt.amount)
			}
			if o.Computed != a.Computed {
				t.Errorf("override changed Computed: %d -> %d", a.Computed, o.Computed)
			}
			if o.BountyEligible() != (tt.amount > 0) {
				t.Errorf("BountyEligible() = %v", o.BountyEligible())
			}
		})
	}
	// The original is untouched.
	if diff := cmp.Diff(a.Override, (*Override)(nil), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("original award changed (-got +want):\n%s", diff)
	}
}

func BenchmarkComputeAward(b *testing.B) {
	p := loadExample(b)
	in := AwardInput{Scenario: "remote-code-execution", Impact: "remote-code-execution", Severity: SeverityCritical,
		Quality: QualityHigh, Product: "edge-gateway", Components: []string{"kernel"}}
	for b.Loop() {
		if _, err := p.ComputeAward(in); err != nil {
			b.Fatal(err)
		}
	}
}

// TestStoredRulesWithoutImpacts reads rules stored before fixed awards named their impacts:
// they still load, and such a fixed award pays for no report rather than for every impact.
func TestStoredRulesWithoutImpacts(t *testing.T) {
	old := strings.Replace(minimalYAML, " impacts: [rce],", "", 1)
	if _, err := ParseRules([]byte(old)); err == nil {
		t.Fatal("ParseRules accepts a fixed award without impacts")
	}
	p, err := ParseStoredRules([]byte(old))
	if err != nil {
		t.Fatalf("ParseStoredRules: %v", err)
	}
	a, err := p.ComputeAward(AwardInput{Scenario: "tee-exec", Impact: "rce", Severity: SeverityCritical, Quality: QualityLow, Product: "gw", Components: []string{"tee"}})
	if err != nil {
		t.Fatal(err)
	}
	if a.FixedComponent != "" || a.Computed != 20000 || !strings.Contains(strings.Join(a.Explanation, "\n"), "it pays for no impact") {
		t.Errorf("award from a fixed award without impacts: %+v", a)
	}
}

// TestWorkedExamples checks the worked examples of doc/vulnerability-response.md.
func TestWorkedExamples(t *testing.T) {
	p := loadExample(t)
	in := func(scenario, impact string, sev Severity, q Quality, comp string) AwardInput {
		return AwardInput{Scenario: scenario, Impact: impact, Severity: sev, Quality: q, Product: "edge-gateway", Components: []string{comp}}
	}
	tests := []struct {
		name string
		in   AwardInput
		want int64
	}{
		{"critical RCE, +20 %, high quality", in("remote-code-execution", "remote-code-execution", SeverityCritical, QualityHigh, "kernel"), 48000},
		{"same, medium quality", in("remote-code-execution", "remote-code-execution", SeverityCritical, QualityMedium, "kernel"), 36000},
		{"high EoP, +10 %, low quality", in("device-key-extraction", "elevation-of-privilege", SeverityHigh, QualityLow, "kernel"), 5500},
		{"critical EoP in the secure world", in("code-execution-secure-world", "elevation-of-privilege", SeverityCritical, QualityLow, "secure-world"), 100000},
		{"high denial of service in the secure world", in("code-execution-secure-world", "denial-of-service", SeverityHigh, QualityHigh, "secure-world"), 5000},
		{"medium RCE in the secure world", in("code-execution-secure-world", "remote-code-execution", SeverityMedium, QualityHigh, "secure-world"), 0},
		{"low denial of service", in("general", "denial-of-service", SeverityLow, QualityHigh, "kernel"), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := p.ComputeAward(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if a.Amount() != tt.want {
				t.Errorf("award = %d, want %d (%q)", a.Amount(), tt.want, a.Explanation)
			}
		})
	}
}
