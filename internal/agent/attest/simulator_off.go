//go:build !(simulator && cgo)

package attest

import (
	"context"
	"fmt"
)

// SimulatorBuilt reports whether this binary includes the simulator backend.
const SimulatorBuilt = false

func openSimulator(context.Context, Config) (Attester, error) {
	return nil, fmt.Errorf("simulator: %w: build with CGO_ENABLED=1 -tags simulator", ErrNotBuilt)
}
