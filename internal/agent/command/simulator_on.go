//go:build simulator && cgo

package command

import "github.com/rampartsec/rampart/internal/agent/attest/tpmsim"

// simulatorBackend is the in-process TPM simulator: this build was made with -tags simulator.
var simulatorBackend = tpmsim.Open
