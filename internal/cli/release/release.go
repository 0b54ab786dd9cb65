// Package release holds the `rampart release` verbs: create, show, sign
// (offline, with the targets keys) and revoke.
package release

import (
	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clienv"
)

// Command returns `rampart release`.
func Command(env *clienv.Env) *cobra.Command {
	cmd := &cobra.Command{Use: "release", Short: "Create, sign and revoke releases (versioned sets of images)"}
	cmd.AddCommand(newCreate(env), newShow(env), newSign(env), newRevoke(env))
	return cmd
}

func printRelease(env *clienv.Env, r client.Release) error {
	return env.Print(r, func(tb *clienv.Table) {
		tb.Row("PRODUCT", "VERSION", "STATE", "COMPONENT", "IMAGE VERSION", "IMAGE", "DELTAS")
		for _, im := range r.Images {
			deltas := 0
			for _, d := range r.Deltas {
				if d.To == im.ID {
					deltas++
				}
			}
			tb.Row(r.Product, r.Version, r.State, im.Component, im.Version, im.ID[:16], deltas)
		}
		if r.RevokedReason != "" {
			tb.Row(r.Product, r.Version, r.State, "revoked: "+r.RevokedReason, "", "", "")
		}
	})
}
