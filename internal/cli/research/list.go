package research

import (
	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clienv"
)

func newList(env *clienv.Env) *cobra.Command {
	return &cobra.Command{
		Use:   "reports",
		Short: "List your reports",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			rs, err := client.All(cmd.Context(), c.ResearcherReports)
			if err != nil {
				return err
			}
			return env.Print(rs, func(tb *clienv.Table) {
				tb.Row("ID", "PROGRAM", "STATE", "SUBMITTED", "TITLE")
				for _, r := range rs {
					tb.Row(r.Number, r.Program, r.State, clienv.When(r.SubmittedAt), r.Title)
				}
			})
		},
	}
}
