package keys

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clienv"
	"github.com/rampartsec/rampart/internal/tuf"
	"github.com/spf13/cobra"
)

func newRotate(env *clienv.Env) *cobra.Command {
	var dir, passFile string
	var revoke []string
	var addRoot, addTargets, rootThreshold, targetsThreshold int
	cmd := &cobra.Command{
		Use:   "rotate --dir DIR [--revoke KEYID ...] [--add-root N] [--add-targets N] [--root-threshold K] [--targets-threshold K]",
		Short: "Rotate the offline keys: revoke compromised keys, add new ones, change thresholds",
		Long: "Signs the next version of the image repository's root (and of the director's root when root keys\n" +
			"change) with the root keys in DIR, which must meet the threshold of both the current and the new\n" +
			"root, and uploads it. New keys are written to DIR; revoked key files move to DIR/revoked/.\n" +
			"Devices that skipped versions walk every root version in turn.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if dir == "" {
				return fmt.Errorf("--dir is required")
			}
			want := tuf.Rotation{Revoke: revoke, AddRoot: addRoot, AddTargets: addTargets, RootThreshold: rootThreshold,
				TargetsThreshold: targetsThreshold, Expires: time.Now().Add(tuf.DefaultExpiry().Root)}
			if want.Empty() {
				return fmt.Errorf("nothing to rotate: give --revoke, --add-root, --add-targets or a threshold")
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
			roots, err := c.TUFRoots(cmd.Context())
			if err != nil {
				return err
			}
			plan, err := tuf.PlanRotation(roots.Root, want)
			if errors.Is(err, tuf.ErrVerify) {
				return fmt.Errorf("the server's root is malformed: %w", err)
			}
			if err != nil {
				return err
			}
			next, nextDirector, err := plan.Sign(roots.Root, roots.DirectorRoot, ks)
			if err != nil {
				return err
			}
			up := client.TUFRoots{Root: next, DirectorRoot: nextDirector}
			// Keep the new keys before the server trusts them.
			if err := tuf.SaveKeys(dir, plan.Fresh, pass); err != nil {
				return err
			}
			if err := c.RotateTUFRoots(cmd.Context(), up); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(dir, "root.json"), next, 0o644); err != nil {
				return err
			}
			if up.DirectorRoot != nil {
				if err := os.WriteFile(filepath.Join(dir, "director-root.json"), up.DirectorRoot, 0o644); err != nil {
					return err
				}
			}
			if err := retire(dir, ks, plan.Revoked); err != nil {
				return err
			}
			n, err := tuf.SummarizeRoot(next)
			if err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "root version %d: %d root keys (threshold %d), %d targets keys (threshold %d)\n",
				n.Version, n.RootKeys, n.RootThreshold, n.TargetsKeys, n.TargetsThreshold)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "folder holding the key files")
	cmd.Flags().StringArrayVar(&revoke, "revoke", nil, "key ID (or a unique prefix) to revoke; repeat")
	cmd.Flags().IntVar(&addRoot, "add-root", 0, "new root keys to create")
	cmd.Flags().IntVar(&addTargets, "add-targets", 0, "new targets keys to create")
	cmd.Flags().IntVar(&rootThreshold, "root-threshold", 0, "new root threshold (0 keeps it)")
	cmd.Flags().IntVar(&targetsThreshold, "targets-threshold", 0, "new targets threshold (0 keeps it)")
	cmd.Flags().StringVar(&passFile, "passphrase-file", "", "file whose first line opens the key files (or RAMPART_KEYS_PASSPHRASE)")
	return cmd
}

// retire moves revoked key files out of DIR so they are never used again.
func retire(dir string, ks *tuf.KeySet, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	if err := os.MkdirAll(filepath.Join(dir, "revoked"), 0o700); err != nil {
		return err
	}
	for _, id := range ids {
		k := ks.Key(id)
		if k == nil {
			continue
		}
		name := tuf.KeyFileName(k)
		if err := os.Rename(filepath.Join(dir, name), filepath.Join(dir, "revoked", name)); err != nil {
			return err
		}
	}
	return nil
}
