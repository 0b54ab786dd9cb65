package report

import (
	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/cli/clienv"
)

func newShow(env *clienv.Env) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show a report: state, scores, award, fix, devices still exposed, coverage over time, metrics and the thread",
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
			r, err := c.GetReport(cmd.Context(), n)
			if err != nil {
				return err
			}
			comments, err := c.ReportComments(cmd.Context(), n)
			if err != nil {
				return err
			}
			return PrintReport(env, r, comments)
		},
	}
}
