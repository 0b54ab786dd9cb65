package release

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clienv"
)

func newCreate(env *clienv.Env) *cobra.Command {
	var product, version string
	var images []string
	cmd := &cobra.Command{
		Use:   "create --product P --version V --image ID [--image ID ...]",
		Short: "Create a draft release of a product from uploaded images",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if product == "" || version == "" || len(images) == 0 {
				return fmt.Errorf("--product, --version and at least one --image are required")
			}
			c, err := env.Client()
			if err != nil {
				return err
			}
			r, err := c.CreateRelease(cmd.Context(), product, client.CreateReleaseRequest{Version: version, Images: images})
			if err != nil {
				return err
			}
			return printRelease(env, r)
		},
	}
	cmd.Flags().StringVar(&product, "product", "", "product the release is for")
	cmd.Flags().StringVar(&version, "version", "", "release version, like 1.2.3")
	cmd.Flags().StringArrayVar(&images, "image", nil, "image ID from `rampart image add` (repeat, one per component)")
	return cmd
}
