// Package deployment holds the `rampart deployment` verbs: create, show, list, pause, resume
// and abort. Only internal/cli imports it.
package deployment

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clienv"
)

// Command returns `rampart deployment`.
func Command(env *clienv.Env) *cobra.Command {
	cmd := &cobra.Command{Use: "deployment", Short: "Roll a signed release out to a device group in failure-gated phases"}
	cmd.AddCommand(newCreate(env), newShow(env), newList(env),
		newOperate(env, "pause", "Pause an active deployment: no device is offered the release until it is resumed"),
		newOperate(env, "resume", "Resume a paused deployment; the abort criteria judge only what happens from now on"),
		newOperate(env, "abort", "Abort a deployment for good; a fix or a rollback is a new deployment"))
	return cmd
}

func percent(v float64) string {
	return strconv.FormatFloat(v, 'f', -1, 64) + "%"
}

func phaseList(d client.Deployment) string {
	parts := make([]string, len(d.Phases))
	for i, p := range d.Phases {
		parts[i] = strconv.FormatFloat(p.Percent, 'f', -1, 64)
	}
	return strings.Join(parts, ",")
}

// printDeployment writes the deployment, then each phase, then what the criteria found.
func printDeployment(env *clienv.Env, d client.Deployment) error {
	return env.Print(d, func(tb *clienv.Table) {
		tb.Row("FIELD", "VALUE")
		tb.Row("id", d.ID)
		tb.Row("seq", d.Seq)
		tb.Row("product", d.Product)
		tb.Row("group", d.Group)
		tb.Row("release", d.Release)
		tb.Row("previous release", d.PreviousRelease)
		state := d.State
		if d.Emergency {
			state += " (emergency)"
		}
		tb.Row("state", state)
		tb.Row("phase", fmt.Sprintf("%d of %d (%s)", d.Phase, len(d.Phases), phaseList(d)))
		tb.Row("reason", d.Reason)
		if t := d.Tally; t != nil {
			tb.Row("devices", t.Devices)
			tb.Row("offered", t.Offered)
			tb.Row("installed", t.Installed)
			tb.Row("failed", t.Failed)
			tb.Row("timed out", t.TimedOut)
			tb.Row("pending", t.Pending)
			tb.Row("crashes on release", fmt.Sprintf("%d on %d devices in %.1f device-hours", t.NewCrashes, t.NewCrashedDevices, t.NewExposureHours))
		}
		tb.Row("created", clienv.When(d.CreatedAt)+" by "+d.CreatedBy)
		tb.Blank()
		tb.Row("PHASE", "SHARE", "OPENED", "DEVICES", "REPORTED", "MIN SOAK")
		for i, p := range d.Phases {
			opened := ""
			if p.OpenedAt != nil {
				opened = clienv.When(*p.OpenedAt)
			}
			tb.Row(i+1, percent(p.Percent), opened, p.Devices, p.Reported, p.MinSoak)
		}
		if len(d.Findings) > 0 {
			tb.Blank()
			tb.Row("CRITERION", "ACTION", "FINDING")
			for _, f := range d.Findings {
				tb.Row(f.Criterion, f.Action, f.Reason)
			}
		}
	})
}
