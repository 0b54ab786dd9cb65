//go:build !cgo

package tpmsim

import (
	"context"
	"fmt"

	"github.com/rampartsec/rampart/internal/agent/attest"
)

// Built reports whether this build includes the simulator (it needs cgo).
const Built = false

// Open fails: the simulator needs cgo.
func Open(context.Context, attest.Config) (attest.Attester, error) {
	return nil, fmt.Errorf("simulator: %w: it needs CGO_ENABLED=1 and OpenSSL headers (libssl-dev)", attest.ErrNotBuilt)
}
