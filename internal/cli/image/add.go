package image

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/cli/clienv"
)

func newAdd(env *clienv.Env) *cobra.Command {
	var component, version string
	var secver uint64
	cmd := &cobra.Command{
		Use:   "add FILE --component NAME --version V",
		Short: "Upload an image; prints its ID (the SHA-256 of its bytes)",
		Long: "Upload an image; prints its ID (the SHA-256 of its bytes). An upload that takes more than a\n" +
			"couple of seconds reports its progress on stderr.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if component == "" || version == "" {
				return fmt.Errorf("--component and --version are required")
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
			im, err := c.AddImage(cmd.Context(), body, st.Size(), component, version, secver)
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
	cmd.Flags().Uint64Var(&secver, "security-version", 0, "anti-rollback counter: devices refuse images below the highest they committed")
	return cmd
}
