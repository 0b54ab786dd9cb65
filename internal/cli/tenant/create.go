package tenant

import (
	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clienv"
)

func newCreate(env *clienv.Env) *cobra.Command {
	return &cobra.Command{
		Use:   "create NAME",
		Short: "Create a tenant",
		Long: "Create a tenant: an organisation with its own products, devices, tokens and audit log.\n" +
			"Needs a service administrator's token (the first admin token is one). Then give the\n" +
			"tenant its own administrator with: rampart token create --tenant NAME --role admin",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			t, err := c.CreateTenant(cmd.Context(), client.CreateTenantRequest{Name: args[0]})
			if err != nil {
				return err
			}
			return env.Print(t, func(tb *clienv.Table) {
				tb.Row("ID", "NAME", "CREATED")
				tb.Row(t.ID, t.Name, clienv.When(t.CreatedAt))
			})
		},
	}
}
