package device

import (
	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/cli/clienv"
)

func newShow(env *clienv.Env) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show a device",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			d, err := c.GetDevice(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return env.Print(d, func(tb *clienv.Table) {
				seen := ""
				if d.LastSeenAt != nil {
					seen = clienv.When(*d.LastSeenAt)
				}
				tb.Row("FIELD", "VALUE")
				tb.Row("id", d.ID)
				tb.Row("product", d.Product)
				tb.Row("group", d.Group)
				tb.Row("state", d.State)
				tb.Row("attestation", d.Attestation)
				tb.Row("current release", d.CurrentRelease)
				tb.Row("target release", d.TargetRelease)
				if d.Install != nil {
					install := d.Install.State
					if d.Install.Release != "" {
						install += " " + d.Install.Release
					}
					if d.Install.Reason != "" {
						install += ": " + d.Install.Reason
					}
					tb.Row("install", install+" ("+clienv.When(d.Install.At)+")")
				}
				tb.Row("last seen", seen)
				tb.Row("enrolled", clienv.When(d.CreatedAt))
			})
		},
	}
}
