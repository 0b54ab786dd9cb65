package deployment

import (
	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clienv"
)

// newOperate builds `deployment pause|resume|abort ID [--reason TEXT]`.
func newOperate(env *clienv.Env, verb, short string) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   verb + " ID [--reason TEXT]",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			op := map[string]func(*client.Client) (client.Deployment, error){
				"pause": func(c *client.Client) (client.Deployment, error) {
					return c.PauseDeployment(cmd.Context(), args[0], reason)
				},
				"resume": func(c *client.Client) (client.Deployment, error) {
					return c.ResumeDeployment(cmd.Context(), args[0], reason)
				},
				"abort": func(c *client.Client) (client.Deployment, error) {
					return c.AbortDeployment(cmd.Context(), args[0], reason)
				},
			}[verb]
			d, err := op(c)
			if err != nil {
				return err
			}
			return printDeployment(env, d)
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, recorded in the deployment and the audit log")
	return cmd
}
