package ca

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/cli/clienv"
)

func newManufacturers(env *clienv.Env) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "manufacturers [--set FILE]",
		Short: "Show or replace the TPM manufacturer CAs trusted for EK certificates",
		Long: "Print the PEM bundle of TPM manufacturer root and intermediate CAs the tenant trusts, or\n" +
			"replace it with --set FILE (which prints how many certificates it trusts, and their subjects). A TPM device is claimed only when its EK certificate chains to\n" +
			"one of them (or its EK hash was preauthorised with rampart device preauthorize).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			if file != "" {
				b, err := os.ReadFile(file)
				if err != nil {
					return err
				}
				if err := c.SetManufacturerCAs(cmd.Context(), string(b)); err != nil {
					return err
				}
				// Say what changed rather than echo the whole bundle back.
				var subjects []string
				for rest := b; ; {
					var blk *pem.Block
					if blk, rest = pem.Decode(rest); blk == nil {
						break
					}
					if cert, err := x509.ParseCertificate(blk.Bytes); err == nil {
						subjects = append(subjects, cert.Subject.String())
					}
				}
				fmt.Fprintf(env.Stdout, "the tenant now trusts %d TPM manufacturer CA certificates from %s\n", len(subjects), file)
				for _, s := range subjects {
					fmt.Fprintf(env.Stdout, "  %s\n", s)
				}
				return nil
			}
			got, err := c.GetManufacturerCAs(cmd.Context())
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
	cmd.Flags().StringVar(&file, "set", "", "replace the bundle with the PEM certificates in FILE")
	return cmd
}
