// Package failure holds the `rampart failure` verbs: list, show and resolve crash failure
// groups. Only internal/cli imports it.
package failure

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/cli/clienv"
)

// Command returns `rampart failure`.
func Command(env *clienv.Env) *cobra.Command {
	cmd := &cobra.Command{Use: "failure", Short: "Crash reports grouped by signature, counted per release and deployment phase"}
	cmd.AddCommand(newList(env), newShow(env), newResolve(env))
	return cmd
}

func short(sig string) string {
	if len(sig) > 12 {
		return sig[:12]
	}
	return sig
}

func top(frames []string) string {
	if len(frames) == 0 {
		return ""
	}
	return strings.Join(frames[:min(2, len(frames))], " < ")
}
