// Package sim is the `rampart sim` verb: a simulated fleet of real agents (internal/sim) against
// a running server, with a progress line while it runs and a summary at the end. Only
// internal/cli imports it.
package sim

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/certpool"
	"github.com/rampartsec/rampart/internal/cli/clienv"
	"github.com/rampartsec/rampart/internal/public"
	"github.com/rampartsec/rampart/internal/sim"
)

// Command is `rampart sim`.
func Command(env *clienv.Env) *cobra.Command {
	var (
		devices, concurrency            int
		product, group, dir             string
		offline, powerCut               float64
		crashRates, failureRates        string
		cpuProfile                      string
		interval, waitTimeout, duration time.Duration
		progressEvery                   time.Duration
		seed                            uint64
	)
	cmd := &cobra.Command{
		Use:   "sim --devices N --product P [--group G]",
		Short: "Run a simulated fleet of real agents against a running server",
		Long: "Runs N simulated devices in this process, each a real agent (software attester, its own\n" +
			"identity key, certificate, state folder and TLS connections), against the server given by\n" +
			"--server/--ca-file/--token (or rampart login). It enrols them, claims them into --product and\n" +
			"--group through the admin API (the product must accept software attesters:\n" +
			"rampart product policy P --accept-software), then runs their check-in loops until Ctrl-C or\n" +
			"--duration, printing progress to stderr and a summary at the end. Device state is kept under\n" +
			"--dir, so a second run continues with the same devices.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if devices < 1 || product == "" {
				return errors.New("--devices (at least 1) and --product are required")
			}
			crash, err := sim.ParseRates(crashRates)
			if err != nil {
				return public.Errorf(public.Invalid, "--crash-rate: %w", err)
			}
			failures, err := sim.ParseRates(failureRates)
			if err != nil {
				return public.Errorf(public.Invalid, "--install-failure: %w", err)
			}
			conn, err := env.Connection()
			if err != nil {
				return err
			}
			roots, err := x509.SystemCertPool()
			if err != nil {
				roots = x509.NewCertPool()
			}
			if conn.CAFile != "" {
				var err error
				roots, err = certpool.FromFile(conn.CAFile)
				if errors.Is(err, certpool.ErrNoCertificate) {
					return fmt.Errorf("--ca-file %s holds no PEM certificate", conn.CAFile)
				}
				if err != nil {
					return fmt.Errorf("read --ca-file: %w", err)
				}
			}
			c, err := env.Client()
			if err != nil {
				return err
			}
			if dir == "" {
				dir = filepath.Join(os.TempDir(), "rampart-sim")
			}
			stopProfile, err := clienv.StartCPUProfile(cpuProfile)
			if err != nil {
				return err
			}
			defer stopProfile()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if duration > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, duration)
				defer cancel()
			}
			start := time.Now()
			say := func(format string, a ...any) {
				fmt.Fprintf(env.Stderr, "[%6.1fs] "+format+"\n", append([]any{time.Since(start).Seconds()}, a...)...)
			}
			f, err := sim.New(ctx, sim.Config{Server: conn.Server, RootCAs: roots, Dir: dir, Devices: devices,
				Concurrency: concurrency, Offline: offline, CrashRate: crash, InstallFailure: failures, PowerCut: powerCut,
				Interval: interval, WaitTimeout: waitTimeout, Seed: seed,
				// The fleet's warnings (failed long-polls, counted by reason) go to stderr with the
				// progress; the agents' own logs are not printed.
				Logger:      slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
				AgentLogger: slog.New(slog.DiscardHandler)})
			if err != nil {
				return err
			}
			defer f.Close()
			say("%d devices prepared under %s", devices, dir)
			if err := f.Enroll(ctx); err != nil {
				return err
			}
			say("enrolled %d devices", devices)
			if err := f.Claim(ctx, c, product, group); err != nil {
				return err
			}
			say("claimed into %s/%s", product, group)
			go func() {
				t := time.NewTicker(progressEvery)
				defer t.Stop()
				for {
					select {
					case <-ctx.Done():
						return
					case <-t.C:
						say("%s", f.Progress())
					}
				}
			}()
			if err := f.Start(ctx); err != nil && ctx.Err() == nil {
				return err
			}
			say("first check-ins done: %s", f.Progress())
			f.Run(ctx)
			p := f.Progress()
			say("stopped after %s", time.Since(start).Round(time.Millisecond))
			return env.Print(p, func(t *clienv.Table) {
				t.Row("RELEASE", "DEVICES", "SHARE")
				for _, rel := range slices.Sorted(maps.Keys(p.Releases)) {
					n, name := p.Releases[rel], rel
					if name == "" {
						name = "(none)"
					}
					t.Row(name, n, fmt.Sprintf("%.1f %%", 100*float64(n)/float64(p.Devices)))
				}
				t.Section()
				t.Row("devices", p.Devices)
				t.Row("online", p.Online)
				t.Row("enrolled", p.Enrolled)
				t.Row("attested", p.Attested)
				t.Row("update-only", p.UpdateOnly)
				t.Row("check-ins", p.CheckIns)
				t.Row("crash reports", p.Crashes)
				t.Row("failed installs", p.FailedInstalls)
				t.Row("power cuts", p.PowerCuts)
				t.Row("errors", p.Errors)
				t.Row("long-poll failures", p.LongPollFailures)
			})
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&devices, "devices", 0, "number of simulated devices")
	fl.StringVar(&product, "product", "", "product to claim the devices into")
	fl.StringVar(&group, "group", "Development", "device group to claim the devices into")
	fl.StringVar(&dir, "dir", "", "folder for the devices' state (default TMPDIR/rampart-sim)")
	fl.IntVar(&concurrency, "concurrency", 0, "enrolments and first attestations at once (default 4 per CPU)")
	fl.Float64Var(&offline, "offline", 0, "share of devices (0..1) that enrol but never check in")
	fl.StringVar(&crashRates, "crash-rate", "", "per release, probability of a crash report after a check-in: 1.0.0=0.02,1.0.1=0")
	fl.StringVar(&failureRates, "install-failure", "", "per release, probability that its trial boot fails the health check: 1.0.1=0.05")
	fl.Float64Var(&powerCut, "power-cut", 0, "probability (0..1) that a check-in cuts power during the updater's file writes")
	fl.DurationVar(&interval, "interval", time.Hour, "check-in interval when no wake-up comes (jittered ±10 %)")
	fl.DurationVar(&waitTimeout, "wait-timeout", 5*time.Minute, "longest long-poll on /device/v1/wait")
	fl.DurationVar(&duration, "duration", 0, "stop after this long (default: until Ctrl-C)")
	fl.DurationVar(&progressEvery, "progress", 2*time.Second, "how often to print progress")
	fl.Uint64Var(&seed, "seed", 0, "seed of the random choices (default: random)")
	fl.StringVar(&cpuProfile, "cpu-profile", "", "write a CPU profile of the simulator until it stops to FILE (go tool pprof), for benchmarks")
	return cmd
}
