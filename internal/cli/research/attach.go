package research

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/cli/clienv"
	"github.com/rampartsec/rampart/internal/cli/report"
)

func newAttach(env *clienv.Env) *cobra.Command {
	return &cobra.Command{
		Use:   "attach ID FILE",
		Short: "Attach a file (proof of concept, logs) to your report; the program limits its size",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := report.ParseNumber(args[0])
			if err != nil {
				return err
			}
			f, err := os.Open(args[1])
			if err != nil {
				return fmt.Errorf("open the attachment: %w", err)
			}
			defer f.Close()
			c, err := env.Client()
			if err != nil {
				return err
			}
			a, err := c.Attach(cmd.Context(), n, filepath.Base(args[1]), f)
			if err != nil {
				return err
			}
			return env.Print(a, func(tb *clienv.Table) {
				tb.Row("ATTACHMENT", a.ID, a.Name, a.Size, a.SHA256)
			})
		},
	}
}
