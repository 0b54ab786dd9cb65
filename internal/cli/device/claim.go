package device

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clienv"
)

func newClaim(env *clienv.Env) *cobra.Command {
	var product, group string
	cmd := &cobra.Command{
		Use:   "claim ID --product P [--group G]",
		Short: "Claim an enrolled device into a product and group",
		Long: "Claim a device that enrolled (rampart-agent ... enroll prints its ID) into one of the\n" +
			"tenant's products, in group G (default Development). A TPM device is claimed only when\n" +
			"its EK certificate chains to a manufacturer CA the tenant trusts, or its EK hash was\n" +
			"preauthorised (rampart device preauthorize). A software device attests only when the\n" +
			"product's policy accepts software attesters.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			d, err := c.ClaimDevice(cmd.Context(), args[0], client.ClaimDeviceRequest{Product: product, Group: group})
			if err != nil {
				return err
			}
			return printPlacement(env, d)
		},
	}
	cmd.Flags().StringVar(&product, "product", "", "product name (required)")
	cmd.Flags().StringVar(&group, "group", "", "device group (default Development)")
	cmd.MarkFlagRequired("product")
	return cmd
}

func newPreauthorize(env *clienv.Env) *cobra.Command {
	var product, group, ekHash, keyHash string
	cmd := &cobra.Command{
		Use:   "preauthorize (--ek-hash H | --key-hash H) --product P [--group G]",
		Short: "Preauthorise a device by its EK or identity-key hash",
		Long: "Record that the tenant expects a device: by the SHA-256 of its EK public key (PKIX DER),\n" +
			"or of its identity key (which is its device ID). When it enrols it is claimed into the\n" +
			"product and group at once; a device that already enrolled is claimed now.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			req := client.PreauthorizeRequest{Product: product, Group: group}
			switch {
			case ekHash != "" && keyHash == "":
				req.Kind, req.Hash = "ek", ekHash
			case keyHash != "" && ekHash == "":
				req.Kind, req.Hash = "key", keyHash
			default:
				return errors.New("give exactly one of --ek-hash and --key-hash")
			}
			c, err := env.Client()
			if err != nil {
				return err
			}
			if err := c.Preauthorize(cmd.Context(), req); err != nil {
				return err
			}
			return env.Print(req, func(tb *clienv.Table) {
				tb.Row("KIND", "HASH", "PRODUCT", "GROUP")
				tb.Row(req.Kind, req.Hash, req.Product, req.Group)
			})
		},
	}
	cmd.Flags().StringVar(&ekHash, "ek-hash", "", "hex SHA-256 of the device's EK public key")
	cmd.Flags().StringVar(&keyHash, "key-hash", "", "hex SHA-256 of the device's identity key (its device ID)")
	cmd.Flags().StringVar(&product, "product", "", "product name (required)")
	cmd.Flags().StringVar(&group, "group", "", "device group (default Development)")
	cmd.MarkFlagRequired("product")
	return cmd
}

func newMove(env *clienv.Env) *cobra.Command {
	var group string
	cmd := &cobra.Command{
		Use:   "move ID --group G",
		Short: "Move a claimed device to another group of its product",
		Long: "Move a claimed device to group G of the same product. Its coverage moves with it, the\n" +
			"old group's deployments stop counting it, and the new group's active deployment offers\n" +
			"it the release at its next check-in (a device waiting on the server is woken now).\n" +
			"Moving a device to the group it is in changes nothing.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			d, err := c.MoveDevice(cmd.Context(), args[0], client.MoveDeviceRequest{Group: group})
			if err != nil {
				return err
			}
			return printPlacement(env, d)
		},
	}
	cmd.Flags().StringVar(&group, "group", "", "device group to move to (required)")
	cmd.MarkFlagRequired("group")
	return cmd
}

// printPlacement shows where a device is after a claim or a move.
func printPlacement(env *clienv.Env, d client.Device) error {
	return env.Print(d, func(tb *clienv.Table) {
		tb.Row("ID", "PRODUCT", "GROUP", "STATE")
		tb.Row(d.ID, d.Product, d.Group, d.State)
	})
}
