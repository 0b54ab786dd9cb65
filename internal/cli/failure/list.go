package failure

import (
	"context"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clienv"
)

func newList(env *clienv.Env) *cobra.Command {
	var f client.FailureFilter
	cmd := &cobra.Command{
		Use:   "list [--product P] [--release V] [--status open|resolved]",
		Short: "List failure groups with their report counts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			gs, err := client.All(cmd.Context(), func(ctx context.Context, o client.ListOptions) (client.List[client.FailureGroup], error) {
				return c.ListFailureGroups(ctx, f, o)
			})
			if err != nil {
				return err
			}
			return env.Print(gs, func(tb *clienv.Table) {
				tb.Row("ID", "PRODUCT", "SIGNATURE", "PROGRAM", "FAULT", "REPORTS", "NEW IN", "RELEASES", "STATUS", "LAST SEEN", "TOP FRAMES")
				for _, g := range gs {
					status := g.Status
					if g.RegressedIn != "" && g.Status == "open" {
						status = "regressed in " + g.RegressedIn
					}
					tb.Row(g.ID, g.Product, short(g.Signature), g.Program, g.FaultType, g.Reports, g.NewIn, strings.Join(g.Releases, ","), status, clienv.When(g.LastSeen), top(g.Frames))
				}
			})
		},
	}
	cmd.Flags().StringVar(&f.Product, "product", "", "only this product's groups")
	cmd.Flags().StringVar(&f.Release, "release", "", "only groups with reports on this release")
	cmd.Flags().StringVar(&f.Status, "status", "", "only open or resolved groups")
	return cmd
}
