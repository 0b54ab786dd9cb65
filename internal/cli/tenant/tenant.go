// Package tenant holds the `rampart tenant` verbs.
package tenant

import (
	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/cli/clienv"
)

// Command returns `rampart tenant`.
func Command(env *clienv.Env) *cobra.Command {
	cmd := &cobra.Command{Use: "tenant", Short: "Create and list tenants (service administrators)"}
	cmd.AddCommand(newCreate(env), newList(env))
	return cmd
}
