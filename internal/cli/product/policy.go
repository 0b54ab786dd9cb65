package product

import (
	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clienv"
)

func newPolicy(env *clienv.Env) *cobra.Command {
	var acceptSoftware bool
	cmd := &cobra.Command{
		Use:   "policy NAME [--accept-software=true|false]",
		Short: "Show or set a product's attestation policy",
		Long: "Show a product's attestation policy, or change it with --accept-software. A product\n" +
			"refuses devices with a software attester (a key in a file, for development boards)\n" +
			"until --accept-software=true; accepted, their results are warnings.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			var p client.AttestationPolicy
			if cmd.Flags().Changed("accept-software") {
				p.AcceptSoftware = acceptSoftware
				err = c.SetAttestationPolicy(cmd.Context(), args[0], p)
			} else {
				p, err = c.GetAttestationPolicy(cmd.Context(), args[0])
			}
			if err != nil {
				return err
			}
			return env.Print(p, func(tb *clienv.Table) {
				tb.Row("PRODUCT", "ACCEPT SOFTWARE ATTESTERS")
				tb.Row(args[0], p.AcceptSoftware)
			})
		},
	}
	cmd.Flags().BoolVar(&acceptSoftware, "accept-software", false, "admit devices with a software attester")
	return cmd
}
