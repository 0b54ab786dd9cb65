// Package demo is the `rampart demo` verb: an embedded server, a simulated fleet and the whole
// vulnerability loop on one machine (internal/demo). Only internal/cli imports it.
package demo

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/cli/clienv"
	"github.com/rampartsec/rampart/internal/demo"
)

// RunFunc runs one `rampart` command line in-process (cli.Run); the demo drives its server
// with the same verbs a user types.
type RunFunc func(ctx context.Context, args []string, stdout, stderr io.Writer) int

// Command is `rampart demo`.
func Command(env *clienv.Env, run RunFunc) *cobra.Command {
	var devices int
	var serve bool
	var dir, logLevel, cpuProfile, listen string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "demo [--devices N] [--data DIR] [--serve]",
		Short: "Play the whole loop on this machine: server, simulated fleet, report, revocation, emergency fix, 100 % coverage",
		Long: "Starts an embedded server (SQLite) in --data (default: a new temporary folder), creates a tenant,\n" +
			"a product and its groups, enrols and claims N simulated devices (each a real agent with a software\n" +
			"attester), releases 1.0.0 and installs it everywhere. Then a researcher reports a vulnerability,\n" +
			"1.0.0 is revoked (its devices drop to update-only certificates), the fix 1.0.1 is signed and\n" +
			"deployed as an emergency, and the fleet heals to 100 %. It prints the timeline and writes\n" +
			"coverage.svg (open it in a browser), demo.json (the record of the run) and the CSAF\n" +
			"advisory rampart-edge-challenge-1.json into the folder. Exits non-zero, naming the step, when a\n" +
			"part it needs fails.\n\n" +
			"With --serve it then keeps the server and the fleet running until interrupted (Ctrl-C), and\n" +
			"prints the web console's address (https://ADDRESS/login), the administrator token to sign in\n" +
			"with, and the researcher portal's address with the demo researcher's token: the whole loop,\n" +
			"in the browser. --listen fixes the address (default: 127.0.0.1 on a free port).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if devices < 1 {
				return fmt.Errorf("--devices must be at least 1")
			}
			level := slog.LevelError
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level: %w", err)
			}
			stopProfile, err := clienv.StartCPUProfile(cpuProfile)
			if err != nil {
				return err
			}
			defer stopProfile()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			_, err = demo.Run(ctx, demo.Config{Devices: devices, Dir: dir, Out: env.Stdout, CLI: run, Timeout: timeout, Serve: serve, Listen: listen,
				Logger: slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: level}))})
			return err
		},
	}
	cmd.Flags().IntVar(&devices, "devices", 1000, "simulated devices")
	cmd.Flags().BoolVar(&serve, "serve", false, "after the story, keep serving the console and the fleet until interrupted, and print how to sign in")
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:0", "the server's address (host:port); port 0 picks a free one")
	cmd.Flags().StringVar(&dir, "data", "", "folder for the server, the devices, the chart and the record (default: a new temporary folder)")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "longest wait for the fleet at each step")
	cmd.Flags().StringVar(&cpuProfile, "cpu-profile", "", "write a CPU profile of the whole run (server and fleet) to FILE, for go tool pprof")
	cmd.Flags().StringVar(&logLevel, "log-level", "error", "server and agent log level on stderr: debug, info, warn, error")
	return cmd
}
