package token

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clienv"
)

func newCreate(env *clienv.Env) *cobra.Command {
	var req client.CreateTokenRequest
	cmd := &cobra.Command{
		Use:   "create --role admin|operator|reader [--tenant NAME]",
		Short: "Create an API token and print it once",
		Long: "Create an API token. The secret is printed once, on standard output, and is never\n" +
			"shown again: the server keeps only its hash. --tenant names another tenant, which needs\n" +
			"a service administrator's token; without it the token is for your own tenant.\n\n" +
			"Roles: reader reads everything of the tenant; operator also creates and changes products,\n" +
			"groups, devices, releases and deployments; admin also manages tokens and reads the audit log.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			t, err := c.CreateToken(cmd.Context(), req)
			if err != nil {
				return err
			}
			asJSON, err := env.JSON()
			if err != nil {
				return err
			}
			if asJSON {
				return env.Print(t, nil)
			}
			fmt.Fprintf(env.Stderr, "created token %s (%s of tenant %s); it is shown only now:\n", t.ID, t.Role, t.Tenant)
			fmt.Fprintln(env.Stdout, t.Secret)
			return nil
		},
	}
	cmd.Flags().StringVar(&req.Role, "role", "", "admin, operator or reader (required)")
	cmd.Flags().StringVar(&req.Tenant, "tenant", "", "tenant name (default: your own)")
	cmd.Flags().StringVar(&req.Description, "description", "", "what the token is for")
	cmd.MarkFlagRequired("role")
	return cmd
}
