//go:build simulator && cgo

package attest

import (
	"context"
	"crypto/rand"
	"encoding/binary"
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

const simulatorSeedFile = "simulator.seed"

// openSimulator starts go-tpm-tools' in-process TPM simulator. Its
// hierarchy seeds derive from a seed kept in the state directory, so the
// EK, the storage root key and thus the saved key blobs survive restarts of
// the agent. The simulator is for development and tests: its seed is a
// plain file. Only one simulator runs per process.
func openSimulator(_ context.Context, cfg Config) (Attester, error) {
	seed, err := simulatorSeed(filepath.Join(cfg.StateDir, simulatorSeedFile))
	if err != nil {
		return nil, fmt.Errorf("simulator: %w", err)
	}
	sim, err := simulator.GetWithFixedSeedInsecure(seed)
	if err != nil {
		return nil, fmt.Errorf("simulator: start: %w", err)
	}
	return NewTPM(wire.KindSimulator, transport.FromReadWriteCloser(sim), cfg.StateDir)
}

func simulatorSeed(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if len(b) != 8 {
			return 0, fmt.Errorf("seed %s: want 8 bytes, have %d", path, len(b))
		}
		return int64(binary.BigEndian.Uint64(b)), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("read seed: %w", err)
	}
	b = make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return 0, fmt.Errorf("seed: %w", err)
	}
	if err := writeFileAtomic(path, b); err != nil {
		return 0, err
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}
