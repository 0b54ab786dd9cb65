// Package failure holds the `rampart failure` verbs: list and show crash groups.
package failure

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clienv"
)

// Command returns `rampart failure`.
func Command(env *clienv.Env) *cobra.Command {
	cmd := &cobra.Command{Use: "failure", Short: "Crash reports from devices, grouped by signature"}
	cmd.AddCommand(newList(env), newShow(env), newResolve(env))
	return cmd
}

func top(frames []string) string {
	if len(frames) == 0 {
		return ""
	}
	return frames[0]
}

func marks(g client.FailureGroup) string {
	var m []string
	if g.RegressedIn != "" && g.Status == "open" {
		m = append(m, "regressed in "+g.RegressedIn)
	}
	if g.Status == "resolved" {
		m = append(m, "resolved")
	}
	return strings.Join(m, ", ")
}

func newList(env *clienv.Env) *cobra.Command {
	var f client.FailureFilter
	cmd := &cobra.Command{
		Use:   "list [--product P] [--release V] [--status open|resolved]",
		Short: "List failure groups with their report counts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			all, err := client.All(cmd.Context(), func(ctx context.Context, o client.ListOptions) (client.List[client.FailureGroup], error) {
				return c.ListFailureGroups(ctx, f, o)
			})
			if err != nil {
				return err
			}
			return env.PrintList(all, len(all), "no failure groups match: no crash report was grouped yet", func(tb *clienv.Table) {
				tb.Row("ID", "PRODUCT", "PROGRAM", "FAULT", "TOP FRAME", "REPORTS", "NEW IN", "LAST SEEN", "STATUS")
				for _, g := range all {
					status := g.Status
					if m := marks(g); m != "" {
						status = m
					}
					tb.Row(g.ID, g.Product, g.Program, g.FaultType, top(g.Frames), g.Count, g.NewInRelease, clienv.When(g.LastSeen), status)
				}
			})
		},
	}
	cmd.Flags().StringVar(&f.Product, "product", "", "only this product")
	cmd.Flags().StringVar(&f.Release, "release", "", "only groups reported on this release")
	cmd.Flags().StringVar(&f.Status, "status", "", "only open or resolved groups")
	return cmd
}

func newShow(env *clienv.Env) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show a failure group: its signature, frames, counts per release and phase, and a sample report",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			g, err := c.GetFailureGroup(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return env.Print(g, func(tb *clienv.Table) {
				tb.Row("ID", g.ID)
				tb.Row("SIGNATURE", g.Signature)
				tb.Row("PROGRAM", g.Program)
				tb.Row("FAULT", g.FaultType)
				tb.Row("STATUS", g.Status+" "+marks(g.FailureGroup))
				tb.Row("NEW IN", g.NewInRelease)
				tb.Row("REPORTS", fmt.Sprintf("%d from %d devices", g.Count, g.Devices))
				for i, f := range g.Frames {
					tb.Row(fmt.Sprintf("FRAME %d", i), f)
				}
				for _, ct := range g.Counts {
					where := "outside a deployment"
					if ct.Phase > 0 {
						where = fmt.Sprintf("phase %d of %s", ct.Phase, ct.DeploymentID)
					}
					tb.Row("RELEASE "+ct.Release, fmt.Sprintf("%d reports, %s", ct.Reports, where))
				}
				var sample json.RawMessage = g.Sample
				tb.Row("SAMPLE", string(sample))
			})
		},
	}
}

func newResolve(env *clienv.Env) *cobra.Command {
	return &cobra.Command{
		Use:   "resolve ID",
		Short: "Mark a failure group resolved; it reopens if it comes back on another release",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			g, err := c.ResolveFailureGroup(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return env.Print(g, func(tb *clienv.Table) {
				tb.Row("ID", "STATUS", "REPORTS")
				tb.Row(g.ID, g.Status, g.Count)
			})
		},
	}
}
