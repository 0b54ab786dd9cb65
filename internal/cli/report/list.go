package report

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clienv"
)

func newList(env *clienv.Env) *cobra.Command {
	var f client.ReportFilter
	cmd := &cobra.Command{
		Use:   "list [--program P] [--state S]",
		Short: "List vulnerability reports",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			rs, err := client.All(cmd.Context(), func(ctx context.Context, o client.ListOptions) (client.List[client.Report], error) {
				return c.ListReports(ctx, f, o)
			})
			if err != nil {
				return err
			}
			return env.PrintList(rs, len(rs), "no reports match", func(tb *clienv.Table) {
				tb.Row("ID", "PROGRAM", "STATE", "SEVERITY", "RESEARCHER", "SUBMITTED", "TITLE")
				for _, r := range rs {
					sev := r.Severity
					if sev == "" && r.CVSS40 != nil {
						sev = r.CVSS40.Severity + "?"
					} else if sev == "" && r.CVSS31 != nil {
						sev = r.CVSS31.Severity + "?"
					}
					tb.Row(r.Number, r.Program, r.State, sev, r.Researcher, clienv.When(r.SubmittedAt), r.Title)
				}
			})
		},
	}
	cmd.Flags().StringVar(&f.Program, "program", "", "only this program's reports")
	cmd.Flags().StringVar(&f.State, "state", "", "only reports in this state")
	return cmd
}
