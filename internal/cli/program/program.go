// Package program holds the `rampart program` verbs: research programs, their applications
// and their summary report.
package program

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clienv"
	"github.com/rampartsec/rampart/internal/program"
)

// Command returns `rampart program`.
func Command(env *clienv.Env) *cobra.Command {
	cmd := &cobra.Command{Use: "program", Short: "Create and show research programs, decide applications, print the program report"}
	cmd.AddCommand(newCreate(env), newList(env), newShow(env), newReport(env), newApplications(env), newInvite(env),
		newDecide(env, true), newDecide(env, false))
	return cmd
}

// printProgram prints a program's rules: scope, scenarios and the award table.
func printProgram(env *clienv.Env, p client.Program) error {
	rules, err := program.ParseStoredRules(p.Rules)
	if err != nil {
		return fmt.Errorf("the server sent rules this CLI cannot read: %w", err)
	}
	return env.Print(p, func(tb *clienv.Table) {
		tb.Row("PROGRAM", p.Name)
		tb.Row("TITLE", rules.Title)
		period := "open"
		if rules.Starts != nil || rules.Ends != nil {
			period = clienv.When(deref(rules.Starts)) + " to " + clienv.When(deref(rules.Ends))
		}
		tb.Row("PERIOD", period)
		for _, pr := range rules.Scope.Products {
			tb.Row("SCOPE", pr.Name+": "+strings.Join(pr.Components, ", "))
		}
		tb.Row("NEEDS-INFO TIMEOUT", rules.NeedsInfoTimeout.String())
		tb.Row("MAX ATTACHMENT", strconv.FormatInt(rules.MaxAttachmentBytes, 10)+" bytes")
		tb.Section()
		tb.Row("SCENARIO", "BONUS", "FIXED AWARDS", "TITLE")
		for _, s := range rules.Scenarios {
			var fixed []string
			for _, f := range s.FixedAwards {
				v := fmt.Sprintf("%d %s for %s in %s/%s", f.Amount, rules.Awards.Currency, strings.Join(f.Impacts, " or "), f.Product, f.Component)
				if f.MinSeverity != "" {
					v += " (" + string(f.MinSeverity) + "+)"
				}
				fixed = append(fixed, v)
			}
			tb.Row(s.ID, fmt.Sprintf("+%d%%", s.BonusPercent), strings.Join(fixed, "; "), s.Title)
		}
		tb.Section()
		tb.Row("IMPACT", "SEVERITY", "RANGE ("+rules.Awards.Currency+")")
		for _, b := range rules.Awards.Base {
			tb.Row(b.Impact, string(b.Severity), fmt.Sprintf("%d-%d", b.Min, b.Max))
		}
	})
}

func printApplications(env *clienv.Env, as []client.Application) error {
	return env.Print(as, func(tb *clienv.Table) {
		tb.Row("ID", "RESEARCHER", "NAME", "EMAIL", "COUNTRY", "STATUS", "APPLIED", "REASON")
		for _, a := range as {
			tb.Row(a.ID, a.Researcher, a.Name, a.Email, a.Country, a.Status, clienv.When(deref(a.AppliedAt)), a.Reason)
		}
	})
}
