package program

import (
	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clienv"
)

func newList(env *clienv.Env) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List research programs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			ps, err := client.All(cmd.Context(), c.ListPrograms)
			if err != nil {
				return err
			}
			return env.PrintList(ps, len(ps), "no research programs (rampart program create NAME --rules FILE)", func(tb *clienv.Table) {
				tb.Row("NAME", "TITLE", "CREATED")
				for _, p := range ps {
					tb.Row(p.Name, p.Title, clienv.When(p.CreatedAt))
				}
			})
		},
	}
}
