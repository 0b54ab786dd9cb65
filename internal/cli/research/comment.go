package research

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/cli/clienv"
	"github.com/rampartsec/rampart/internal/cli/report"
)

func newComment(env *clienv.Env) *cobra.Command {
	return &cobra.Command{
		Use:   "comment ID TEXT...",
		Short: "Answer on your report's thread (a report waiting for more information goes back to triage)",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := report.ParseNumber(args[0])
			if err != nil {
				return err
			}
			c, err := env.Client()
			if err != nil {
				return err
			}
			cm, err := c.ResearcherComment(cmd.Context(), n, strings.Join(args[1:], " "))
			if err != nil {
				return err
			}
			return env.Print(cm, func(tb *clienv.Table) {
				tb.Row("COMMENT", cm.ID, clienv.When(cm.CreatedAt))
			})
		},
	}
}
