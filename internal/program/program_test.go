package program

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const examplePath = "../../doc/examples/program.yaml"

func loadExample(t testing.TB) *Program {
	t.Helper()
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatalf("read example: %v", err)
	}
	p, err := ParseRules(data)
	if err != nil {
		t.Fatalf("ParseRules(example): %v", err)
	}
	return p
}

// minimalYAML is the smallest valid rules file; tests edit it with replace.
const minimalYAML = `name: mini
title: Mini program
scope:
  products:
    - name: gw
      components: [kernel, tee]
impacts:
  - {id: rce, title: Remote code execution}
  - {id: eop, title: Elevation of privilege}
scenarios:
  - {id: general, title: General}
  - id: remote
    title: Remote
    bonus_percent: 20
  - id: tee-exec
    title: Code execution in the TEE
    fixed_awards:
      - {product: gw, component: tee, impacts: [rce], min_severity: high, amount: 100000}
awards:
  currency: USD
  base:
    - {impact: rce, severity: critical, min: 20000, max: 40000}
    - {impact: rce, severity: high, min: 10000, max: 20000}
    - {impact: eop, severity: high, min: 5000, max: 10001}
`

func mustParse(t testing.TB, src string) *Program {
	t.Helper()
	p, err := ParseRules([]byte(src))
	if err != nil {
		t.Fatalf("ParseRules: %v", err)
	}
	return p
}

func TestParseExample(t *testing.T) {
	p := loadExample(t)
	if got, want := p.Name, "edge-challenge"; got != want {
		t.Errorf("name = %q, want %q", got, want)
	}
	if got, want := time.Duration(p.NeedsInfoTimeout), 14*24*time.Hour; got != want {
		t.Errorf("needs_info_timeout = %v, want %v", got, want)
	}
	if got, want := p.MaxAttachmentBytes, int64(20<<20); got != want {
		t.Errorf("max_attachment_bytes = %d, want %d", got, want)
	}
	var bonuses []int64
	var fixed []string
	for _, s := range p.Scenarios {
		if s.BonusPercent > 0 {
			bonuses = append(bonuses, s.BonusPercent)
		}
		for _, f := range s.FixedAwards {
			fixed = append(fixed, f.Component+"="+strconv.FormatInt(f.Amount, 10))
		}
	}
	// The seed: six scenarios with up to 20 % on top, two fixed $100,000 awards.
	if diff := cmp.Diff(bonuses, []int64{20, 20, 20, 20, 10, 10}); diff != "" {
		t.Errorf("scenario bonuses (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(fixed, []string{"security-processor=100000", "secure-world=100000"}); diff != "" {
		t.Errorf("fixed awards (-got +want):\n%s", diff)
	}
	if !p.Open(time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)) || p.Open(time.Date(2028, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("Open: the challenge runs from June 2026 to the end of 2027")
	}
}

func TestRulesJSONRoundTrip(t *testing.T) {
	p := loadExample(t)
	js, err := p.MarshalJSONRules()
	if err != nil {
		t.Fatal(err)
	}
	q, err := ParseRules(js)
	if err != nil {
		t.Fatalf("ParseRules(JSON of example): %v\n%s", err, js)
	}
	if diff := cmp.Diff(q, p); diff != "" {
		t.Errorf("JSON round trip (-got +want):\n%s", diff)
	}
}

func TestParseRulesDefaults(t *testing.T) {
	p := mustParse(t, minimalYAML)
	if got, want := time.Duration(p.NeedsInfoTimeout), DefaultNeedsInfoTimeout; got != want {
		t.Errorf("needs_info_timeout = %v, want %v", got, want)
	}
	if got, want := p.MaxAttachmentBytes, int64(DefaultMaxAttachmentBytes); got != want {
		t.Errorf("max_attachment_bytes = %d, want %d", got, want)
	}
	if diff := cmp.Diff(p.Awards.Quality, map[Quality]int64{"low": 0, "medium": 50, "high": 100}); diff != "" {
		t.Errorf("quality (-got +want):\n%s", diff)
	}
}

// TestParseRulesYAMLLine: a YAML complaint names the line of the file as the author sees it,
// blank lines above included, on one line and without Go type names.
func TestParseRulesYAMLLine(t *testing.T) {
	src := "\n\n# rules\n" + minimalYAML + "colour: red\nshape: round\n"
	line := strings.Count("\n\n# rules\n"+minimalYAML, "\n") + 1
	_, err := ParseRules([]byte(src))
	want := fmt.Sprintf("yaml: line %d: field colour not found; line %d: field shape not found", line, line+1)
	if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), "program.Program") {
		t.Fatalf("ParseRules = %v, want one line with %q", err, want)
	}
}

func TestParseRulesRejects(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string // substring of the error
	}{
		{"empty", "  \n", "empty"},
		{"too large", strings.Repeat("#", MaxRulesBytes+1), "limit"},
		{"unknown yaml field", minimalYAML + "colour: red\n", "field colour not found"},
		{"unknown nested field", strings.Replace(minimalYAML, "currency: USD", "currency: USD\n  cap: 5", 1), "field cap not found"},
		{"duplicate yaml key", minimalYAML + "name: other\n", "already defined"},
		{"two documents", minimalYAML + "---\nname: x\n", "more than one document"},
		{"unknown json field", `{"name":"x","bogus":1}`, `unknown field "bogus"`},
		{"trailing json", `{"name":"x"} {}`, "trailing data"},
		{"bad name", strings.Replace(minimalYAML, "name: mini", "name: Mini Program", 1), `name: "Mini Program"`},
		{"missing title", strings.Replace(minimalYAML, "title: Mini program\n", "", 1), "title: required"},
		{"no products", strings.Replace(minimalYAML, "    - name: gw\n      components: [kernel, tee]\n", "", 1), "scope.products: at least one"},
		{"duplicate component", strings.Replace(minimalYAML, "[kernel, tee]", "[kernel, kernel, tee]", 1), `"kernel" is listed twice`},
		{"bonus too high", strings.Replace(minimalYAML, "bonus_percent: 20", "bonus_percent: 120", 1), "bonus_percent: 120 is outside 0-100"},
		{"bonus negative", strings.Replace(minimalYAML, "bonus_percent: 20", "bonus_percent: -5", 1), "bonus_percent: -5"},
		{"fixed award out of scope", strings.Replace(minimalYAML, "component: tee,", "component: modem,", 1), `"modem" is not a component of "gw"`},
		{"fixed award unknown product", strings.Replace(minimalYAML, "{product: gw,", "{product: phone,", 1), `product: "phone" is not in scope`},
		{"fixed award zero", strings.Replace(minimalYAML, "amount: 100000", "amount: 0", 1), "amount: 0 is outside"},
		{"fixed award without impacts", strings.Replace(minimalYAML, " impacts: [rce],", "", 1), "fixed_awards[0].impacts: at least one impact is required"},
		{"fixed award unknown impact", strings.Replace(minimalYAML, "impacts: [rce]", "impacts: [dos]", 1), `impacts[0]: "dos" is not listed in impacts`},
		{"fixed award impact twice", strings.Replace(minimalYAML, "impacts: [rce]", "impacts: [rce, rce]", 1), `impacts[1]: "rce" is listed twice`},
		{"fixed award bad severity", strings.Replace(minimalYAML, "min_severity: high", "min_severity: severe", 1), `"severe" is not a severity`},
		{"bad currency", strings.Replace(minimalYAML, "currency: USD", "currency: dollars", 1), "three-letter ISO 4217"},
		{"unknown impact in base", strings.Replace(minimalYAML, "{impact: eop,", "{impact: dos,", 1), `"dos" is not listed in impacts`},
		{"severity none in base", strings.Replace(minimalYAML, "{impact: eop, severity: high", "{impact: eop, severity: none", 1), "must be low, medium, high or critical"},
		{"duplicate base cell", strings.Replace(minimalYAML, "{impact: rce, severity: high", "{impact: rce, severity: critical", 1), "rce/critical is listed twice"},
		{"inverted range", strings.Replace(minimalYAML, "min: 5000, max: 10001", "min: 10001, max: 5000", 1), "min <= max"},
		{"bad quality key", strings.Replace(minimalYAML, "currency: USD", "currency: USD\n  quality: {low: 0, medium: 50, high: 100, superb: 100}", 1), `"superb" is not one of`},
		{"missing quality", strings.Replace(minimalYAML, "currency: USD", "currency: USD\n  quality: {low: 0, high: 100}", 1), "quality.medium: required"},
		{"unordered quality", strings.Replace(minimalYAML, "currency: USD", "currency: USD\n  quality: {low: 60, medium: 50, high: 100}", 1), "low <= medium <= high"},
		{"bad timeout", minimalYAML + "needs_info_timeout: soon\n", "want a duration"},
		{"short timeout", minimalYAML + "needs_info_timeout: 5m\n", "shorter than 1h"},
		{"huge attachments", minimalYAML + "max_attachment_bytes: 1000000000\n", "max_attachment_bytes"},
		{"ends before starts", minimalYAML + "starts: 2026-06-01T00:00:00Z\nends: 2026-05-01T00:00:00Z\n", "ends: must be after starts"},
		{"no scenarios", minimalYAML[:strings.Index(minimalYAML, "scenarios:")] + "scenarios: []\n" + minimalYAML[strings.Index(minimalYAML, "\nawards:")+1:], "scenarios: at least one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParseRules([]byte(tt.src))
			if err == nil {
				t.Fatalf("ParseRules accepted it: %+v", p)
			}
			if !errors.Is(err, ErrInvalidRules) {
				t.Errorf("error %v is not ErrInvalidRules", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestParseRulesReportsEveryProblem(t *testing.T) {
	src := strings.Replace(strings.Replace(minimalYAML, "bonus_percent: 20", "bonus_percent: 200", 1), "currency: USD", "currency: usd", 1)
	_, err := ParseRules([]byte(src))
	if err == nil {
		t.Fatal("ParseRules accepted two problems")
	}
	for _, want := range []string{"bonus_percent: 200", `currency: "usd"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"14d", 14 * 24 * time.Hour, false},
		{"0d", 0, false},
		{"36h", 36 * time.Hour, false},
		{"1h30m", 90 * time.Minute, false},
		{"-1d", 0, true},
		{"d", 0, true},
		{"1.5d", 0, true},
		{"soon", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDuration(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseDuration(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if time.Duration(got) != tt.want {
				t.Errorf("ParseDuration(%q) = %v, want %v", tt.in, time.Duration(got), tt.want)
			}
		})
	}
	if got, want := Duration(14*24*time.Hour).String(), "14d"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
	if got, want := Duration(90*time.Minute).String(), "1h30m0s"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
}

func TestScopeQueries(t *testing.T) {
	p := mustParse(t, minimalYAML)
	if !p.InScope("gw", "tee") || p.InScope("gw", "modem") || p.InScope("phone", "tee") {
		t.Error("InScope answers wrongly")
	}
	if !p.HasProduct("gw") || p.HasProduct("phone") {
		t.Error("HasProduct answers wrongly")
	}
	if _, ok := p.Scenario("remote"); !ok {
		t.Error("Scenario(remote) not found")
	}
	if _, ok := p.Scenario("nope"); ok {
		t.Error("Scenario(nope) found")
	}
}

func FuzzParseRules(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/rules/*")
	seeds = append(seeds, examplePath)
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(minimalYAML))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseRules(data)
		if err != nil {
			if p != nil {
				t.Fatal("ParseRules returned a program with an error")
			}
			return
		}
		// Whatever is accepted validates and survives a JSON round trip.
		if err := p.Validate(); err != nil {
			t.Fatalf("accepted program does not validate: %v", err)
		}
		js, err := p.MarshalJSONRules()
		if err != nil {
			t.Fatal(err)
		}
		q, err := ParseRules(js)
		if err != nil {
			t.Fatalf("re-parse of accepted program: %v\n%s", err, js)
		}
		a, _ := q.MarshalJSONRules()
		if !bytes.Equal(a, js) {
			t.Fatalf("round trip changed the program:\n%s\n%s", js, a)
		}
	})
}
