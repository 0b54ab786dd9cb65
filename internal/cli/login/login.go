// Package login holds `rampart login`, which checks a connection and saves it.
package login

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/cli/clienv"
)

// Command returns `rampart login`.
func Command(env *clienv.Env) *cobra.Command {
	return &cobra.Command{
		Use:   "login --server URL --ca-file FILE --token-file FILE",
		Short: "Check a server connection and token, and save them for later commands",
		Long: "Check that the server answers and accepts the token, then save the server URL, CA file\n" +
			"(as an absolute path) and token to the user's config file (mode 0600; $RAMPART_CONFIG overrides its path).\n" +
			"Later commands use them when no flag or RAMPART_* variable says otherwise.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			conn, err := env.Connection()
			if err != nil {
				return err
			}
			c, err := env.Client()
			if err != nil {
				return err
			}
			who, err := c.WhoAmI(cmd.Context())
			if err != nil {
				return fmt.Errorf("login failed: %w", err)
			}
			if conn.CAFile != "" {
				// Saved absolute, so that later commands run from any folder find it.
				if conn.CAFile, err = filepath.Abs(conn.CAFile); err != nil {
					return err
				}
			}
			path, err := env.SaveConfig(conn)
			if err != nil {
				return fmt.Errorf("save config: %w", err)
			}
			fmt.Fprintf(env.Stdout, "logged in to %s as token %s (%s of tenant %s); saved to %s\n",
				conn.Server, who.TokenID, who.Role, who.Tenant, path)
			return nil
		},
	}
}
