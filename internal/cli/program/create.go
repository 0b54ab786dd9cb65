package program

import (
	"errors"
	"os"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clienv"
	"github.com/rampartsec/rampart/internal/program"
	"github.com/rampartsec/rampart/internal/public"
)

func newCreate(env *clienv.Env) *cobra.Command {
	var rulesFile string
	cmd := &cobra.Command{
		Use:   "create NAME --rules FILE",
		Short: "Create a research program from its rules file (YAML or JSON; see doc/vulnerability-response.md)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(rulesFile)
			if err != nil {
				return public.Wrap(err, public.Invalid, "cannot read the rules file %s (%v)", rulesFile, errors.Unwrap(err))
			}
			// Check locally first, so that a mistake is reported with every problem at once and
			// before anything is sent.
			if _, err := program.ParseRules(data); err != nil {
				msg, ok := public.Message(err)
				if !ok {
					msg = err.Error()
				}
				return public.Wrap(err, public.Invalid, "%s: %s", rulesFile, msg)
			}
			c, err := env.Client()
			if err != nil {
				return err
			}
			p, err := c.CreateProgram(cmd.Context(), client.CreateProgramRequest{Name: args[0], Rules: string(data)})
			if err != nil {
				return err
			}
			return printProgram(env, p)
		},
	}
	cmd.Flags().StringVar(&rulesFile, "rules", "", "the program's rules file")
	cmd.MarkFlagRequired("rules")
	return cmd
}
