// Package device holds the `rampart device` verbs.
package device

import (
	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/cli/clienv"
)

// Command returns `rampart device`.
func Command(env *clienv.Env) *cobra.Command {
	cmd := &cobra.Command{Use: "device", Short: "List, show, claim, move and preauthorise devices"}
	cmd.AddCommand(newList(env), newShow(env), newClaim(env), newMove(env), newPreauthorize(env), newAttestations(env))
	return cmd
}
