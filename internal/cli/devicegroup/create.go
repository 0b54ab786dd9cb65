package devicegroup

import (
	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clienv"
)

func newCreate(env *clienv.Env) *cobra.Command {
	var product, desc string
	cmd := &cobra.Command{
		Use:   "create --product P NAME",
		Short: "Create a device group in a product",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			g, err := c.CreateGroup(cmd.Context(), product, client.CreateGroupRequest{Name: args[0], Description: desc})
			if err != nil {
				return err
			}
			return env.Print(g, func(tb *clienv.Table) {
				tb.Row("PRODUCT", "GROUP", "DEVICES", "CREATED")
				tb.Row(g.Product, g.Name, g.Devices, clienv.When(g.CreatedAt))
			})
		},
	}
	cmd.Flags().StringVar(&product, "product", "", "product name (required)")
	cmd.Flags().StringVar(&desc, "description", "", "one line describing the group")
	cmd.MarkFlagRequired("product")
	return cmd
}
