package report

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clienv"
)

func newAward(env *clienv.Env) *cobra.Command {
	var override int64
	var reason string
	cmd := &cobra.Command{
		Use:   "award ID [--override AMOUNT --reason TEXT]",
		Short: "Award a triaged report by the program's rules, or override the amount with a reason",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := ParseNumber(args[0])
			if err != nil {
				return err
			}
			var req client.AwardRequest
			if cmd.Flags().Changed("override") {
				req.Override = &override
				req.Reason = reason
			} else if reason != "" {
				return fmt.Errorf("--reason goes with --override")
			}
			c, err := env.Client()
			if err != nil {
				return err
			}
			e, err := c.AwardReport(cmd.Context(), n, req)
			if err != nil {
				return err
			}
			return env.Print(e, func(tb *clienv.Table) {
				tb.Row("AWARD", fmt.Sprintf("%d %s", e.Amount, e.Currency))
				if e.OverrideReason != "" {
					tb.Row("COMPUTED", fmt.Sprintf("%d %s", e.Computed, e.Currency))
				}
				for _, line := range e.Explanation {
					tb.More("", line)
				}
			})
		},
	}
	cmd.Flags().Int64Var(&override, "override", 0, "award this amount instead of the computed one")
	cmd.Flags().StringVar(&reason, "reason", "", "why the override (required with --override)")
	return cmd
}
