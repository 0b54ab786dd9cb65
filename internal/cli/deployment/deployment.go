// Package deployment holds the `rampart deployment` verbs: create, show, list, pause, resume
// and abort.
package deployment

import (
	"context"
	"fmt"
	"strings"
	"time"

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

// soak writes a Go duration as people do: 1h rather than 1h0m0s, 1h30m, 45s; 0s stays 0s.
func soak(s string) string {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return s
	}
	out := ""
	for _, u := range []struct {
		unit time.Duration
		name string
	}{{time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if n := d / u.unit; n > 0 {
			out += fmt.Sprintf("%d%s", n, u.name)
			d -= n * u.unit
		}
	}
	if out == "" {
		return s
	}
	return out
}

// printDeployment shows a deployment as sections, each a table of its own: the deployment, its
// abort criteria, one row per phase and, with its progress, the device counts and findings.
func printDeployment(env *clienv.Env, d client.Deployment) error {
	return env.Print(d, func(tb *clienv.Table) {
		tb.Row("ID", "SEQ", "PRODUCT", "GROUP", "RELEASE", "STATE", "PHASE")
		tb.Row(d.ID, d.Seq, d.Product, d.Group, d.Release, d.State, fmt.Sprintf("%d/%d", d.Phase, len(d.Phases)))
		if d.Reason != "" {
			tb.Line("reason: %s", d.Reason)
		}
		if d.CriteriaSummary != "" {
			tb.Section()
			tb.Line("abort criteria:")
			for _, c := range strings.Split(d.CriteriaSummary, "; ") {
				tb.Line("  %s", c)
			}
		}
		tb.Section()
		tb.Row("PHASE", "SHARE", "SOAK", "OPENED", "DEVICES", "REPORTED")
		for i, p := range d.Phases {
			opened := ""
			if p.OpenedAt != nil {
				opened = clienv.When(*p.OpenedAt)
			}
			tb.Row(i+1, percent(p.Percent), soak(p.MinSoak), opened, p.Devices, p.Reported)
		}
		if pr := d.Progress; pr != nil {
			tb.Section()
			tb.Row("DEVICES", "OFFERED", "INSTALLED", "FAILED", "INTERRUPTED", "TIMED OUT", "PENDING", "CRITERIA SAY")
			tb.Row(pr.Devices, pr.Offered, pr.Installed, pr.Failed, pr.Interrupted, pr.TimedOut, pr.Pending, pr.Decision)
			if len(pr.Findings) > 0 {
				tb.Section()
				tb.Row("FINDING", "ACTION", "REASON")
				for _, f := range pr.Findings {
					tb.Row(f.Criterion, f.Action, f.Reason)
				}
			}
		}
	})
}

// criteriaFlags are the abort-criteria flags of `deployment create`, each a setting of
// rollout.Criteria.WithSettings, with what it says in --help.
var criteriaFlags = []struct{ flag, setting, usage string }{
	{"on-failure", "on_failure", "what a crossed criterion does: pause (default) or abort"},
	{"max-install-failures", "max_install_failures", "act when more than this share of reporting devices failed to install, e.g. 5% (default), or off"},
	{"min-sample", "min_sample", "devices that must report before install failures and timeouts are judged (default 20)"},
	{"report-deadline", "report_deadline", "a device offered the release and silent this long has timed out, e.g. 24h (default) or 2d"},
	{"max-timeouts", "max_timeouts", "act when more than this share of devices timed out, e.g. 10% (default), or off"},
	{"max-crash-ratio", "max_crash_ratio", "act when the release crashes this many times as often as the previous one, e.g. 2 (default), or off"},
	{"max-new-signature-devices", "max_new_signature_devices", "act when a crash signature new in this release reaches more devices than this, e.g. 3 (default), or off"},
}

func newCreate(env *clienv.Env) *cobra.Command {
	var req client.CreateDeploymentRequest
	settings := make([]string, len(criteriaFlags))
	cmd := &cobra.Command{
		Use:   "create --product P --group G --release V [--phases 10,50,100] [--soak DURATION] [--emergency] [criteria flags]",
		Short: "Deploy a signed release to a device group",
		Long: "Offers the release to the group phase by phase: --phases are cumulative percentages of the group\n" +
			"(default 10,50,100), each open for at least --soak (default 1h, e.g. 90m or 2d) and until 90% of\n" +
			"the devices offered so far reported. --emergency offers the release to every device at once.\n\n" +
			"Abort criteria pause the deployment (or, with --on-failure abort, end it): install failures,\n" +
			"devices that stay silent past --report-deadline, a crash rate above the previous release's, and\n" +
			"a new crash signature on several devices. The --max-* flags set their thresholds or turn one off\n" +
			"(doc/rollouts.md).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if req.Product == "" || req.Group == "" || req.Release == "" {
				return fmt.Errorf("--product, --group and --release are required")
			}
			if req.Emergency && (req.Phases != "" || req.Soak != "") {
				return fmt.Errorf("--emergency goes to every device at once: it takes no --phases or --soak")
			}
			for i, f := range criteriaFlags {
				if cmd.Flags().Changed(f.flag) {
					if req.Criteria == nil {
						req.Criteria = map[string]string{}
					}
					req.Criteria[f.setting] = settings[i]
				}
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
	for i, f := range criteriaFlags {
		cmd.Flags().StringVar(&settings[i], f.flag, "", f.usage)
	}
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
			all, err := client.All(cmd.Context(), func(ctx context.Context, o client.ListOptions) (client.List[client.Deployment], error) {
				return c.ListDeployments(ctx, f, o)
			})
			if err != nil {
				return err
			}
			return env.PrintList(all, len(all), "no deployments match (rampart deployment create)", func(tb *clienv.Table) {
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
