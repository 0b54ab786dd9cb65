package research

import (
	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clienv"
	"github.com/rampartsec/rampart/internal/cli/report"
)

func newSubmit(env *clienv.Env) *cobra.Command {
	var programName, file string
	cmd := &cobra.Command{
		Use:   "submit --program P --file REPORT.json",
		Short: "Submit a report (title, description, scenario, product, components, releases, cvss31, cvss40) as an accepted researcher",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var req client.SubmitReportRequest
			if err := clienv.DecodeFile(file, "report", &req); err != nil {
				return err
			}
			c, err := env.Client()
			if err != nil {
				return err
			}
			r, err := c.SubmitReport(cmd.Context(), programName, req)
			if err != nil {
				return err
			}
			return report.PrintReport(env, r, nil)
		},
	}
	cmd.Flags().StringVar(&programName, "program", "", "the program")
	cmd.Flags().StringVar(&file, "file", "", "the report as JSON")
	cmd.MarkFlagRequired("program")
	cmd.MarkFlagRequired("file")
	return cmd
}
