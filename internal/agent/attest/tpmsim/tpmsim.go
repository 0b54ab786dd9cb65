//go:build cgo

// Package tpmsim is the attester backend on go-tpm-tools' in-process TPM 2.0 simulator, for tests
// and development. It needs cgo (the simulator is C, linked with OpenSSL), so it lives apart from
// internal/agent/attest: tests import it whenever cgo is on, and rampart-agent links it only when
// built with -tags simulator, so that the agent's default build stays free of cgo.
package tpmsim

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/google/go-tpm-tools/simulator"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/rampartsec/rampart/internal/agent/attest"
	"github.com/rampartsec/rampart/internal/deviceapi"
)

// Built reports whether this build includes the simulator (it needs cgo).
const Built = true

// Open starts go-tpm-tools' in-process TPM simulator, freshly
// manufactured: its keys last as long as the process, so key blobs left in
// the state folder by an earlier process are removed (the new simulator
// could not load them). It is for tests and development; only one
// simulator runs per process.
func Open(_ context.Context, cfg attest.Config) (attest.Attester, error) {
	for _, f := range attest.TPMKeyBlobFiles {
		if err := os.Remove(filepath.Join(cfg.StateDir, f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("simulator: %w", err)
		}
	}
	sim, err := simulator.Get()
	if err != nil {
		return nil, fmt.Errorf("simulator: start: %w", err)
	}
	return attest.NewTPM(deviceapi.KindSimulator, transport.FromReadWriteCloser(sim), cfg.StateDir, cfg.Logger)
}
