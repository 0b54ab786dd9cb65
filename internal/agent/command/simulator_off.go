//go:build !(simulator && cgo)

package command

import (
	"context"

	"github.com/rampartsec/rampart/internal/agent/attest"
)

// simulatorBackend is nil: the default build links no cgo, so --attester simulator needs a
// build with CGO_ENABLED=1 -tags simulator.
var simulatorBackend func(context.Context, attest.Config) (attest.Attester, error)
