package rollout

import (
	"crypto/sha256"
	"encoding/binary"
)

// Position maps a device to a stable point in [0, 1) for one deployment: the
// first 53 bits of SHA-256(deploymentID NUL deviceID). The same device always
// lands at the same point in the same deployment, so a device that joins the
// group late falls into a phase deterministically, and each deployment shuffles
// the fleet afresh so the same devices are not always first.
func Position(deploymentID, deviceID string) float64 {
	h := sha256.New()
	h.Write([]byte(deploymentID))
	h.Write([]byte{0})
	h.Write([]byte(deviceID))
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return float64(binary.BigEndian.Uint64(sum[:8])>>11) / (1 << 53)
}

// PhaseAt is the index of the first phase whose cumulative share is above pos.
func (p Plan) PhaseAt(pos float64) int {
	for i, ph := range p.Phases {
		if pos < ph.Share {
			return i
		}
	}
	return p.Last()
}

// Assign is the phase index of a device in a deployment.
func (p Plan) Assign(deploymentID, deviceID string) int {
	return p.PhaseAt(Position(deploymentID, deviceID))
}
