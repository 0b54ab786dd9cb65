// Package audit holds the `rampart audit` verbs.
package audit

import (
	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/cli/clienv"
)

// Command returns `rampart audit`.
func Command(env *clienv.Env) *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Read and verify the tenant's hash-chained audit log"}
	cmd.AddCommand(newList(env), newVerify(env))
	return cmd
}
