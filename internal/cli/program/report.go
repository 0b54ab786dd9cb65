package program

import (
	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/cli/clienv"
)

func newReport(env *clienv.Env) *cobra.Command {
	return &cobra.Command{
		Use:   "report NAME",
		Short: "Print the program summary: applications, researchers, reports, awards and median times",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			r, err := c.ProgramReport(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return env.Print(r, func(tb *clienv.Table) {
				for _, row := range r.Rows {
					tb.Row(row[0], row[1])
				}
			})
		},
	}
}
