package token

import (
	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clienv"
)

func newList(env *clienv.Env) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List your tenant's API tokens (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			ts, err := client.All(cmd.Context(), c.ListTokens)
			if err != nil {
				return err
			}
			return env.PrintList(ts, len(ts), "no tokens", func(tb *clienv.Table) {
				tb.Row("ID", "ROLE", "SERVICE", "CREATED", "REVOKED", "DESCRIPTION")
				for _, t := range ts {
					revoked := ""
					if t.RevokedAt != nil {
						revoked = clienv.When(*t.RevokedAt)
					}
					tb.Row(t.ID, t.Role, t.Service, clienv.When(t.CreatedAt), revoked, t.Description)
				}
			})
		},
	}
}
