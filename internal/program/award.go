package program

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/rampartsec/rampart/internal/public"
)

// Errors returned by award computation.
var (
	ErrUnknownScenario = errors.New("scenario is not part of the program")
	ErrUnknownImpact   = errors.New("impact is not part of the program")
	ErrOutOfScope      = errors.New("product or component is not in the program's scope")
	ErrOverrideReason  = errors.New("an award override must carry a reason")
	ErrInvalidAmount   = errors.New("invalid amount")
)

// AwardInput is what triage decides about a report that the award depends on.
type AwardInput struct {
	Scenario   string   `json:"scenario"`
	Impact     string   `json:"impact"`
	Severity   Severity `json:"severity"`
	Quality    Quality  `json:"quality"`
	Product    string   `json:"product"`
	Components []string `json:"components"`
}

// Award is the result of applying a program's rules to a report, and the
// optional override. Amounts are whole units of Currency.
type Award struct {
	Currency string `json:"currency"`
	// Eligible is false when no rule pays for the report.
	Eligible bool `json:"eligible"`
	// RangeMin and RangeMax are the base table range that applied.
	RangeMin int64 `json:"range_min"`
	RangeMax int64 `json:"range_max"`
	// Base is the base award within the range, placed by report quality.
	Base int64 `json:"base"`
	// BonusPercent and Bonus are the scenario bonus on top of Base.
	BonusPercent int64 `json:"bonus_percent"`
	Bonus        int64 `json:"bonus"`
	// FixedComponent names the component whose fixed award applied, if any.
	FixedComponent string `json:"fixed_component,omitempty"`
	// Computed is what the rules pay: Base+Bonus, or the fixed award.
	Computed int64 `json:"computed"`
	// Override replaces Computed when set.
	Override *Override `json:"override,omitempty"`
	// Explanation says, step by step, how Computed was reached.
	Explanation []string `json:"explanation"`
}

// Override is a manual award amount with its mandatory reason.
type Override struct {
	Amount int64  `json:"amount"`
	Reason string `json:"reason"`
}

// Amount is the amount to award: the override when present, else Computed.
func (a Award) Amount() int64 {
	if a.Override != nil {
		return a.Override.Amount
	}
	return a.Computed
}

// BountyEligible reports whether the award pays anything.
func (a Award) BountyEligible() bool { return a.Amount() > 0 }

// WithOverride returns a copy of a whose amount is replaced by amount.
// The reason is mandatory; the amount must be within 0 and MaxAmount.
func (a Award) WithOverride(amount int64, reason string) (Award, error) {
	if strings.TrimSpace(reason) == "" {
		return Award{}, fmt.Errorf("program.Award.WithOverride: %w", public.Errorf(public.Invalid, "%w", ErrOverrideReason))
	}
	if amount < 0 || amount > MaxAmount {
		return Award{}, fmt.Errorf("program.Award.WithOverride: %w", public.Errorf(public.Invalid, "%w: %d is outside 0-%d", ErrInvalidAmount, amount, MaxAmount))
	}
	a.Override = &Override{Amount: amount, Reason: strings.TrimSpace(reason)}
	a.Explanation = append(slices.Clip(a.Explanation), fmt.Sprintf("override: %d %s instead of %d: %s", amount, a.Currency, a.Computed, a.Override.Reason))
	return a, nil
}

// ComputeAward applies the program's award rules to a triaged report:
//
//  1. If the report's scenario has a fixed award for a product/component the
//     report affects, the report's triaged impact is one the fixed award
//     names, and the severity reaches its minimum, the award is the fixed
//     amount (the largest when several match); no bonus is added.
//  2. Otherwise the base table row for (impact, severity) gives a range; the
//     report quality places the base award in it: min + (max-min) * q / 100,
//     rounded to the nearest unit, where q is the quality's percentage.
//  3. The scenario bonus adds base * bonus_percent / 100, rounded to the
//     nearest unit.
//
// A report for which no row exists is not eligible and is awarded 0.
func (p *Program) ComputeAward(in AwardInput) (Award, error) {
	sc, ok := p.Scenario(in.Scenario)
	if !ok {
		return Award{}, fmt.Errorf("program.ComputeAward: %w", public.Errorf(public.Invalid, "%w: %q", ErrUnknownScenario, in.Scenario))
	}
	if !slices.ContainsFunc(p.Impacts, func(i Impact) bool { return i.ID == in.Impact }) {
		return Award{}, fmt.Errorf("program.ComputeAward: %w", public.Errorf(public.Invalid, "%w: %q", ErrUnknownImpact, in.Impact))
	}
	if !in.Severity.Valid() {
		return Award{}, fmt.Errorf("program.ComputeAward: severity %q is not one of none, low, medium, high, critical", in.Severity)
	}
	pct, ok := p.Awards.Quality[in.Quality]
	if !ok {
		return Award{}, fmt.Errorf("program.ComputeAward: quality %q is not one of low, medium, high", in.Quality)
	}
	if !p.HasProduct(in.Product) {
		return Award{}, fmt.Errorf("program.ComputeAward: %w", public.Errorf(public.Invalid, "%w: product %q", ErrOutOfScope, in.Product))
	}
	for _, c := range in.Components {
		if !p.InScope(in.Product, c) {
			return Award{}, fmt.Errorf("program.ComputeAward: %w", public.Errorf(public.Invalid, "%w: component %q of %q", ErrOutOfScope, c, in.Product))
		}
	}

	a := Award{Currency: p.Awards.Currency}
	var fixed *FixedAward
	for i, f := range sc.FixedAwards {
		if f.Product != in.Product || !slices.Contains(in.Components, f.Component) {
			continue
		}
		if !slices.Contains(f.Impacts, in.Impact) {
			names := "no impact"
			if len(f.Impacts) > 0 {
				names = strings.Join(f.Impacts, " or ")
			}
			a.Explanation = append(a.Explanation, fmt.Sprintf("fixed award for %s/%s not applied: it pays for %s, the report's impact is %s",
				f.Product, f.Component, names, in.Impact))
			continue
		}
		if f.MinSeverity != "" && !in.Severity.AtLeast(f.MinSeverity) {
			a.Explanation = append(a.Explanation, fmt.Sprintf("fixed award for %s/%s not applied: severity %s is below %s",
				f.Product, f.Component, in.Severity, f.MinSeverity))
			continue
		}
		if fixed == nil || f.Amount > fixed.Amount {
			fixed = &sc.FixedAwards[i]
		}
	}
	if fixed != nil {
		a.Eligible = true
		a.FixedComponent = fixed.Component
		a.Computed = fixed.Amount
		a.Explanation = append(a.Explanation, fmt.Sprintf("scenario %s pays a fixed %d %s for %s/%s",
			sc.ID, fixed.Amount, a.Currency, fixed.Product, fixed.Component))
		return a, nil
	}

	i := slices.IndexFunc(p.Awards.Base, func(b BaseAward) bool { return b.Impact == in.Impact && b.Severity == in.Severity })
	if i < 0 {
		a.Explanation = append(a.Explanation, fmt.Sprintf("no base award for impact %s at severity %s: not eligible", in.Impact, in.Severity))
		return a, nil
	}
	row := p.Awards.Base[i]
	a.RangeMin, a.RangeMax = row.Min, row.Max
	a.Base = row.Min + divRound((row.Max-row.Min)*pct, 100)
	a.BonusPercent = sc.BonusPercent
	a.Bonus = divRound(a.Base*sc.BonusPercent, 100)
	a.Computed = a.Base + a.Bonus
	a.Eligible = a.Computed > 0
	a.Explanation = append(a.Explanation,
		fmt.Sprintf("base range for %s/%s is %d-%d %s", in.Impact, in.Severity, row.Min, row.Max, a.Currency),
		fmt.Sprintf("%s quality places the base at %d%% of the range: %d", in.Quality, pct, a.Base))
	if sc.BonusPercent > 0 {
		a.Explanation = append(a.Explanation, fmt.Sprintf("scenario %s adds %d%%: %d", sc.ID, sc.BonusPercent, a.Bonus))
	}
	a.Explanation = append(a.Explanation, fmt.Sprintf("total %d %s", a.Computed, a.Currency))
	return a, nil
}

// divRound divides non-negative n by d, rounding half up.
func divRound(n, d int64) int64 { return (n + d/2) / d }
