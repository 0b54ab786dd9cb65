package devicegroup

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clienv"
)

func newList(env *clienv.Env) *cobra.Command {
	var product string
	cmd := &cobra.Command{
		Use:   "list --product P",
		Short: "List a product's device groups",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			gs, err := client.All(cmd.Context(), func(ctx context.Context, o client.ListOptions) (client.List[client.Group], error) {
				return c.ListGroups(ctx, product, o)
			})
			if err != nil {
				return err
			}
			return env.PrintList(gs, len(gs), "no device groups match", func(tb *clienv.Table) {
				tb.Row("PRODUCT", "GROUP", "DEVICES", "CREATED", "DESCRIPTION")
				for _, g := range gs {
					tb.Row(g.Product, g.Name, g.Devices, clienv.When(g.CreatedAt), g.Description)
				}
			})
		},
	}
	cmd.Flags().StringVar(&product, "product", "", "product name (required)")
	cmd.MarkFlagRequired("product")
	return cmd
}
