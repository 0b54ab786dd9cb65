package program

import (
	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clienv"
)

// newDecide returns `program accept` or `program reject`.
func newDecide(env *clienv.Env, accept bool) *cobra.Command {
	var reason string
	use, short := "accept PROGRAM APPLICATION-ID", "Accept an application; the researcher may then submit reports"
	if !accept {
		use, short = "reject PROGRAM APPLICATION-ID --reason TEXT", "Reject an application"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			var a client.Application
			if accept {
				a, err = c.AcceptApplication(cmd.Context(), args[0], args[1], reason)
			} else {
				a, err = c.RejectApplication(cmd.Context(), args[0], args[1], reason)
			}
			if err != nil {
				return err
			}
			return printApplications(env, []client.Application{a})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (required to reject)")
	if !accept {
		cmd.MarkFlagRequired("reason")
	}
	return cmd
}
