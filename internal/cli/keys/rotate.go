package keys

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clienv"
	"github.com/rampartsec/rampart/internal/tuf"
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
			if len(revoke) == 0 && addRoot == 0 && addTargets == 0 && rootThreshold == 0 && targetsThreshold == 0 {
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
			cur, err := (&metadata.Metadata[metadata.RootType]{}).FromBytes(roots.Root)
			if err != nil {
				return fmt.Errorf("the server's root is malformed: %w", err)
			}
			expires := time.Now().Add(tuf.DefaultExpiry().Root)
			change := tuf.RootChange{Add: map[string][]*metadata.Key{}, Revoke: map[string][]string{}, Threshold: map[string]int{}, Expires: expires}
			dirChange := tuf.RootChange{Add: map[string][]*metadata.Key{}, Revoke: map[string][]string{}, Threshold: map[string]int{}, Expires: expires}
			var revokedIDs []string
			for _, prefix := range revoke {
				id, role, err := findKey(cur, prefix)
				if err != nil {
					return err
				}
				change.Revoke[role] = append(change.Revoke[role], id)
				if role == metadata.ROOT {
					dirChange.Revoke[role] = append(dirChange.Revoke[role], id)
				}
				revokedIDs = append(revokedIDs, id)
			}
			fresh := &tuf.KeySet{}
			for _, add := range []struct {
				role string
				n    int
			}{{metadata.ROOT, addRoot}, {metadata.TARGETS, addTargets}} {
				for range add.n {
					k, err := tuf.GenerateKey(add.role)
					if err != nil {
						return err
					}
					fresh.Keys = append(fresh.Keys, k)
					change.Add[add.role] = append(change.Add[add.role], k.Public())
					if add.role == metadata.ROOT {
						dirChange.Add[add.role] = append(dirChange.Add[add.role], k.Public())
					}
				}
			}
			if rootThreshold > 0 {
				change.Threshold[metadata.ROOT] = rootThreshold
				dirChange.Threshold[metadata.ROOT] = rootThreshold
			}
			if targetsThreshold > 0 {
				change.Threshold[metadata.TARGETS] = targetsThreshold
			}
			all := &tuf.KeySet{Keys: append(append([]*tuf.PrivateKey(nil), ks.Keys...), fresh.Keys...)}
			next, err := tuf.RotateRoot(roots.Root, change, all)
			if err != nil {
				return err
			}
			up := client.TUFRoots{Root: next}
			if len(dirChange.Add)+len(dirChange.Revoke)+len(dirChange.Threshold) > 0 {
				if up.DirectorRoot, err = tuf.RotateRoot(roots.DirectorRoot, dirChange, all); err != nil {
					return fmt.Errorf("director root: %w", err)
				}
			}
			// Keep the new keys before the server trusts them.
			if err := tuf.SaveKeys(dir, fresh, pass); err != nil {
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
			if err := retire(dir, ks, revokedIDs); err != nil {
				return err
			}
			n, _ := (&metadata.Metadata[metadata.RootType]{}).FromBytes(next)
			fmt.Fprintf(env.Stdout, "root version %d: %d root keys (threshold %d), %d targets keys (threshold %d)\n",
				n.Signed.Version, len(n.Signed.Roles[metadata.ROOT].KeyIDs), n.Signed.Roles[metadata.ROOT].Threshold,
				len(n.Signed.Roles[metadata.TARGETS].KeyIDs), n.Signed.Roles[metadata.TARGETS].Threshold)
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

// findKey resolves a key ID prefix among the root's root and targets keys.
func findKey(root *metadata.Metadata[metadata.RootType], prefix string) (string, string, error) {
	var id, role string
	for _, r := range []string{metadata.ROOT, metadata.TARGETS} {
		for _, k := range root.Signed.Roles[r].KeyIDs {
			if prefix != "" && strings.HasPrefix(k, prefix) {
				if id != "" {
					return "", "", fmt.Errorf("key ID prefix %s is ambiguous", prefix)
				}
				id, role = k, r
			}
		}
	}
	if id == "" {
		return "", "", fmt.Errorf("no root or targets key has an ID starting with %s", prefix)
	}
	return id, role, nil
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
