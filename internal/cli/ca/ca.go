// Package ca holds the `rampart ca` verbs.
package ca

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/cli/clienv"
)

// Command returns `rampart ca`.
func Command(env *clienv.Env) *cobra.Command {
	cmd := &cobra.Command{Use: "ca", Short: "Show the tenant's certificate authority and trusted TPM manufacturers"}
	cmd.AddCommand(newShow(env), newManufacturers(env))
	return cmd
}

func newShow(env *clienv.Env) *cobra.Command {
	return &cobra.Command{
		Use:   "show",
		Short: "Print the tenant CA certificate (PEM) that relying parties trust",
		Long: "Print the tenant's CA certificate in PEM. Relying parties trust it to accept the tenant's\n" +
			"device certificates, e.g. openssl verify -CAfile <(rampart ca show) device.pem.\n" +
			"Device certificates carry the URI SAN spiffe://<trust domain>/device/<id>; update-only\n" +
			"certificates carry spiffe://<trust domain>/update-only/device/<id>, where the trust domain\n" +
			"is <tenant>.<suffix> (rampart server --trust-domain-suffix). With --output json the answer\n" +
			"also holds the trust domain, subject, validity and SHA-256 fingerprint.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			got, err := c.GetCA(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON, err := env.JSON(); err != nil || asJSON {
				if err != nil {
					return err
				}
				return env.Print(got, nil)
			}
			_, err = fmt.Fprint(env.Stdout, got.PEM)
			return err
		},
	}
}
