// Package cli is the `rampart` command: the server, the admin verbs of CLI.md, and later the
// simulator and the demo. Each noun lives in its own package with one file per verb. Only
// cmd/rampart imports it.
package cli

import (
	"context"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/cli/advisory"
	"github.com/rampartsec/rampart/internal/cli/audit"
	"github.com/rampartsec/rampart/internal/cli/backup"
	"github.com/rampartsec/rampart/internal/cli/ca"
	"github.com/rampartsec/rampart/internal/cli/clienv"
	"github.com/rampartsec/rampart/internal/cli/coverage"
	"github.com/rampartsec/rampart/internal/cli/demo"
	"github.com/rampartsec/rampart/internal/cli/deployment"
	"github.com/rampartsec/rampart/internal/cli/device"
	"github.com/rampartsec/rampart/internal/cli/devicegroup"
	"github.com/rampartsec/rampart/internal/cli/failure"
	"github.com/rampartsec/rampart/internal/cli/image"
	"github.com/rampartsec/rampart/internal/cli/keys"
	"github.com/rampartsec/rampart/internal/cli/login"
	"github.com/rampartsec/rampart/internal/cli/product"
	"github.com/rampartsec/rampart/internal/cli/program"
	"github.com/rampartsec/rampart/internal/cli/release"
	"github.com/rampartsec/rampart/internal/cli/report"
	"github.com/rampartsec/rampart/internal/cli/research"
	"github.com/rampartsec/rampart/internal/cli/server"
	"github.com/rampartsec/rampart/internal/cli/sim"
	"github.com/rampartsec/rampart/internal/cli/tenant"
	"github.com/rampartsec/rampart/internal/cli/token"
)

// Version is set at build time with -ldflags "-X github.com/rampartsec/rampart/internal/cli.Version=...".
var Version = "dev"

// Root builds the command tree around env.
func Root(env *clienv.Env) *cobra.Command {
	root := &cobra.Command{
		Use:   "rampart",
		Short: "Rampart: attestation, short-lived certificates, signed staged updates and vulnerability response for device fleets",
		Long: "Rampart is a self-hostable security service for fleets of connected Linux devices.\n\n" +
			"Start a server with `rampart server --data DIR`, then log in with the first admin token it\n" +
			"writes: `rampart login --server https://127.0.0.1:8443 --ca-file DIR/service-ca.pem --token-file DIR/admin.token`.",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       Version,
	}
	env.AddFlags(root)
	// --version has no -v shorthand: -v means nothing in rampart or rampart-agent, rather than
	// version here and verbose there.
	root.Flags().Bool("version", false, "print rampart's version")
	root.AddCommand(
		server.Command(env),
		backup.Command(env),
		backup.RestoreCommand(env),
		login.Command(env),
		tenant.Command(env),
		token.Command(env),
		product.Command(env),
		devicegroup.Command(env),
		device.Command(env),
		audit.Command(env),
		ca.Command(env),
		keys.Command(env),
		image.Command(env),
		release.Command(env),
		deployment.Command(env),
		failure.Command(env),
		coverage.Command(env),
		program.Command(env),
		report.Command(env),
		advisory.Command(env),
		research.Command(env),
		sim.Command(env),
		demo.Command(env, Run),
	)
	return root
}

// Run runs the CLI with args and returns the process exit code. Errors go to stderr as one
// sentence.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	env := &clienv.Env{Stdout: stdout, Stderr: stderr, Getenv: os.Getenv}
	root := Root(env)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	return clienv.Execute(ctx, root, stderr)
}
