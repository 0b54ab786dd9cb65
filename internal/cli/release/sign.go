package release

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clienv"
	"github.com/rampartsec/rampart/internal/tuf"
)

func newSign(env *clienv.Env) *cobra.Command {
	var product, version, dir, passFile string
	cmd := &cobra.Command{
		Use:   "sign --product P --version V --keys DIR",
		Short: "Sign a release's targets metadata offline with the targets keys in DIR",
		Long: "Asks the server to build the release's deltas and the next targets metadata, checks that it\n" +
			"lists the release's images, signs it here with the targets keys in DIR (a threshold of them must\n" +
			"be present) and uploads the signature. The private keys never leave this machine.\n" +
			"Building deltas of large images takes a while; the wait is reported on stderr.\n" +
			"The passphrase comes from --passphrase-file or RAMPART_KEYS_PASSPHRASE.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if product == "" || version == "" || dir == "" {
				return fmt.Errorf("--product, --version and --keys are required")
			}
			pass, err := env.Passphrase(passFile)
			if err != nil {
				return err
			}
			ks, err := tuf.LoadKeys(dir, pass)
			if err != nil {
				return err
			}
			c, err := env.Client()
			if err != nil {
				return err
			}
			rel, err := c.GetRelease(cmd.Context(), product, version)
			if err != nil {
				return err
			}
			roots, err := c.TUFRoots(cmd.Context())
			if err != nil {
				return err
			}
			// The server builds a delta from each earlier release: minutes for large images.
			done := env.Waiting("the server is building the release's deltas and targets metadata")
			payload, err := c.PrepareRelease(cmd.Context(), product, version)
			done()
			if err != nil {
				return err
			}
			// Review what is about to be signed: every image of the release
			// must be in it, with the attributes the server showed.
			summary, err := tuf.SummarizeTargets(payload.Targets)
			if err != nil {
				return err
			}
			for _, im := range rel.Images {
				want := tuf.Image{SHA256: im.ID, Length: im.Length, Component: im.Component, Version: im.Version, SecurityVersion: im.SecurityVersion,
					Type: im.Type, RAUCManifestHash: im.RAUCManifestHash}
				found := false
				for _, got := range summary.Images {
					found = found || got == want
				}
				if !found {
					return fmt.Errorf("the server's targets do not list image %s of the release; not signing", im.ID)
				}
			}
			signed, err := tuf.SignTargets(roots.Root, payload.Targets, ks)
			if err != nil {
				return err
			}
			out, err := c.SignRelease(cmd.Context(), product, version, client.TargetsPayload{Targets: signed})
			if err != nil {
				return err
			}
			return printRelease(env, out)
		},
	}
	cmd.Flags().StringVar(&product, "product", "", "product")
	cmd.Flags().StringVar(&version, "version", "", "release version")
	cmd.Flags().StringVar(&dir, "keys", "", "folder holding the targets key files (from `rampart keys init`)")
	cmd.Flags().StringVar(&passFile, "passphrase-file", "", "file whose first line decrypts the key files (or RAMPART_KEYS_PASSPHRASE)")
	return cmd
}
