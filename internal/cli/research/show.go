package research

import (
	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/cli/clienv"
	"github.com/rampartsec/rampart/internal/cli/report"
)

func newShow(env *clienv.Env) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show one of your reports, its award, the share of the fleet on its fix, and its thread",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := report.ParseNumber(args[0])
			if err != nil {
				return err
			}
			c, err := env.Client()
			if err != nil {
				return err
			}
			r, err := c.ResearcherReport(cmd.Context(), n)
			if err != nil {
				return err
			}
			comments, err := c.ResearcherComments(cmd.Context(), n)
			if err != nil {
				return err
			}
			return report.PrintResearcherReport(env, r, comments)
		},
	}
}
