package device

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/cli/clienv"
)

func newAttestations(env *clienv.Env) *cobra.Command {
	return &cobra.Command{
		Use:   "attestations ID",
		Short: "List a device's attestation results, newest first, with their reasons",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			list, err := c.ListAttestations(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return env.Print(list.Items, func(tb *clienv.Table) {
				tb.Row("AT", "STATUS", "CERTIFICATE", "REASONS")
				for _, a := range list.Items {
					var reasons []string
					for _, r := range a.Reasons {
						reasons = append(reasons, r.Code)
					}
					tb.Row(clienv.When(a.At), a.Status, a.Granted, strings.Join(reasons, ","))
				}
			})
		},
	}
}
