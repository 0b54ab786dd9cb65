package device

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clienv"
)

func newList(env *clienv.Env) *cobra.Command {
	var f client.DeviceFilter
	cmd := &cobra.Command{
		Use:   "list [--product P] [--group G]",
		Short: "List devices",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			ds, err := client.All(cmd.Context(), func(ctx context.Context, o client.ListOptions) (client.List[client.Device], error) {
				return c.ListDevices(ctx, f, o)
			})
			if err != nil {
				return err
			}
			return env.PrintList(ds, len(ds), "no devices match (a device appears once it enrols: rampart-agent enroll)", func(tb *clienv.Table) {
				tb.Row("ID", "PRODUCT", "GROUP", "STATE", "ATTESTATION", "RELEASE", "LAST SEEN")
				for _, d := range ds {
					seen := ""
					if d.LastSeenAt != nil {
						seen = clienv.When(*d.LastSeenAt)
					}
					tb.Row(d.ID, d.Product, d.Group, d.State, d.Attestation, d.CurrentRelease, seen)
				}
			})
		},
	}
	cmd.Flags().StringVar(&f.Product, "product", "", "only devices of this product")
	cmd.Flags().StringVar(&f.Group, "group", "", "only devices of this group (needs --product)")
	return cmd
}
