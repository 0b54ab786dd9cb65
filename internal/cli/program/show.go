package program

import (
	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/cli/clienv"
)

func newShow(env *clienv.Env) *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME",
		Short: "Show a program: scope, scenarios with their bonuses and fixed awards, and the award table",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			p, err := c.GetProgram(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printProgram(env, p)
		},
	}
}
