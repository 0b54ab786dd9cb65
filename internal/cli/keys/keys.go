// Package keys holds the `rampart keys` verbs: the offline TUF root and
// targets keys.
package keys

import (
	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/cli/clienv"
)

// Command returns `rampart keys`.
func Command(env *clienv.Env) *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "Create the offline root and targets keys that sign releases"}
	cmd.AddCommand(newInit(env), newRotate(env))
	return cmd
}
