// Package release holds the `rampart release` verbs: create, list, show, sign
// (offline, with the targets keys) and revoke.
package release

import (
	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clienv"
)

// Command returns `rampart release`.
func Command(env *clienv.Env) *cobra.Command {
	cmd := &cobra.Command{Use: "release", Short: "Create, list, sign and revoke releases (versioned sets of images)"}
	cmd.AddCommand(newCreate(env), newList(env), newShow(env), newSign(env), newRevoke(env))
	return cmd
}

// printRelease shows a release, then one row per image; a revoked release's reason is a line of
// its own.
func printRelease(env *clienv.Env, r client.Release) error {
	return env.Print(r, func(tb *clienv.Table) {
		tb.Row("PRODUCT", "VERSION", "STATE")
		tb.Row(r.Product, r.Version, r.State)
		if r.RevokedReason != "" {
			tb.Line("revoked: %s", r.RevokedReason)
		}
		tb.Section()
		tb.Row("COMPONENT", "IMAGE VERSION", "TYPE", "IMAGE", "DELTAS")
		for _, im := range r.Images {
			deltas := 0
			for _, d := range r.Deltas {
				if d.To == im.ID {
					deltas++
				}
			}
			tb.Row(im.Component, im.Version, im.Type, im.ID[:16], deltas)
		}
	})
}
