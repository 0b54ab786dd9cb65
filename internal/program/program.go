// Package program owns the domain of Rampart's vulnerability-response side,
// without storage: the program rules file (scope, research scenarios, award
// rules), award computation, the report state machine, CVSS scoring, researcher
// applications and report submissions, and the metrics and program summary.
//
// Of Rampart's packages it may depend on internal/public only. The store, the
// admin and researcher APIs, the researcher portal (internal/console), the CLI
// and the advisory package may import it.
package program

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/rampartsec/rampart/internal/jsonerr"
	"github.com/rampartsec/rampart/internal/public"
)

// Limits on a rules file.
const (
	// MaxRulesBytes is the largest rules file accepted.
	MaxRulesBytes = 1 << 20
	// DefaultNeedsInfoTimeout is how long a report waits in needs_more_info
	// before it is closed automatically, when the rules file does not say.
	DefaultNeedsInfoTimeout = 14 * 24 * time.Hour
	// DefaultMaxAttachmentBytes is the attachment size limit when the rules
	// file does not say.
	DefaultMaxAttachmentBytes = 10 << 20
	// CeilingAttachmentBytes is the largest attachment limit a rules file may set.
	CeilingAttachmentBytes = 100 << 20
	// MaxBonusPercent is the largest scenario bonus a rules file may set.
	MaxBonusPercent = 100
	// MaxAmount is the largest amount (in whole currency units) anywhere in a
	// rules file or an override.
	MaxAmount = 10_000_000
)

// ErrInvalidRules reports a rules file that does not decode or validate.
var ErrInvalidRules = errors.New("invalid program rules")

// Program is a research program as loaded from its rules file.
type Program struct {
	// Name identifies the program; lowercase letters, digits and dashes.
	Name string `json:"name" yaml:"name"`
	// Title is a human-readable title.
	Title string `json:"title" yaml:"title"`
	// Description is free text shown to researchers.
	Description string `json:"description,omitempty" yaml:"description,omitempty"`
	// Starts and Ends bound the period in which reports are accepted; both optional.
	Starts *time.Time `json:"starts,omitempty" yaml:"starts,omitempty"`
	Ends   *time.Time `json:"ends,omitempty" yaml:"ends,omitempty"`
	// Scope lists the products and components in scope.
	Scope Scope `json:"scope" yaml:"scope"`
	// Impacts lists the impact categories used by the award table.
	Impacts []Impact `json:"impacts" yaml:"impacts"`
	// Scenarios lists the research scenarios; a report names one of them.
	Scenarios []Scenario `json:"scenarios" yaml:"scenarios"`
	// Awards holds the award rules.
	Awards AwardRules `json:"awards" yaml:"awards"`
	// NeedsInfoTimeout is how long a report may stay in needs_more_info
	// before it is closed automatically (Go duration or "Nd" days).
	NeedsInfoTimeout Duration `json:"needs_info_timeout,omitempty" yaml:"needs_info_timeout,omitempty"`
	// MaxAttachmentBytes limits the size of one attachment.
	MaxAttachmentBytes int64 `json:"max_attachment_bytes,omitempty" yaml:"max_attachment_bytes,omitempty"`
}

// Scope is the set of products and components a program covers.
type Scope struct {
	Products []Product `json:"products" yaml:"products"`
}

// Product is a product in scope with its components.
type Product struct {
	Name       string   `json:"name" yaml:"name"`
	Components []string `json:"components" yaml:"components"`
}

// Impact is an impact category of the award table, such as
// remote-code-execution or elevation-of-privilege.
type Impact struct {
	ID    string `json:"id" yaml:"id"`
	Title string `json:"title" yaml:"title"`
}

// Scenario is a research scenario. A report in a scenario earns the
// scenario's bonus on top of the base award, or one of its fixed awards when
// it affects the named component.
type Scenario struct {
	ID           string       `json:"id" yaml:"id"`
	Title        string       `json:"title" yaml:"title"`
	Description  string       `json:"description,omitempty" yaml:"description,omitempty"`
	BonusPercent int64        `json:"bonus_percent,omitempty" yaml:"bonus_percent,omitempty"`
	FixedAwards  []FixedAward `json:"fixed_awards,omitempty" yaml:"fixed_awards,omitempty"`
}

// FixedAward replaces the computed award of a report in its scenario that
// affects Component, whose triaged impact is one of Impacts (the impact the
// scenario names, such as code execution) and whose severity reaches at least
// MinSeverity.
type FixedAward struct {
	Product   string `json:"product" yaml:"product"`
	Component string `json:"component" yaml:"component"`
	// Impacts lists the impact IDs the award pays for; at least one. A report
	// of any other impact falls back to the base table.
	Impacts     []string `json:"impacts,omitempty" yaml:"impacts,omitempty"`
	MinSeverity Severity `json:"min_severity,omitempty" yaml:"min_severity,omitempty"`
	Amount      int64    `json:"amount" yaml:"amount"`
}

// AwardRules is the award part of a rules file.
type AwardRules struct {
	// Currency is an ISO 4217 code such as USD; amounts are whole units.
	Currency string `json:"currency" yaml:"currency"`
	// Quality maps a report quality to the position in a base range, in
	// percent: 0 pays the minimum, 100 the maximum.
	Quality map[Quality]int64 `json:"quality" yaml:"quality"`
	// Base is the base award table by impact and severity.
	Base []BaseAward `json:"base" yaml:"base"`
}

// BaseAward is one cell of the base award table: the range paid for a report
// of one impact and one severity.
type BaseAward struct {
	Impact   string   `json:"impact" yaml:"impact"`
	Severity Severity `json:"severity" yaml:"severity"`
	Min      int64    `json:"min" yaml:"min"`
	Max      int64    `json:"max" yaml:"max"`
}

// Quality grades a report's quality, which places its award within the range.
type Quality string

// Report qualities.
const (
	QualityLow    Quality = "low"
	QualityMedium Quality = "medium"
	QualityHigh   Quality = "high"
)

// Qualities lists the report qualities in increasing order.
var qualities = []Quality{QualityLow, QualityMedium, QualityHigh}

// ParseQuality parses a report quality.
func ParseQuality(s string) (Quality, error) {
	q := Quality(s)
	if !slices.Contains(qualities, q) {
		return "", fmt.Errorf("program.ParseQuality: %w", public.Errorf(public.Invalid, "%q is not one of low, medium, high", s))
	}
	return q, nil
}

// Duration is a time.Duration that decodes from a Go duration string such as
// "336h" or from a whole number of days such as "14d".
type Duration time.Duration

// ParseDuration parses a Go duration or a number of days ("14d").
func ParseDuration(s string) (Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseInt(days, 10, 32)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("program.ParseDuration: %q is not a whole number of days", s)
		}
		return Duration(time.Duration(n) * 24 * time.Hour), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("program.ParseDuration: %q: want a duration such as 336h or 14d", s)
	}
	return Duration(d), nil
}

// String formats d as a Go duration, or as days when it is a whole number of them.
func (d Duration) String() string {
	td := time.Duration(d)
	if td > 0 && td%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(td/(24*time.Hour)), 10) + "d"
	}
	return td.String()
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: duration must be a string such as 14d", n.Line)
	}
	return d.UnmarshalText([]byte(n.Value))
}

// ParseRules decodes and validates a rules file. A document whose first
// non-blank byte is '{' is read as JSON, anything else as YAML. Both are
// strict: unknown fields, duplicate keys and trailing documents are rejected.
// Defaults are filled in for optional fields.
func ParseRules(data []byte) (*Program, error) {
	p, err := decodeRules(data)
	if err != nil {
		return nil, fmt.Errorf("program.ParseRules: %w", public.Errorf(public.Invalid, "%w: %w", ErrInvalidRules, err))
	}
	p.fillDefaults()
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("program.ParseRules: %w", err)
	}
	return p, nil
}

// ParseStoredRules is ParseRules for rules stored before fixed awards named
// their impacts: such a fixed award is kept, but it matches no report (the
// award explanation says so), so it never pays for an impact it did not name.
func ParseStoredRules(data []byte) (*Program, error) {
	p, err := decodeRules(data)
	if err != nil {
		return nil, fmt.Errorf("program.ParseStoredRules: %w", public.Errorf(public.Invalid, "%w: %w", ErrInvalidRules, err))
	}
	p.fillDefaults()
	if err := p.validate(true); err != nil {
		return nil, fmt.Errorf("program.ParseStoredRules: %w", err)
	}
	return p, nil
}

// decodeRules reads a rules file; its refusals are public sentences for the file's author.
func decodeRules(data []byte) (*Program, error) {
	p, err := decodeRulesFile(data)
	if err != nil {
		if _, ok := public.As(err); !ok {
			err = public.Errorf(public.Invalid, "%w", err)
		}
		return nil, err
	}
	return p, nil
}

func decodeRulesFile(data []byte) (*Program, error) {
	if len(data) > MaxRulesBytes {
		return nil, fmt.Errorf("rules file is %d bytes, the limit is %d", len(data), MaxRulesBytes)
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, errors.New("rules file is empty")
	}
	var p Program
	if trimmed[0] == '{' {
		if err := DecodeJSONStrict(bytes.NewReader(trimmed), &p); err != nil {
			return nil, err
		}
		return &p, nil
	}
	// The whole file, not the trimmed one: a line number must count the blank lines above.
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil {
		return nil, yamlError(err)
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("yaml: more than one document")
	}
	return &p, nil
}

// goType is the Go type a YAML decoding error names ("in type program.Program"), which means
// nothing to the author of a rules file.
var goType = regexp.MustCompile(` in type [A-Za-z0-9_.\[\]*]+`)

// yamlError puts the decoder's complaints on one line, each with its line number.
func yamlError(err error) error {
	if te, ok := errors.AsType[*yaml.TypeError](err); ok {
		msgs := make([]string, len(te.Errors))
		for i, m := range te.Errors {
			msgs[i] = goType.ReplaceAllString(m, "")
		}
		return fmt.Errorf("yaml: %s", strings.Join(msgs, "; "))
	}
	return err
}

// DecodeJSONStrict decodes exactly one JSON value from r into v, rejecting
// unknown fields and trailing data.
func DecodeJSONStrict(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return public.Errorf(public.Invalid, "JSON holds trailing data after the document")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return public.Errorf(public.Invalid, "JSON holds trailing data after the document")
	}
	return nil
}

// jsonError is the sentence for a JSON document that does not decode, worded as the admin
// API words it (internal/api's decodeError): the field or byte at fault, said once.
func jsonError(err error) error {
	if e, ok := errors.AsType[*json.SyntaxError](err); ok {
		return public.Wrap(err, public.Invalid, "not valid JSON (at byte %d)", e.Offset)
	}
	if e, ok := errors.AsType[*json.UnmarshalTypeError](err); ok && e.Field != "" {
		return public.Wrap(err, public.Invalid, "field %q cannot hold a JSON %s", e.Field, e.Value)
	}
	if errors.Is(err, io.EOF) {
		return public.Wrap(err, public.Invalid, "the document is empty; a JSON object is required")
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return public.Wrap(err, public.Invalid, "truncated JSON")
	}
	if f, ok := jsonerr.UnknownField(err); ok {
		return public.Wrap(err, public.Invalid, "unknown field %s", f)
	}
	return public.Wrap(err, public.Invalid, "not valid JSON")
}

func (p *Program) fillDefaults() {
	if p.NeedsInfoTimeout == 0 {
		p.NeedsInfoTimeout = Duration(DefaultNeedsInfoTimeout)
	}
	if p.MaxAttachmentBytes == 0 {
		p.MaxAttachmentBytes = DefaultMaxAttachmentBytes
	}
	if p.Awards.Quality == nil {
		p.Awards.Quality = map[Quality]int64{QualityLow: 0, QualityMedium: 50, QualityHigh: 100}
	}
}

var (
	nameRE        = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	productNameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9 ._-]{0,62}[A-Za-z0-9._-])?$`)
	currencyRE    = regexp.MustCompile(`^[A-Z]{3}$`)
)

// ValidName reports whether s is a valid program, scenario or impact name:
// 1 to 63 lowercase letters, digits and dashes, starting with a letter or
// digit.
func ValidName(s string) bool { return nameRE.MatchString(s) }

// ValidProductName reports whether s is a valid product or component name,
// as Rampart names products: 1 to 64 letters, digits, spaces, dots, dashes
// or underscores, starting with a letter or digit and not ending in a space.
func ValidProductName(s string) bool { return productNameRE.MatchString(s) }

// Validate checks a program's internal consistency. Every problem found is
// reported, joined, each naming the field at fault.
func (p *Program) Validate() error { return p.validate(false) }

// validate is Validate; stored allows fixed awards without impacts (see ParseStoredRules).
func (p *Program) validate(stored bool) error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if !ValidName(p.Name) {
		bad("name: %q must be 1-63 lowercase letters, digits or dashes", p.Name)
	}
	if strings.TrimSpace(p.Title) == "" {
		bad("title: required")
	}
	if p.Starts != nil && p.Ends != nil && !p.Ends.After(*p.Starts) {
		bad("ends: must be after starts")
	}
	if len(p.Scope.Products) == 0 {
		bad("scope.products: at least one product is required")
	}
	products := map[string]map[string]bool{}
	for i, pr := range p.Scope.Products {
		if !ValidProductName(pr.Name) {
			bad("scope.products[%d].name: %q is not a valid name", i, pr.Name)
		}
		if products[pr.Name] != nil {
			bad("scope.products[%d].name: %q is listed twice", i, pr.Name)
		}
		comps := map[string]bool{}
		if len(pr.Components) == 0 {
			bad("scope.products[%d].components: at least one component is required", i)
		}
		for j, c := range pr.Components {
			if !ValidProductName(c) {
				bad("scope.products[%d].components[%d]: %q is not a valid name", i, j, c)
			}
			if comps[c] {
				bad("scope.products[%d].components[%d]: %q is listed twice", i, j, c)
			}
			comps[c] = true
		}
		products[pr.Name] = comps
	}
	impacts := map[string]bool{}
	if len(p.Impacts) == 0 {
		bad("impacts: at least one impact is required")
	}
	for i, im := range p.Impacts {
		if !ValidName(im.ID) {
			bad("impacts[%d].id: %q is not a valid name", i, im.ID)
		}
		if impacts[im.ID] {
			bad("impacts[%d].id: %q is listed twice", i, im.ID)
		}
		if strings.TrimSpace(im.Title) == "" {
			bad("impacts[%d].title: required", i)
		}
		impacts[im.ID] = true
	}
	if len(p.Scenarios) == 0 {
		bad("scenarios: at least one scenario is required")
	}
	scenarios := map[string]bool{}
	for i, s := range p.Scenarios {
		if !ValidName(s.ID) {
			bad("scenarios[%d].id: %q is not a valid name", i, s.ID)
		}
		if scenarios[s.ID] {
			bad("scenarios[%d].id: %q is listed twice", i, s.ID)
		}
		scenarios[s.ID] = true
		if strings.TrimSpace(s.Title) == "" {
			bad("scenarios[%d].title: required", i)
		}
		if s.BonusPercent < 0 || s.BonusPercent > MaxBonusPercent {
			bad("scenarios[%d].bonus_percent: %d is outside 0-%d", i, s.BonusPercent, MaxBonusPercent)
		}
		seen := map[[2]string]bool{}
		for j, f := range s.FixedAwards {
			comps, ok := products[f.Product]
			switch {
			case !ok:
				bad("scenarios[%d].fixed_awards[%d].product: %q is not in scope", i, j, f.Product)
			case !comps[f.Component]:
				bad("scenarios[%d].fixed_awards[%d].component: %q is not a component of %q", i, j, f.Component, f.Product)
			}
			if seen[[2]string{f.Product, f.Component}] {
				bad("scenarios[%d].fixed_awards[%d]: %s/%s is listed twice", i, j, f.Product, f.Component)
			}
			seen[[2]string{f.Product, f.Component}] = true
			if len(f.Impacts) == 0 && !stored {
				bad("scenarios[%d].fixed_awards[%d].impacts: at least one impact is required (the impact the scenario names)", i, j)
			}
			for k, im := range f.Impacts {
				if !impacts[im] {
					bad("scenarios[%d].fixed_awards[%d].impacts[%d]: %q is not listed in impacts", i, j, k, im)
				}
				if slices.Index(f.Impacts, im) < k {
					bad("scenarios[%d].fixed_awards[%d].impacts[%d]: %q is listed twice", i, j, k, im)
				}
			}
			if f.MinSeverity != "" && !f.MinSeverity.Valid() {
				bad("scenarios[%d].fixed_awards[%d].min_severity: %q is not a severity", i, j, f.MinSeverity)
			}
			if f.Amount <= 0 || f.Amount > MaxAmount {
				bad("scenarios[%d].fixed_awards[%d].amount: %d is outside 1-%d", i, j, f.Amount, MaxAmount)
			}
		}
	}
	a := p.Awards
	if !currencyRE.MatchString(a.Currency) {
		bad("awards.currency: %q must be a three-letter ISO 4217 code such as USD", a.Currency)
	}
	for q, pct := range a.Quality {
		if !slices.Contains(qualities, q) {
			bad("awards.quality: %q is not one of low, medium, high", q)
		}
		if pct < 0 || pct > 100 {
			bad("awards.quality.%s: %d is outside 0-100", q, pct)
		}
	}
	for _, q := range qualities {
		if _, ok := a.Quality[q]; !ok {
			bad("awards.quality.%s: required", q)
		}
	}
	if a.Quality[QualityLow] > a.Quality[QualityMedium] || a.Quality[QualityMedium] > a.Quality[QualityHigh] {
		bad("awards.quality: low <= medium <= high is required")
	}
	if len(a.Base) == 0 {
		bad("awards.base: at least one row is required")
	}
	cells := map[[2]string]bool{}
	for i, b := range a.Base {
		if !impacts[b.Impact] {
			bad("awards.base[%d].impact: %q is not listed in impacts", i, b.Impact)
		}
		if !b.Severity.Valid() || b.Severity == SeverityNone {
			bad("awards.base[%d].severity: %q must be low, medium, high or critical", i, b.Severity)
		}
		key := [2]string{b.Impact, string(b.Severity)}
		if cells[key] {
			bad("awards.base[%d]: %s/%s is listed twice", i, b.Impact, b.Severity)
		}
		cells[key] = true
		if b.Min < 0 || b.Max > MaxAmount || b.Min > b.Max {
			bad("awards.base[%d]: range %d-%d must satisfy 0 <= min <= max <= %d", i, b.Min, b.Max, MaxAmount)
		}
	}
	if p.NeedsInfoTimeout < Duration(time.Hour) {
		bad("needs_info_timeout: %s is shorter than 1h", p.NeedsInfoTimeout)
	}
	if p.MaxAttachmentBytes <= 0 || p.MaxAttachmentBytes > CeilingAttachmentBytes {
		bad("max_attachment_bytes: %d is outside 1-%d", p.MaxAttachmentBytes, CeilingAttachmentBytes)
	}
	if len(errs) > 0 {
		return public.Errorf(public.Invalid, "%w: %w", ErrInvalidRules, errors.Join(errs...))
	}
	return nil
}

// Scenario returns the scenario with the given ID.
func (p *Program) Scenario(id string) (Scenario, bool) {
	for _, s := range p.Scenarios {
		if s.ID == id {
			return s, true
		}
	}
	return Scenario{}, false
}

// InScope reports whether component is a component of product in scope.
func (p *Program) InScope(product, component string) bool {
	for _, pr := range p.Scope.Products {
		if pr.Name == product {
			return slices.Contains(pr.Components, component)
		}
	}
	return false
}

// HasProduct reports whether product is in scope.
func (p *Program) HasProduct(product string) bool {
	return slices.ContainsFunc(p.Scope.Products, func(pr Product) bool { return pr.Name == product })
}

// Open reports whether the program accepts reports at t.
func (p *Program) Open(t time.Time) bool {
	if p.Starts != nil && t.Before(*p.Starts) {
		return false
	}
	if p.Ends != nil && !t.Before(*p.Ends) {
		return false
	}
	return true
}

// MarshalJSONRules encodes p as a JSON rules file that ParseRules accepts.
func (p *Program) MarshalJSONRules() ([]byte, error) {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("program.MarshalJSONRules: %w", err)
	}
	return b, nil
}
