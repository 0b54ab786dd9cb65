package program

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clienv"
)

func newInvite(env *clienv.Env) *cobra.Command {
	var name, email string
	cmd := &cobra.Command{
		Use:   "invite PROGRAM --name NAME --email EMAIL",
		Short: "Invite a researcher; prints their researcher token once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			inv, err := c.Invite(cmd.Context(), args[0], client.InviteRequest{Name: name, Email: email})
			if err != nil {
				return err
			}
			return env.Print(inv, func(tb *clienv.Table) {
				tb.Row("APPLICATION", inv.Application.ID)
				tb.Row("STATUS", inv.Application.Status)
				tb.Row("TOKEN", inv.Token)
				fmt.Fprintln(env.Stderr, "Send the token to the researcher; it is not shown again. They complete the application with `rampart research apply`.")
			})
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "the researcher's name")
	cmd.Flags().StringVar(&email, "email", "", "the researcher's e-mail address")
	cmd.MarkFlagRequired("name")
	cmd.MarkFlagRequired("email")
	return cmd
}
