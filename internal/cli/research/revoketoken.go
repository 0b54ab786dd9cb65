package research

import (
	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clienv"
)

func newRevokeToken(env *clienv.Env) *cobra.Command {
	var req client.RevokeResearcherTokenRequest
	cmd := &cobra.Command{
		Use:   "revoke-token RESEARCHER-ID [--reason TEXT]",
		Short: "Revoke a researcher's token (the team's side: an admin API token); every researcher route refuses it from then on",
		Long: "Revoke a researcher's token, for instance one that leaked. This is the team's verb: it takes an\n" +
			"admin API token, not a researcher token. The researcher ID is in the RESEARCHER column of\n" +
			"`rampart program applications NAME`. The researcher's applications and reports stay.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			r, err := c.RevokeResearcherToken(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			return env.Print(r, func(tb *clienv.Table) {
				tb.Row("RESEARCHER", r.ID)
				tb.Row("NAME", r.Name)
				tb.Row("EMAIL", r.Email)
				if r.TokenRevokedAt != nil {
					tb.Row("TOKEN REVOKED", clienv.When(*r.TokenRevokedAt))
				}
			})
		},
	}
	cmd.Flags().StringVar(&req.Reason, "reason", "", "why the token is revoked (kept in the audit record)")
	return cmd
}
