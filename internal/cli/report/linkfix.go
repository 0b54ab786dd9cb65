package report

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clienv"
)

func newLinkFix(env *clienv.Env) *cobra.Command {
	var req client.LinkFixRequest
	var released string
	cmd := &cobra.Command{
		Use:   "link-fix ID --fixed VERSION --affected VERSION[,VERSION...] [--released-at TIME] [--revoke-affected]",
		Short: "Link a report to the release that fixes it and the releases it affects; coverage is tracked from then on",
		Long: "Link a report to the release that fixes it and the releases it affects; coverage is tracked from then on.\n\n" +
			"Every version must be a release of the report's product (rampart release create). The fix's release\n" +
			"time defaults to when the fix release was signed (created, while unsigned). With --revoke-affected the\n" +
			"affected releases are also revoked, as rampart release revoke does, with the report number as the\n" +
			"reason (admin role); without it they stay as they are.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := ParseNumber(args[0])
			if err != nil {
				return err
			}
			if released != "" {
				t, err := time.Parse(time.RFC3339, released)
				if err != nil {
					return fmt.Errorf("--released-at %q is not an RFC 3339 time such as 2026-07-28T09:00:00Z", released)
				}
				req.ReleasedAt = &t
			}
			c, err := env.Client()
			if err != nil {
				return err
			}
			if _, err := c.LinkFix(cmd.Context(), n, req); err != nil {
				return err
			}
			r, err := c.GetReport(cmd.Context(), n)
			if err != nil {
				return err
			}
			return PrintReport(env, r, nil)
		},
	}
	cmd.Flags().StringVar(&req.Fixed, "fixed", "", "the release version that fixes the report")
	cmd.Flags().StringSliceVar(&req.Affected, "affected", nil, "the release versions the report affects")
	cmd.Flags().StringVar(&released, "released-at", "", "when the fix release was published (default: when it was signed)")
	cmd.Flags().BoolVar(&req.RevokeAffected, "revoke-affected", false, "also revoke the affected releases (admin role)")
	cmd.MarkFlagRequired("fixed")
	cmd.MarkFlagRequired("affected")
	return cmd
}
