// Package image holds the `rampart image` verbs.
package image

import (
	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/cli/clienv"
)

// Command returns `rampart image`.
func Command(env *clienv.Env) *cobra.Command {
	cmd := &cobra.Command{Use: "image", Short: "Upload immutable, content-addressed images"}
	cmd.AddCommand(newAdd(env))
	return cmd
}
