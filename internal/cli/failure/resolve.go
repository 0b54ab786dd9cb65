package failure

import (
	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/cli/clienv"
)

func newResolve(env *clienv.Env) *cobra.Command {
	return &cobra.Command{
		Use:   "resolve ID",
		Short: "Mark a failure group resolved; a report on a release it was not seen on reopens it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			g, err := c.ResolveFailureGroup(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printGroup(env, g)
		},
	}
}
