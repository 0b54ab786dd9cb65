// Package report holds the `rampart report` verbs: list, show, triage, award, pay, comment and
// link-fix for vulnerability reports.
package report

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clienv"
	"github.com/rampartsec/rampart/internal/program"
)

// Command returns `rampart report`.
func Command(env *clienv.Env) *cobra.Command {
	cmd := &cobra.Command{Use: "report", Short: "List, show, triage and award vulnerability reports, and link them to their fix"}
	cmd.AddCommand(newList(env), newShow(env), newTriage(env), newAward(env), newPay(env), newComment(env), newLinkFix(env))
	return cmd
}

// ParseNumber parses a report number given on the command line.
func ParseNumber(s string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimPrefix(s, "#"), 10, 64)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("report ID %q must be a positive whole number", s)
	}
	return n, nil
}

func score(s *client.CVSSScore) string {
	if s == nil {
		return ""
	}
	return fmt.Sprintf("%.1f %s  %s", s.Score, s.Severity, s.Vector)
}

func when(t *time.Time) string {
	if t == nil {
		return ""
	}
	return clienv.When(*t)
}

// MaxExposedShown is how many exposed device IDs the table lists; JSON lists all the server sent.
const MaxExposedShown = 10

// PrintReport prints one report; the team's view adds award, fix and metrics.
func PrintReport(env *clienv.Env, r client.Report, comments []client.Comment) error {
	v := struct {
		client.Report
		Comments []client.Comment `json:"comments,omitempty"`
	}{r, comments}
	return env.Print(v, func(tb *clienv.Table) { reportRows(tb, r, comments, nil) })
}

// PrintResearcherReport prints a researcher's view of their report: the report, its award
// with the rules' explanation, and the fix with the share of the fleet that runs it.
func PrintResearcherReport(env *clienv.Env, r client.ResearcherReport, comments []client.Comment) error {
	v := struct {
		client.ResearcherReport
		Comments []client.Comment `json:"comments,omitempty"`
	}{r, comments}
	base := r.Report
	if a := r.Award; a != nil {
		base.Award = &client.LedgerEntry{Kind: "award", Amount: a.Amount, Currency: a.Currency, Computed: a.Computed, OverrideReason: a.OverrideReason}
		base.Paid = a.Paid
	}
	return env.Print(v, func(tb *clienv.Table) {
		reportRows(tb, base, comments, func() {
			if a := r.Award; a != nil {
				for _, e := range a.Explanation {
					tb.Row("WHY", e)
				}
			}
			if f := r.Fix; f != nil {
				tb.Row("FIXED IN", f.Fixed+" (released "+clienv.When(f.ReleasedAt)+")")
				tb.Row("FLEET ON FIX", fmt.Sprintf("%.1f %% of the product's devices (%s)", f.CoveragePercent, clienv.When(f.At)))
			}
		})
	})
}

// reportRows are the rows of a report; more, when not nil, adds rows before the thread.
func reportRows(tb *clienv.Table, r client.Report, comments []client.Comment, more func()) {
	tb.Row("REPORT", r.Number)
	tb.Row("TITLE", r.Title)
	tb.Row("PROGRAM", r.Program)
	tb.Row("RESEARCHER", r.Researcher)
	tb.Row("SCENARIO", r.Scenario)
	tb.Row("AFFECTS", r.Product+": "+strings.Join(r.Components, ", ")+" "+strings.Join(r.Releases, ", "))
	state := r.State
	if r.DuplicateOf != 0 {
		state += fmt.Sprintf(" of #%d", r.DuplicateOf)
	}
	if r.StateReason != "" {
		state += " (" + r.StateReason + ")"
	}
	tb.Row("STATE", state)
	if r.NeedsInfoDeadline != nil {
		tb.Row("CLOSES AT", when(r.NeedsInfoDeadline))
	}
	tb.Row("CVSS 3.1", score(r.CVSS31))
	tb.Row("CVSS 4.0", score(r.CVSS40))
	tb.Row("TRIAGE", strings.Trim(strings.Join([]string{r.Impact, r.Severity, r.Quality, r.CVE}, " "), " "))
	tb.Row("SUBMITTED", clienv.When(r.SubmittedAt))
	if r.Award != nil {
		a := fmt.Sprintf("%d %s", r.Award.Amount, r.Award.Currency)
		if r.Award.OverrideReason != "" {
			a += fmt.Sprintf(" (override of %d: %s)", r.Award.Computed, r.Award.OverrideReason)
		}
		tb.Row("AWARD", a)
		tb.Row("PAID", fmt.Sprintf("%d %s", r.Paid, r.Award.Currency))
	}
	if f := r.Fix; f != nil {
		tb.Row("FIXED IN", f.Fixed+" (released "+clienv.When(f.ReleasedAt)+")")
		affected := strings.Join(f.Affected, ", ")
		if len(f.Revoked) > 0 {
			affected += " (revoked: " + strings.Join(f.Revoked, ", ") + ")"
		}
		tb.Row("AFFECTED", affected)
		if f.Devices == 0 {
			tb.Row("EXPOSED", fmt.Sprintf("0 of 0 devices (%s has no devices yet; they appear as they enrol)", r.Product))
		} else {
			v := fmt.Sprintf("%d of %d devices", f.Exposed, f.Devices)
			if f.Unknown > 0 {
				v += fmt.Sprintf(" (%d never reported a release, so not counted as covered)", f.Unknown)
			}
			tb.Row("EXPOSED", v)
		}
		for i, id := range f.ExposedDevices {
			if i == MaxExposedShown {
				tb.More("", fmt.Sprintf("... and %d more (-o json lists %d)", f.Exposed-MaxExposedShown, len(f.ExposedDevices)))
				break
			}
			tb.More("", id)
		}
		for _, m := range f.Milestones {
			v := "not yet"
			if m.Reached && m.At != nil {
				v = fmt.Sprintf("%s (%s after the fix release)", clienv.When(*m.At), program.Span(time.Duration(m.After)*time.Second))
			}
			tb.Row("COVERAGE "+m.Threshold, v)
		}
		for _, c := range f.Coverage {
			pct := "-" // an empty fleet is neither covered nor exposed
			if c.Total > 0 {
				pct = fmt.Sprintf("%.1f%%", 100*float64(c.Covered)/float64(c.Total))
			}
			tb.Row("COVERED", fmt.Sprintf("%s  %d/%d  %s", clienv.When(c.At), c.Covered, c.Total, pct))
		}
	}
	for _, m := range program.Milestones() {
		if secs, ok := r.Metrics[string(m)]; ok {
			tb.Row("TIME TO "+strings.ToUpper(strings.ReplaceAll(string(m), "_", " ")), program.Span(time.Duration(secs)*time.Second).String())
		}
	}
	if more != nil {
		more()
	}
	for _, c := range comments {
		tb.Row("COMMENT", clienv.When(c.CreatedAt)+" "+c.AuthorKind+": "+strings.ReplaceAll(c.Body, "\n", " "))
	}
}
