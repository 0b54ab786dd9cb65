package release

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clienv"
)

func newList(env *clienv.Env) *cobra.Command {
	var product string
	cmd := &cobra.Command{
		Use:   "list --product P",
		Short: "List a product's releases, oldest first, with their state and images",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if product == "" {
				return fmt.Errorf("--product is required")
			}
			c, err := env.Client()
			if err != nil {
				return err
			}
			all, err := client.All(cmd.Context(), func(ctx context.Context, o client.ListOptions) (client.List[client.Release], error) {
				return c.ListReleases(ctx, product, o)
			})
			if err != nil {
				return err
			}
			if all == nil {
				all = []client.Release{}
			}
			return env.Print(all, func(tb *clienv.Table) {
				if len(all) == 0 {
					tb.Line("product %s has no releases yet (rampart release create)", product)
					return
				}
				tb.Row("VERSION", "STATE", "IMAGES", "CREATED", "SIGNED", "REVOKED")
				for _, r := range all {
					var images []string
					for _, im := range r.Images {
						images = append(images, im.Component+" "+im.Version)
					}
					signed, revoked := "", ""
					if r.SignedAt != nil {
						signed = clienv.When(*r.SignedAt)
					}
					if r.RevokedAt != nil {
						revoked = clienv.When(*r.RevokedAt)
					}
					tb.Row(r.Version, r.State, strings.Join(images, ", "), clienv.When(r.CreatedAt), signed, revoked)
				}
			})
		},
	}
	cmd.Flags().StringVar(&product, "product", "", "product")
	return cmd
}
