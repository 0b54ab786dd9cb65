// Package product holds the `rampart product` verbs.
package product

import (
	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clienv"
)

// Command returns `rampart product`.
func Command(env *clienv.Env) *cobra.Command {
	cmd := &cobra.Command{Use: "product", Short: "Create, list and show products (device models)"}
	cmd.AddCommand(newCreate(env), newList(env), newShow(env), newPolicy(env))
	return cmd
}

func printProduct(env *clienv.Env, p client.Product) error {
	return env.Print(p, func(tb *clienv.Table) {
		tb.Row("PRODUCT", "GROUP", "DEVICES", "CREATED")
		for _, g := range p.Groups {
			tb.Row(p.Name, g.Name, g.Devices, clienv.When(g.CreatedAt))
		}
	})
}
