// Package coverage holds the `rampart coverage` verb.
package coverage

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/cli/clienv"
)

// Command returns `rampart coverage`.
func Command(env *clienv.Env) *cobra.Command {
	var product, group string
	cmd := &cobra.Command{
		Use:   "coverage --product P [--group G]",
		Short: "Devices per release, the share on the newest, and each release's time to 50/90/99/100 %",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if product == "" {
				return fmt.Errorf("--product is required")
			}
			c, err := env.Client()
			if err != nil {
				return err
			}
			cov, err := c.GetCoverage(cmd.Context(), product, group)
			if err != nil {
				return err
			}
			return env.Print(cov, func(tb *clienv.Table) {
				tb.Row("RELEASE", "DEVICES", "SHARE", "50%", "90%", "99%", "100%")
				shares := map[string]string{}
				devices := map[string]int{}
				for _, r := range cov.PerRelease {
					shares[r.Release], devices[r.Release] = fmt.Sprintf("%.1f%%", r.Share*100), r.Devices
				}
				for _, r := range cov.Releases {
					row := []any{r.Release, devices[r.Release], shares[r.Release]}
					if shares[r.Release] == "" {
						row[2] = "0.0%"
					}
					for _, m := range r.Milestones {
						cell := ""
						if m.Reached {
							cell = (time.Duration(m.After) * time.Second).String()
						}
						row = append(row, cell)
					}
					tb.Row(row...)
				}
				tb.Section()
				tb.Line("%d devices; %.1f%% run the newest release, %s", cov.Devices, cov.NewestShare*100, cov.Newest)
			})
		},
	}
	cmd.Flags().StringVar(&product, "product", "", "product")
	cmd.Flags().StringVar(&group, "group", "", "only this device group")
	return cmd
}
