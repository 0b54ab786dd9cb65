//go:build simulator && cgo

package attest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/google/go-tpm-tools/simulator"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/rampartsec/rampart/internal/attest/wire"
)

// SimulatorBuilt reports whether this binary includes the simulator backend.
const SimulatorBuilt = true

// openSimulator starts go-tpm-tools' in-process TPM simulator, freshly
// manufactured: its keys last as long as the process, so key blobs left in
// the state folder by an earlier process are removed (the new simulator
// could not load them). It is for tests and development; only one
// simulator runs per process.
func openSimulator(_ context.Context, cfg Config) (Attester, error) {
	for _, f := range []string{akBlobFile, certKeyBlobFile} {
		if err := os.Remove(filepath.Join(cfg.StateDir, f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("simulator: %w", err)
		}
	}
	sim, err := simulator.Get()
	if err != nil {
		return nil, fmt.Errorf("simulator: start: %w", err)
	}
	return NewTPM(wire.KindSimulator, transport.FromReadWriteCloser(sim), cfg.StateDir, cfg.Logger)
}
