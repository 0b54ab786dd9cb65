package product

import (
	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clienv"
)

func newList(env *clienv.Env) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List products",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			ps, err := client.All(cmd.Context(), c.ListProducts)
			if err != nil {
				return err
			}
			return env.PrintList(ps, len(ps), "no products yet (rampart product create NAME)", func(tb *clienv.Table) {
				tb.Row("NAME", "CREATED", "DESCRIPTION")
				for _, p := range ps {
					tb.Row(p.Name, clienv.When(p.CreatedAt), p.Description)
				}
			})
		},
	}
}
