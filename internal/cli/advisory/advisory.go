// Package advisory holds the `rampart advisory` verbs.
package advisory

import (
	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/cli/clienv"
)

// Command returns `rampart advisory`.
func Command(env *clienv.Env) *cobra.Command {
	cmd := &cobra.Command{Use: "advisory", Short: "Export security advisories (CSAF 2.0, OpenVEX) of fixed reports"}
	cmd.AddCommand(newExport(env))
	return cmd
}
