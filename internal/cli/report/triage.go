package report

import (
	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clienv"
)

func newTriage(env *clienv.Env) *cobra.Command {
	var req client.TriageRequest
	cmd := &cobra.Command{
		Use:   "triage ID --state STATE [--reason TEXT] [--duplicate-of ID] [--impact I] [--severity S] [--quality Q] [--cve CVE] [--cvss VECTOR]",
		Short: "Move a report to another state (triaged, needs_more_info, duplicate, by_design, ...) and record triage decisions",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := ParseNumber(args[0])
			if err != nil {
				return err
			}
			c, err := env.Client()
			if err != nil {
				return err
			}
			r, err := c.TriageReport(cmd.Context(), n, req)
			if err != nil {
				return err
			}
			return PrintReport(env, r, nil)
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.State, "state", "", "new state: triaged, needs_more_info, new, resolved, duplicate, by_design, informative, not_applicable, spam")
	f.StringVar(&req.Reason, "reason", "", "why; required to close other than as duplicate, and to reopen")
	f.Int64Var(&req.DuplicateOf, "duplicate-of", 0, "the original report, with --state duplicate (it must have arrived first)")
	f.StringVar(&req.Impact, "impact", "", "impact category of the program's award table")
	f.StringVar(&req.Severity, "severity", "", "severity: low, medium, high, critical")
	f.StringVar(&req.Quality, "quality", "", "report quality: low, medium, high")
	f.StringVar(&req.CVE, "cve", "", "CVE identifier, once assigned")
	f.StringVar(&req.CVSS, "cvss", "", "the team's CVSS 3.1 or 4.0 vector, saved on the report beside the researcher's")
	cmd.MarkFlagRequired("state")
	return cmd
}
