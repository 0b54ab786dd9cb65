// Command rampart-agent is Rampart's device side. It stays small and free of database and
// server code so that it cross-compiles with CGO_ENABLED=0 to arm64 and armv7.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/rampartsec/rampart/internal/agent/command"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := command.Run(ctx, os.Args[1:], version, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "rampart-agent:", command.Message(err))
		if errors.Is(err, command.ErrUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}
