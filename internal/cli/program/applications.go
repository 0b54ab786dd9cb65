package program

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clienv"
)

func newApplications(env *clienv.Env) *cobra.Command {
	return &cobra.Command{
		Use:   "applications NAME",
		Short: "List a program's applications",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			as, err := client.All(cmd.Context(), func(ctx context.Context, o client.ListOptions) (client.List[client.Application], error) {
				return c.ListApplications(ctx, args[0], o)
			})
			if err != nil {
				return err
			}
			return printApplications(env, as)
		},
	}
}
