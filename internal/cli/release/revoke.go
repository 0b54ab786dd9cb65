package release

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clienv"
)

func newRevoke(env *clienv.Env) *cobra.Command {
	var product, version, reason string
	var affected bool
	cmd := &cobra.Command{
		Use:   "revoke --product P (--version V --reason TEXT | --affected)",
		Short: "Mark a release vulnerable; it stays in history and is no longer assigned to devices",
		Long: "Marks one release vulnerable, or with --affected every signed release that fixed\n" +
			"vulnerability reports name as affected (the reason then names the reports and the fix).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if affected {
				if product == "" || version != "" || reason != "" {
					return fmt.Errorf("--affected takes --product only")
				}
				c, err := env.Client()
				if err != nil {
					return err
				}
				out, err := c.RevokeAffectedReleases(cmd.Context(), product)
				if err != nil {
					return err
				}
				if out.Revoked == nil {
					out.Revoked = []client.Release{}
				}
				return env.Print(out.Revoked, func(tb *clienv.Table) {
					if len(out.Revoked) == 0 {
						tb.Line("no signed release of %s is named affected by a vulnerability report with a linked fix; nothing revoked", product)
						return
					}
					tb.Row("PRODUCT", "VERSION", "STATE", "REASON")
					for _, r := range out.Revoked {
						tb.Row(r.Product, r.Version, r.State, r.RevokedReason)
					}
				})
			}
			if product == "" || version == "" || reason == "" {
				return fmt.Errorf("--product, --version and --reason are required")
			}
			c, err := env.Client()
			if err != nil {
				return err
			}
			r, err := c.RevokeRelease(cmd.Context(), product, version, client.RevokeReleaseRequest{Reason: reason})
			if err != nil {
				return err
			}
			return printRelease(env, r)
		},
	}
	cmd.Flags().StringVar(&product, "product", "", "product")
	cmd.Flags().StringVar(&version, "version", "", "release version")
	cmd.Flags().StringVar(&reason, "reason", "", "why, e.g. the advisory or CVE")
	cmd.Flags().BoolVar(&affected, "affected", false, "revoke every release that fixed vulnerability reports name as affected")
	return cmd
}
