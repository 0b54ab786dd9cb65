package audit

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clienv"
)

func newList(env *clienv.Env) *cobra.Command {
	var action string
	cmd := &cobra.Command{
		Use:   "list [--action A]",
		Short: "List the tenant's audit records, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			rs, err := client.All(cmd.Context(), func(ctx context.Context, o client.ListOptions) (client.List[client.AuditRecord], error) {
				return c.ListAudit(ctx, action, o)
			})
			if err != nil {
				return err
			}
			return env.PrintList(rs, len(rs), "no audit records match", func(tb *clienv.Table) {
				tb.Row("SEQ", "AT", "ACTOR", "ACTION", "TARGET", "DETAILS")
				for _, r := range rs {
					tb.Row(r.Seq, clienv.When(r.At), r.Actor, r.Action, r.Target, string(r.Details))
				}
			})
		},
	}
	cmd.Flags().StringVar(&action, "action", "", "only records of this action, e.g. product.create")
	return cmd
}
