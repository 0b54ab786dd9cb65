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
		Long: "List a device's attestation results, newest first: the status, the certificate it got,\n" +
			"the rule that decided (the reason code of the worst finding, or all_known), the evidence\n" +
			"(measured_boot when the firmware's log replayed, agent_only otherwise) and every reason.\n" +
			"--output json adds the whole boot state: Secure Boot, db and dbx, the EFI applications by\n" +
			"Authenticode digest, the kernel command line and the IMA counts (doc/attestation.md).",
		Args: cobra.ExactArgs(1),
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
				tb.Row("AT", "STATUS", "CERTIFICATE", "RULE", "EVIDENCE", "REASONS")
				for _, a := range list.Items {
					var reasons []string
					for _, r := range a.Reasons {
						reasons = append(reasons, r.Code)
					}
					evidence := "-"
					if a.Boot != nil {
						evidence = a.Boot.Evidence
					}
					tb.Row(clienv.When(a.At), a.Status, a.Granted, a.Rule, evidence, strings.Join(reasons, ","))
				}
			})
		},
	}
}
