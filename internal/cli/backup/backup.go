// Package backup holds `rampart backup` and `rampart restore`, which make and restore an online
// backup of a server's data folder (internal/backup). Only internal/cli imports it.
package backup

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/backup"
	"github.com/rampartsec/rampart/internal/cli/clienv"
)

// Command returns `rampart backup`.
func Command(env *clienv.Env) *cobra.Command {
	var dir, to string
	cmd := &cobra.Command{
		Use:   "backup --data DIR --to FILE",
		Short: "Back up a server's data folder (SQLite) while it serves",
		Long: "Write a consistent backup of the data folder DIR of a server that uses SQLite, while it serves:\n" +
			"a snapshot of the database (SQLite's VACUUM INTO), every image and delta blob the snapshot\n" +
			"names, and the folder's key and certificate files as they are (master.key, the online TUF\n" +
			"keys, the service CA, the first admin token). The tenant CA keys stay sealed in the database\n" +
			"under master.key, which the archive holds: keep it as safe as the server itself.\n" +
			"FILE must not exist; it is a tar archive ending with a manifest of SHA-256 digests that\n" +
			"`rampart restore` checks. A server on PostgreSQL is backed up with pg_dump and its blob store\n" +
			"(doc/operations.md).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if dir == "" || to == "" {
				return fmt.Errorf("--data and --to are required")
			}
			s, err := backup.Create(cmd.Context(), dir, to)
			if err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "backed up %s to %s: %d files (%d blobs), %d bytes, schema %s\n", dir, to, s.Files, s.Blobs, s.Bytes, s.Schema)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "data", "rampart-data", "the server's data folder")
	cmd.Flags().StringVar(&to, "to", "", "the backup file to create")
	return cmd
}
