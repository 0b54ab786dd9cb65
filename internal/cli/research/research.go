// Package research holds the `rampart research` verbs: the researcher's side of a program,
// used with a researcher token (--token rrt_...).
package research

import (
	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/cli/clienv"
)

// Command returns `rampart research`.
func Command(env *clienv.Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "research",
		Short: "The researcher's side: apply to a program, submit reports, follow them (researcher token); revoke-token is the team's",
	}
	cmd.AddCommand(newApply(env), newSubmit(env), newList(env), newShow(env), newComment(env), newAttach(env), newRevokeToken(env))
	return cmd
}
