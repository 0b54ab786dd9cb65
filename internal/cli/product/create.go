package product

import (
	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clienv"
)

func newCreate(env *clienv.Env) *cobra.Command {
	var desc string
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a product with the groups Development, Field Test and Production",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			p, err := c.CreateProduct(cmd.Context(), client.CreateProductRequest{Name: args[0], Description: desc})
			if err != nil {
				return err
			}
			return printProduct(env, p)
		},
	}
	cmd.Flags().StringVar(&desc, "description", "", "one line describing the product")
	return cmd
}
