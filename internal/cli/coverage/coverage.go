// Package coverage holds the `rampart coverage` verb.
package coverage

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clienv"
)

// Command returns `rampart coverage`.
func Command(env *clienv.Env) *cobra.Command {
	var product, group string
	cmd := &cobra.Command{
		Use:   "coverage --product P [--group G]",
		Short: "Devices per release, the share on the newest, and each release's time to 50/90/99/100 %",
		Long: "Devices per release now, the share on the newest, and how long each release took, from its first\n" +
			"deployment (or its signing), to run on 50, 90, 99 and 100 % of the devices (counting devices on a\n" +
			"newer release, which carry its fixes); \"-\" is a share not reached. A version the devices ran\n" +
			"before Rampart managed them never spread and has no milestones.",
		Args: cobra.NoArgs,
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
			return printCoverage(env, cov)
		},
	}
	cmd.Flags().StringVar(&product, "product", "", "product")
	cmd.Flags().StringVar(&group, "group", "", "only this device group")
	return cmd
}

// printCoverage shows one row per release, newest first, with its time to each milestone.
func printCoverage(env *clienv.Env, cov client.Coverage) error {
	return env.Print(cov, func(tb *clienv.Table) {
		tb.Row("RELEASE", "DEVICES", "SHARE", "50%", "90%", "99%", "100%")
		shares := map[string]string{}
		devices := map[string]int{}
		for _, r := range cov.PerRelease {
			shares[r.Release], devices[r.Release] = fmt.Sprintf("%.1f%%", r.Share*100), r.Devices
		}
		var preinstalled []string
		for _, r := range cov.Releases {
			row := []any{r.Release, devices[r.Release], shares[r.Release]}
			if shares[r.Release] == "" {
				row[2] = "0.0%"
			}
			if r.Preinstalled {
				preinstalled = append(preinstalled, r.Release)
				row = append(row, "", "", "", "")
			}
			for _, m := range r.Milestones {
				cell := ""
				switch {
				case m.Reached && m.After == 0:
					cell = "<1s" // the API counts whole seconds; "0s" would read as instant
				case m.Reached:
					cell = (time.Duration(m.After) * time.Second).String()
				}
				row = append(row, cell)
			}
			tb.Row(row...)
		}
		// Devices on no release: "unknown" (claimed, never reported what they run). They count in
		// the fleet, never as covered, and have no milestones.
		listed := map[string]bool{}
		for _, r := range cov.Releases {
			listed[r.Release] = true
		}
		for _, r := range cov.PerRelease {
			if !listed[r.Release] {
				tb.Row(r.Release, r.Devices, fmt.Sprintf("%.1f%%", r.Share*100), "-", "-", "-", "-")
			}
		}
		for _, r := range preinstalled {
			tb.Line("%s ran on the devices before Rampart managed them: it never spread, so it has no milestones", r)
		}
		tb.Section()
		tb.Line("%d devices; %.1f%% run the newest release, %s", cov.Devices, cov.NewestShare*100, cov.Newest)
	})
}
