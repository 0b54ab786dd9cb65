// Package token holds the `rampart token` verbs.
package token

import (
	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/cli/clienv"
)

// Command returns `rampart token`.
func Command(env *clienv.Env) *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Create, list and revoke API tokens"}
	cmd.AddCommand(newCreate(env), newList(env), newRevoke(env))
	return cmd
}
