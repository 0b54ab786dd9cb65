package keys

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clienv"
	"github.com/rampartsec/rampart/internal/tuf"
)

func newInit(env *clienv.Env) *cobra.Command {
	var dir, passFile string
	var threshold, n int
	cmd := &cobra.Command{
		Use:   "init --dir DIR",
		Short: "Create offline root and targets keys and install the tenant's signed roots on the server",
		Long: "Creates N root keys and N targets keys (ed25519), each in its own passphrase-encrypted file\n" +
			"under DIR (scrypt + AES-256-GCM), signs the image repository's root and the director's root\n" +
			"with a threshold of K, and uploads both roots. Keep DIR offline; hand key files to their holders.\n" +
			"The passphrase comes from --passphrase-file or RAMPART_KEYS_PASSPHRASE.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if dir == "" {
				return fmt.Errorf("--dir is required")
			}
			if n < 1 || n > 16 || threshold < 1 || threshold > n {
				return fmt.Errorf("--threshold must be between 1 and --keys, and --keys between 1 and 16")
			}
			if existing, _ := filepath.Glob(filepath.Join(dir, "*.key")); len(existing) > 0 {
				return fmt.Errorf("%s already holds key files; use an empty folder", dir)
			}
			pass, err := env.Passphrase(passFile)
			if err != nil {
				return err
			}
			c, err := env.Client()
			if err != nil {
				return err
			}
			if _, err := c.TUFRoots(cmd.Context()); err == nil {
				return fmt.Errorf("this tenant already has update keys; rotate them instead of creating new ones")
			} else if !client.IsStatus(err, http.StatusConflict) {
				return err
			}
			keys, err := c.TUFOnlineKeys(cmd.Context())
			if err != nil {
				return err
			}
			online, err := parseOnline(keys)
			if err != nil {
				return err
			}
			ks, err := tuf.GenerateKeySet(n)
			if err != nil {
				return err
			}
			expires := time.Now().Add(tuf.DefaultExpiry().Root)
			root, err := tuf.NewRoot(ks, threshold, online, expires)
			if err != nil {
				return err
			}
			droot, err := tuf.NewDirectorRoot(ks, threshold, online.Director, expires)
			if err != nil {
				return err
			}
			if err := tuf.SaveKeys(dir, ks, pass); err != nil {
				return err
			}
			for name, b := range map[string][]byte{"root.json": root, "director-root.json": droot} {
				if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
					return err
				}
			}
			if err := c.InitTUF(cmd.Context(), client.TUFRoots{Root: root, DirectorRoot: droot}); err != nil {
				return err
			}
			type keyOut struct {
				Role  string `json:"role"`
				KeyID string `json:"keyid"`
				File  string `json:"file"`
			}
			var out []keyOut
			for _, k := range ks.Keys {
				out = append(out, keyOut{Role: k.Role, KeyID: k.ID(), File: filepath.Join(dir, tuf.KeyFileName(k))})
			}
			return env.Print(out, func(tb *clienv.Table) {
				tb.Row("ROLE", "KEY ID", "FILE")
				for _, k := range out {
					tb.Row(k.Role, k.KeyID[:16], k.File)
				}
			})
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "folder for the new key files (created, mode 0700)")
	cmd.Flags().IntVar(&threshold, "threshold", 1, "signatures needed per role (K of N)")
	cmd.Flags().IntVar(&n, "keys", 1, "keys to create per role (N)")
	cmd.Flags().StringVar(&passFile, "passphrase-file", "", "file whose first line encrypts the key files (or RAMPART_KEYS_PASSPHRASE)")
	return cmd
}

func parseOnline(k client.TUFOnlineKeys) (tuf.OnlinePublic, error) {
	var out tuf.OnlinePublic
	for _, kv := range []struct {
		raw []byte
		dst **metadata.Key
	}{{k.Snapshot, &out.Snapshot}, {k.Timestamp, &out.Timestamp}, {k.Director, &out.Director}} {
		var key metadata.Key
		if err := json.Unmarshal(kv.raw, &key); err != nil {
			return out, fmt.Errorf("the server's online keys are malformed: %w", err)
		}
		*kv.dst = &key
	}
	return out, nil
}
