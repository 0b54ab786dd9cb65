package report

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/cli/clienv"
)

func newComment(env *clienv.Env) *cobra.Command {
	return &cobra.Command{
		Use:   "comment ID TEXT...",
		Short: "Comment on a report's thread as the triage team",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := ParseNumber(args[0])
			if err != nil {
				return err
			}
			c, err := env.Client()
			if err != nil {
				return err
			}
			cm, err := c.CommentReport(cmd.Context(), n, strings.Join(args[1:], " "))
			if err != nil {
				return err
			}
			return env.Print(cm, func(tb *clienv.Table) {
				tb.Row("COMMENT", cm.ID, clienv.When(cm.CreatedAt))
			})
		},
	}
}
