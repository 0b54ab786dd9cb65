package product

import (
	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/cli/clienv"
)

func newShow(env *clienv.Env) *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME",
		Short: "Show a product and its device groups",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			p, err := c.GetProduct(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printProduct(env, p)
		},
	}
}
