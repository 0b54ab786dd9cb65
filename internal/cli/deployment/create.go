package deployment

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clienv"
)

func newCreate(env *clienv.Env) *cobra.Command {
	var req client.CreateDeploymentRequest
	var phases string
	cmd := &cobra.Command{
		Use:   "create --product P --group G --release V [--phases 10,50,100] [--soak DURATION] [--emergency]",
		Short: "Deploy a signed release to a device group, phase by phase",
		Long: "Deploy a signed release to a device group. Each phase offers the release to a cumulative share of\n" +
			"the group; the next opens once the phase has soaked and enough devices reported, unless install\n" +
			"failures, timeouts or crashes cross the abort criteria, which pause the deployment.\n" +
			"--emergency offers the release to the whole group at once (an actively exploited vulnerability).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if req.Product == "" || req.Group == "" || req.Release == "" {
				return errors.New("--product, --group and --release are required")
			}
			if req.Emergency && (cmd.Flags().Changed("phases") || cmd.Flags().Changed("soak")) {
				return errors.New("--emergency offers the release to the whole group at once; drop --phases and --soak")
			}
			if !req.Emergency {
				for i, f := range strings.Split(phases, ",") {
					v, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(f), "%"), 64)
					if err != nil {
						return fmt.Errorf("--phases: phase %d: %q is not a percentage", i+1, f)
					}
					req.Phases = append(req.Phases, v)
				}
			} else {
				req.Soak = ""
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
	cmd.Flags().StringVar(&req.Product, "product", "", "product of the release")
	cmd.Flags().StringVar(&req.Group, "group", "", "device group to deploy to")
	cmd.Flags().StringVar(&req.Release, "release", "", "signed release version")
	cmd.Flags().StringVar(&phases, "phases", "10,50,100", "cumulative percentages of the group per phase; the last is 100")
	cmd.Flags().StringVar(&req.Soak, "soak", "1h", "minimum time each phase stays open, like 90m or 2d")
	cmd.Flags().BoolVar(&req.Emergency, "emergency", false, "offer the release to every device of the group at once")
	return cmd
}
