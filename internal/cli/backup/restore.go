package backup

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/backup"
	"github.com/rampartsec/rampart/internal/cli/clienv"
)

// RestoreCommand returns `rampart restore`.
func RestoreCommand(env *clienv.Env) *cobra.Command {
	var from, dir string
	cmd := &cobra.Command{
		Use:   "restore --from FILE --data DIR",
		Short: "Restore a backup made by `rampart backup` into a new data folder",
		Long: "Unpack a backup made by `rampart backup` into the data folder DIR, which must be absent or empty.\n" +
			"Every file is checked against the archive's manifest (SHA-256 and size), every blob against its\n" +
			"name, and the database with SQLite's integrity check, before DIR is created; a backup that fails\n" +
			"any check changes nothing. Then start `rampart server --data DIR` and run `rampart audit verify`.\n" +
			"DIR holds a file named restored: the server that starts on it first signs its online TUF metadata\n" +
			"at versions above anything signed after the backup, so that devices accept it, and removes the file.\n" +
			"If releases were signed after the backup, sign one again (doc/operations.md, Backups).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if from == "" || dir == "" {
				return fmt.Errorf("--from and --data are required")
			}
			s, err := backup.Restore(cmd.Context(), from, dir)
			if err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "restored %s into %s: %d files (%d blobs), %d bytes, schema %s\n", from, dir, s.Files, s.Blobs, s.Bytes, s.Schema)
			fmt.Fprintf(env.Stdout, "next: rampart server --data %s, then rampart audit verify\n", dir)
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "the backup file")
	cmd.Flags().StringVar(&dir, "data", "", "the data folder to create (absent or empty)")
	return cmd
}
