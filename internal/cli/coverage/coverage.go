// Package coverage holds `rampart coverage`: devices per release, the share on the newest
// release, and each release's time to 50/90/99/100 % of the fleet. Only internal/cli imports it.
package coverage

import (
	"errors"
	"strconv"
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
		Short: "Devices per release, share on the newest, and each release's time to 50/90/99/100 % of the fleet",
		Long: "Coverage is read back from the history of which release each device runs. A release's milestone is\n" +
			"the first instant at which devices running it or a newer release made up that share of the fleet,\n" +
			"measured from the release's first deployment.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if product == "" {
				return errors.New("--product is required")
			}
			c, err := env.Client()
			if err != nil {
				return err
			}
			cov, err := c.GetCoverage(cmd.Context(), product, group)
			if err != nil {
				return err
			}
			return env.Print(cov, func(tb *clienv.Table) { table(tb, cov) })
		},
	}
	cmd.Flags().StringVar(&product, "product", "", "product whose fleet to measure")
	cmd.Flags().StringVar(&group, "group", "", "only this device group")
	return cmd
}

func pct(share float64) string {
	return strconv.FormatFloat(share*100, 'f', 1, 64) + "%"
}

// Since formats how long after a release's deployment a milestone was reached.
func Since(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Hour:
		return d.Round(time.Second).String()
	}
	return d.Round(time.Minute).String()
}

func table(tb *clienv.Table, cov client.Coverage) {
	scope := cov.Product
	if cov.Group != "" {
		scope += " / " + cov.Group
	}
	tb.Row("FLEET", "DEVICES", "NEWEST", "ON NEWEST")
	tb.Row(scope, cov.Devices, cov.Newest, pct(cov.NewestShare))
	tb.Blank()
	tb.Row("RELEASE", "DEVICES", "SHARE")
	for _, r := range cov.PerRelease {
		tb.Row(r.Release, r.Devices, pct(r.Share))
	}
	tb.Blank()
	header := []any{"RELEASE", "SINCE"}
	if len(cov.Releases) > 0 {
		for _, m := range cov.Releases[0].Milestones {
			header = append(header, "TO "+strconv.FormatFloat(m.Threshold*100, 'f', -1, 64)+"%")
		}
	}
	tb.Row(header...)
	for _, r := range cov.Releases {
		row := []any{r.Release, clienv.When(r.Since)}
		for _, m := range r.Milestones {
			cell := "not yet"
			if m.Reached {
				cell = Since(time.Duration(m.AfterSeconds * float64(time.Second)))
			}
			row = append(row, cell)
		}
		tb.Row(row...)
	}
}
