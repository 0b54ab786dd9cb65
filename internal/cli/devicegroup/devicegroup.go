// Package devicegroup holds the `rampart device-group` verbs.
package devicegroup

import (
	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/cli/clienv"
)

// Command returns `rampart device-group`.
func Command(env *clienv.Env) *cobra.Command {
	cmd := &cobra.Command{Use: "device-group", Short: "Create and list a product's device groups"}
	cmd.AddCommand(newCreate(env), newList(env))
	return cmd
}
