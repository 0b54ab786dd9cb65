// Package deployment holds the `rampart deployment` verbs: create, show, list, pause, resume
// and abort.
package deployment

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clienv"
)

// Command returns `rampart deployment`.
func Command(env *clienv.Env) *cobra.Command {
	cmd := &cobra.Command{Use: "deployment", Short: "Roll releases out to device groups phase by phase, and pause, resume or abort them"}
	cmd.AddCommand(newCreate(env), newShow(env), newList(env), newAction(env, "pause"), newAction(env, "resume"), newAction(env, "abort"))
	return cmd
}

func percent(v float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", v), "0"), ".") + "%"
}

// printDeployment shows a deployment and, with its progress, one row per phase.
func printDeployment(env *clienv.Env, d client.Deployment) error {
	return env.Print(d, func(tb *clienv.Table) {
		tb.Row("ID", "SEQ", "PRODUCT", "GROUP", "RELEASE", "STATE", "PHASE", "REASON")
		tb.Row(d.ID, d.Seq, d.Product, d.Group, d.Release, d.State, fmt.Sprintf("%d/%d", d.Phase, len(d.Phases)), d.Reason)
		tb.Blank()
		tb.Row("PHASE", "SHARE", "SOAK", "OPENED", "DEVICES", "REPORTED", "", "")
		for i, p := range d.Phases {
			opened := ""
			if p.OpenedAt != nil {
				opened = clienv.When(*p.OpenedAt)
			}
			tb.Row(i+1, percent(p.Percent), p.MinSoak, opened, p.Devices, p.Reported, "", "")
		}
		if pr := d.Progress; pr != nil {
			tb.Blank()
			tb.Row("DEVICES", "OFFERED", "INSTALLED", "FAILED", "TIMED OUT", "PENDING", "CRITERIA", "")
			tb.Row(pr.Devices, pr.Offered, pr.Installed, pr.Failed, pr.TimedOut, pr.Pending, pr.Decision, "")
			for _, f := range pr.Findings {
				tb.Row("", "", "", "", "", "", f.Action, f.Reason)
			}
		}
	})
}

func newCreate(env *clienv.Env) *cobra.Command {
	var req client.CreateDeploymentRequest
	cmd := &cobra.Command{
		Use:   "create --product P --group G --release V [--phases 10,50,100] [--soak DURATION] [--emergency]",
		Short: "Deploy a signed release to a device group",
		Long: "Offers the release to the group phase by phase: --phases are cumulative percentages of the group\n" +
			"(default 10,50,100), each open for at least --soak (default 1h, e.g. 90m or 2d) and until 90% of\n" +
			"the devices offered so far reported. Install failures, silent devices, crash rates and new crash\n" +
			"signatures pause it (doc/rollouts.md). --emergency offers the release to every device at once.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if req.Product == "" || req.Group == "" || req.Release == "" {
				return fmt.Errorf("--product, --group and --release are required")
			}
			if req.Emergency && (req.Phases != "" || req.Soak != "") {
				return fmt.Errorf("--emergency goes to every device at once: it takes no --phases or --soak")
			}
			c, err := env.Client()
			if err != nil {
				return err
			}
			d, err := c.CreateDeployment(cmd.Context(), req)
			if err != nil {
				return err
			}
			return printDeployment(env, d)
		},
	}
	cmd.Flags().StringVar(&req.Product, "product", "", "product")
	cmd.Flags().StringVar(&req.Group, "group", "", "device group")
	cmd.Flags().StringVar(&req.Release, "release", "", "release version (signed)")
	cmd.Flags().StringVar(&req.Phases, "phases", "", "cumulative percentages of the group, e.g. 10,50,100")
	cmd.Flags().StringVar(&req.Soak, "soak", "", "minimum time each phase stays open, e.g. 1h")
	cmd.Flags().BoolVar(&req.Emergency, "emergency", false, "an actively exploited vulnerability: every device at once")
	return cmd
}

func newShow(env *clienv.Env) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show a deployment: its phases, devices and what the abort criteria say",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			d, err := c.GetDeployment(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printDeployment(env, d)
		},
	}
}

func newList(env *clienv.Env) *cobra.Command {
	var f client.DeploymentFilter
	cmd := &cobra.Command{
		Use:   "list [--product P] [--group G] [--state S]",
		Short: "List deployments in sequence order",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			var all []client.Deployment
			o := client.ListOptions{}
			for {
				l, err := c.ListDeployments(cmd.Context(), f, o)
				if err != nil {
					return err
				}
				all = append(all, l.Items...)
				if l.Next == "" {
					break
				}
				o.After = l.Next
			}
			return env.Print(all, func(tb *clienv.Table) {
				tb.Row("ID", "SEQ", "PRODUCT", "GROUP", "RELEASE", "STATE", "PHASE", "CREATED")
				for _, d := range all {
					tb.Row(d.ID, d.Seq, d.Product, d.Group, d.Release, d.State, fmt.Sprintf("%d/%d", d.Phase, len(d.Phases)), clienv.When(d.CreatedAt))
				}
			})
		},
	}
	cmd.Flags().StringVar(&f.Product, "product", "", "only this product")
	cmd.Flags().StringVar(&f.Group, "group", "", "only this group")
	cmd.Flags().StringVar(&f.State, "state", "", "only this state: active, paused, aborted or completed")
	return cmd
}

func newAction(env *clienv.Env, action string) *cobra.Command {
	short := map[string]string{
		"pause":  "Pause a deployment: no device is newly offered the release until it is resumed",
		"resume": "Resume a paused deployment; evidence before the resume no longer trips the criteria",
		"abort":  "Abort a deployment for good; a rollback is a new deployment",
	}[action]
	var reason string
	cmd := &cobra.Command{
		Use:   action + " ID [--reason TEXT]",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			d, err := c.ActOnDeployment(cmd.Context(), args[0], action, client.DeploymentActionRequest{Reason: reason})
			if err != nil {
				return err
			}
			return printDeployment(env, d)
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, recorded in the audit log")
	return cmd
}
