package research

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clienv"
	"github.com/rampartsec/rampart/internal/token"
)

func newApply(env *clienv.Env) *cobra.Command {
	var req client.ApplyRequest
	cmd := &cobra.Command{
		Use:   "apply --tenant T --program P --country CC --experience TEXT [--name N --email E] [--affiliation A]",
		Short: "Apply to a program: as a new researcher (prints your researcher token once), or with your token to complete an invitation",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			conn, err := env.Connection()
			if err != nil {
				return err
			}
			// With a researcher token, apply as that researcher (another program, or completing an
			// invitation); an administrator's saved login token is not used here.
			if token.ResearcherWellFormed(conn.Token) {
				c, err := env.Client()
				if err != nil {
					return err
				}
				a, err := c.ResearcherApply(cmd.Context(), req.Program, client.ProgramApplyRequest{Country: req.Country,
					Affiliation: req.Affiliation, Experience: req.Experience})
				if err != nil {
					return err
				}
				return env.Print(a, func(tb *clienv.Table) {
					tb.Row("APPLICATION", a.ID)
					tb.Row("STATUS", a.Status)
				})
			}
			opts := []client.Option{}
			if conn.CAFile != "" {
				opts = append(opts, client.WithCAFile(conn.CAFile))
			}
			c, err := client.New(conn.Server, opts...)
			if err != nil {
				return err
			}
			res, err := c.Apply(cmd.Context(), req)
			if err != nil {
				return err
			}
			return env.Print(res, func(tb *clienv.Table) {
				tb.Row("APPLICATION", res.Application.ID)
				tb.Row("STATUS", res.Application.Status)
				tb.Row("TOKEN", res.Token)
				fmt.Fprintln(env.Stderr, "Keep the researcher token: it is shown only once and opens your reports.")
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Tenant, "tenant", "", "the tenant that runs the program (new researchers)")
	f.StringVar(&req.Program, "program", "", "the program")
	f.StringVar(&req.Name, "name", "", "your name (new researchers)")
	f.StringVar(&req.Email, "email", "", "your e-mail address (new researchers)")
	f.StringVar(&req.Country, "country", "", "your country, ISO 3166-1 alpha-2 (e.g. DE)")
	f.StringVar(&req.Affiliation, "affiliation", "", "your organisation, if any")
	f.StringVar(&req.Experience, "experience", "", "your experience in a few sentences")
	cmd.MarkFlagRequired("program")
	return cmd
}
