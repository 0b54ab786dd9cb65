package audit

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/cli/clienv"
	"github.com/rampartsec/rampart/internal/public"
)

func newVerify(env *clienv.Env) *cobra.Command {
	return &cobra.Command{
		Use:   "verify",
		Short: "Check the audit hash chain; exit 0 only when it is intact",
		Long: "Ask the server to recompute every record's hash and link in the tenant's audit chain.\n" +
			"Exits 0 when the chain is intact; exits 1 and names the first bad record when any record\n" +
			"was altered, removed or reordered.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			v, err := c.VerifyAudit(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON, _ := env.JSON(); asJSON {
				if err := env.Print(v, nil); err != nil {
					return err
				}
			} else if v.Intact {
				fmt.Fprintf(env.Stdout, "audit chain intact: %d records, head %s\n", v.Records, v.Head)
			}
			if !v.Intact {
				return public.Errorf(public.Conflict, "%s; %d of the chain's %d records check out before it", v.Problem, v.Verified, v.Records)
			}
			return nil
		},
	}
}
