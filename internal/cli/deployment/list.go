package deployment

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clienv"
)

func newList(env *clienv.Env) *cobra.Command {
	var f client.DeploymentFilter
	cmd := &cobra.Command{
		Use:   "list [--product P] [--group G] [--state S]",
		Short: "List deployments in sequence order",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			ds, err := client.All(cmd.Context(), func(ctx context.Context, o client.ListOptions) (client.List[client.Deployment], error) {
				return c.ListDeployments(ctx, f, o)
			})
			if err != nil {
				return err
			}
			return env.Print(ds, func(tb *clienv.Table) {
				tb.Row("SEQ", "ID", "PRODUCT", "GROUP", "RELEASE", "STATE", "PHASE", "CREATED", "REASON")
				for _, d := range ds {
					tb.Row(d.Seq, d.ID, d.Product, d.Group, d.Release, d.State, fmt.Sprintf("%d/%d (%s)", d.Phase, len(d.Phases), phaseList(d)), clienv.When(d.CreatedAt), d.Reason)
				}
			})
		},
	}
	cmd.Flags().StringVar(&f.Product, "product", "", "only this product's deployments")
	cmd.Flags().StringVar(&f.Group, "group", "", "only this group's deployments")
	cmd.Flags().StringVar(&f.State, "state", "", "only deployments in this state: active, paused, aborted or completed")
	return cmd
}
