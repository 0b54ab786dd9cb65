package release

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/cli/clienv"
)

func newShow(env *clienv.Env) *cobra.Command {
	var product, version string
	cmd := &cobra.Command{
		Use:   "show --product P --version V",
		Short: "Show a release, its images and deltas",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if product == "" || version == "" {
				return fmt.Errorf("--product and --version are required")
			}
			c, err := env.Client()
			if err != nil {
				return err
			}
			r, err := c.GetRelease(cmd.Context(), product, version)
			if err != nil {
				return err
			}
			return printRelease(env, r)
		},
	}
	cmd.Flags().StringVar(&product, "product", "", "product")
	cmd.Flags().StringVar(&version, "version", "", "release version")
	return cmd
}
