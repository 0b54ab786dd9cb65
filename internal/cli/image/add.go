package image

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clienv"
	"github.com/rampartsec/rampart/internal/raucbundle"
)

func newAdd(env *clienv.Env) *cobra.Command {
	var component, version, typ string
	var secver uint64
	cmd := &cobra.Command{
		Use:   "add FILE --component NAME --version V [--type TYPE]",
		Short: "Upload an image; prints its ID (the SHA-256 of its bytes)",
		Long: "Upload an image; prints its ID (the SHA-256 of its bytes). An upload that takes more than a\n" +
			"couple of seconds reports its progress on stderr.\n\n" +
			"--type says who installs the image on the device, and travels to it in the signed targets:\n" +
			"  directory     the agent's own A/B slot folders (development, the simulator; the default)\n" +
			"  rauc-bundle   a RAUC bundle (plain or verity), handed to the device's RAUC over D-Bus; its\n" +
			"                manifest hash is read here from the bundle (a plain bundle needs unsquashfs)\n" +
			"  module:NAME   an artifact for the device's Mender update module NAME (protocol v3)\n" +
			"  reference     not installed: a file the release holds only as a reference value for\n" +
			"                attestation (the kernel, binaries and modules inside a bundle's root file\n" +
			"                system); the director never names it to a device\n" +
			"A device whose agent cannot install the type reports the install failed (doc/agent.md).",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if component == "" || version == "" {
				return fmt.Errorf("--component and --version are required")
			}
			up := client.ImageUpload{Component: component, Version: version, SecurityVersion: secver, Type: typ}
			if typ == client.ImageTypeRAUC {
				info, err := raucbundle.Inspect(cmd.Context(), args[0])
				if err != nil {
					return fmt.Errorf("%s: %w", args[0], err)
				}
				up.RAUCManifestHash = info.ManifestHash
			}
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			st, err := f.Stat()
			if err != nil {
				return err
			}
			if !st.Mode().IsRegular() {
				return fmt.Errorf("%s is not a regular file", args[0])
			}
			c, err := env.Client()
			if err != nil {
				return err
			}
			// A large image takes a while: say how far the upload is, then what it waits for.
			body := env.ProgressReader(f, st.Size(), "uploading "+filepath.Base(args[0]))
			im, err := c.UploadImage(cmd.Context(), body, st.Size(), up)
			if err != nil {
				return err
			}
			if j, err := env.JSON(); err != nil || j {
				return env.Print(im, nil)
			}
			fmt.Fprintln(env.Stdout, im.ID)
			return nil
		},
	}
	cmd.Flags().StringVar(&component, "component", "", "component the image is (rootfs, app, firmware...)")
	cmd.Flags().StringVar(&version, "version", "", "the image's version, like 1.2.3")
	cmd.Flags().StringVar(&typ, "type", client.ImageTypeDirectory, "who installs it on the device: directory, rauc-bundle, module:NAME, or reference (never installed)")
	cmd.Flags().Uint64Var(&secver, "security-version", 0, "anti-rollback counter: devices refuse images below the highest they committed")
	return cmd
}
