package product

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/cli/clienv"
)

func newPolicy(env *clienv.Env) *cobra.Command {
	var (
		acceptSoftware, requireSecureBoot, requireBootLog bool
		bootDigests                                       string
	)
	cmd := &cobra.Command{
		Use:   "policy NAME [--accept-software=true|false] [--require-secure-boot=true|false] [--require-boot-log=true|false] [--boot-digests FILE]",
		Short: "Show or set a product's attestation policy",
		Long: "Show a product's attestation policy, or change it with the flags; a flag left out keeps\n" +
			"its current value.\n\n" +
			"A product refuses devices with a software attester (a key in a file, for development\n" +
			"boards) until --accept-software=true; accepted, their results are warnings.\n\n" +
			"--require-boot-log demands the firmware's TCG event log with every quote: agent-only\n" +
			"evidence gets an update-only certificate (boot_log_missing), and every EFI application\n" +
			"the firmware loaded must be a boot image of a release or one of the product's boot\n" +
			"digests (unknown_boot_component, revoked_boot_component).\n" +
			"--require-secure-boot demands a boot log showing Secure Boot enabled (secure_boot_disabled).\n" +
			"--boot-digests FILE replaces the product's extra boot digests: Authenticode SHA-256\n" +
			"digests of EFI binaries, one lowercase hex digest a line (# starts a comment; an empty\n" +
			"file clears them), for firmware or a bootloader that is in no release.\n" +
			"See doc/attestation.md.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			p, err := c.GetAttestationPolicy(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			f := cmd.Flags()
			if f.Changed("accept-software") || f.Changed("require-secure-boot") || f.Changed("require-boot-log") || f.Changed("boot-digests") {
				if f.Changed("accept-software") {
					p.AcceptSoftware = acceptSoftware
				}
				if f.Changed("require-secure-boot") {
					p.RequireSecureBoot = requireSecureBoot
				}
				if f.Changed("require-boot-log") {
					p.RequireBootLog = requireBootLog
				}
				if f.Changed("boot-digests") {
					if p.BootDigests, err = readDigests(bootDigests); err != nil {
						return err
					}
				}
				if err := c.SetAttestationPolicy(cmd.Context(), args[0], p); err != nil {
					return err
				}
			}
			return env.Print(p, func(tb *clienv.Table) {
				tb.Row("PRODUCT", "ACCEPT SOFTWARE ATTESTERS", "REQUIRE BOOT LOG", "REQUIRE SECURE BOOT", "BOOT DIGESTS")
				tb.Row(args[0], p.AcceptSoftware, p.RequireBootLog, p.RequireSecureBoot, len(p.BootDigests))
			})
		},
	}
	cmd.Flags().BoolVar(&acceptSoftware, "accept-software", false, "admit devices with a software attester")
	cmd.Flags().BoolVar(&requireSecureBoot, "require-secure-boot", false, "demand a firmware boot log showing Secure Boot enabled")
	cmd.Flags().BoolVar(&requireBootLog, "require-boot-log", false, "demand the firmware's boot log and appraise every EFI application in it")
	cmd.Flags().StringVar(&bootDigests, "boot-digests", "", "file of extra allowed Authenticode SHA-256 digests, one a line")
	return cmd
}

// readDigests reads one digest a line; blank lines and # comments are skipped. The server
// checks each digest.
func readDigests(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := []string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		if len(line) != 64 {
			return nil, fmt.Errorf("%s:%d: %q is not a hex SHA-256 digest", path, n, line)
		}
		out = append(out, strings.ToLower(line))
	}
	return out, sc.Err()
}
