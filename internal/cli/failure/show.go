package failure

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clienv"
)

func newShow(env *clienv.Env) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show a failure group: its fault, counts per release and deployment phase, and its latest report",
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
			return printGroup(env, g)
		},
	}
}

func printGroup(env *clienv.Env, g client.FailureGroup) error {
	return env.Print(g, func(tb *clienv.Table) {
		tb.Row("FIELD", "VALUE")
		tb.Row("id", g.ID)
		tb.Row("product", g.Product)
		tb.Row("signature", g.Signature)
		tb.Row("program", g.Program)
		tb.Row("component", g.Component)
		tb.Row("fault", g.FaultType)
		if g.Message != "" {
			tb.Row("message", g.Message)
		}
		for i, f := range g.Frames {
			tb.Row(fmt.Sprintf("frame %d", i), f)
		}
		tb.Row("status", g.Status)
		tb.Row("reports", g.Reports)
		if g.Devices > 0 {
			tb.Row("devices", g.Devices)
		}
		tb.Row("new in", g.NewIn)
		tb.Row("releases", strings.Join(g.Releases, ", "))
		if g.RegressedIn != "" {
			tb.Row("regressed in", g.RegressedIn)
		}
		tb.Row("first seen", clienv.When(g.FirstSeen))
		tb.Row("last seen", clienv.When(g.LastSeen))
		if len(g.Counts) > 0 {
			tb.Blank()
			tb.Row("RELEASE", "DEPLOYMENT", "PHASE", "REPORTS")
			for _, c := range g.Counts {
				phase := "-"
				if c.Phase > 0 {
					phase = strconv.Itoa(c.Phase)
				}
				tb.Row(c.Release, c.DeploymentID, phase, c.Reports)
			}
		}
		if len(g.Sample) > 0 {
			tb.Blank()
			tb.Row("latest report", string(g.Sample))
		}
	})
}
