package report

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clienv"
)

func newPay(env *clienv.Env) *cobra.Command {
	var req client.PaymentRequest
	cmd := &cobra.Command{
		Use:   "pay ID --amount N [--note TEXT]",
		Short: "Record a payment against a report's award in the ledger",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := ParseNumber(args[0])
			if err != nil {
				return err
			}
			c, err := env.Client()
			if err != nil {
				return err
			}
			e, err := c.RecordPayment(cmd.Context(), n, req)
			if err != nil {
				return err
			}
			return env.Print(e, func(tb *clienv.Table) {
				tb.Row("PAID", fmt.Sprintf("%d %s", e.Amount, e.Currency))
			})
		},
	}
	cmd.Flags().Int64Var(&req.Amount, "amount", 0, "amount paid, in whole currency units")
	cmd.Flags().StringVar(&req.Note, "note", "", "a note, e.g. the payment reference")
	cmd.MarkFlagRequired("amount")
	return cmd
}
