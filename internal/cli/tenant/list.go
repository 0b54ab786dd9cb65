package tenant

import (
	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clienv"
)

func newList(env *clienv.Env) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List tenants",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			ts, err := client.All(cmd.Context(), c.ListTenants)
			if err != nil {
				return err
			}
			return env.PrintList(ts, len(ts), "no tenants (rampart tenant create NAME)", func(tb *clienv.Table) {
				tb.Row("ID", "NAME", "CREATED")
				for _, t := range ts {
					tb.Row(t.ID, t.Name, clienv.When(t.CreatedAt))
				}
			})
		},
	}
}
