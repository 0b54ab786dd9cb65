package release

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clienv"
)

func newRevoke(env *clienv.Env) *cobra.Command {
	var product, version, reason string
	cmd := &cobra.Command{
		Use:   "revoke --product P --version V --reason TEXT",
		Short: "Mark a release vulnerable; it stays in history and is no longer assigned to devices",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if product == "" || version == "" || reason == "" {
				return fmt.Errorf("--product, --version and --reason are required")
			}
			c, err := env.Client()
			if err != nil {
				return err
			}
			r, err := c.RevokeRelease(cmd.Context(), product, version, client.RevokeReleaseRequest{Reason: reason})
			if err != nil {
				return err
			}
			return printRelease(env, r)
		},
	}
	cmd.Flags().StringVar(&product, "product", "", "product")
	cmd.Flags().StringVar(&version, "version", "", "release version")
	cmd.Flags().StringVar(&reason, "reason", "", "why, e.g. the advisory or CVE")
	return cmd
}
