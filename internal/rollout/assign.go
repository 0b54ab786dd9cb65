package rollout

import (
	"crypto/sha256"
	"encoding/binary"
	"math"
	"slices"
)

// Position maps a device to a stable point in [0, 1) for one deployment: the
// first 53 bits of SHA-256(deploymentID NUL deviceID). The same device always
// lands at the same point in the same deployment, so a device that joins the
// group late falls into a phase deterministically, and each deployment shuffles
// the fleet afresh so the same devices are not always first.
func Position(deploymentID, deviceID string) float64 {
	// Every check-in of a device in a deployment's group asks; the usual IDs (a UUID and a
	// 64-digit device ID) fit a buffer on the stack, so the answer allocates nothing.
	var buf [160]byte
	sum := sha256.Sum256(append(append(append(buf[:0], deploymentID...), 0), deviceID...))
	return float64(binary.BigEndian.Uint64(sum[:8])>>11) / (1 << 53)
}

// PhaseAt is the index of the first phase whose cutoff (its cumulative share, unless Fit set
// one) is above pos.
func (p Plan) PhaseAt(pos float64) int {
	for i, ph := range p.Phases {
		bound := ph.Share
		if ph.Cutoff > 0 {
			bound = ph.Cutoff
		}
		if pos < bound {
			return i
		}
	}
	return p.Last()
}

// Fit sets each phase's cutoff so that, of the group's members when the deployment starts, a
// phase of share s offers the release to ceil(s × N) devices: the share, rounded up to a whole
// device (a 20 % phase of 30 devices is 6 of them; a 10 % phase of 5 is 1). Hashed positions
// alone spread devices only on average (a 20 % phase could hold 9 of 30). The devices are
// still ordered by Position, so the assignment stays stable and shuffled per deployment; one
// that joins later falls in the phase its position lands in. With no members the plan is
// returned as it is. The last phase takes every device and needs no cutoff.
func (p Plan) Fit(deploymentID string, members []string) Plan {
	if len(members) == 0 || len(p.Phases) == 0 {
		return p
	}
	pos := make([]float64, len(members))
	for i, id := range members {
		pos[i] = Position(deploymentID, id)
	}
	slices.Sort(pos)
	n := len(pos)
	out := Plan{Phases: slices.Clone(p.Phases)}
	for i := range out.Phases[:len(out.Phases)-1] {
		ph := &out.Phases[i]
		k := min(n, int(math.Ceil(ph.Share*float64(n)-1e-9)))
		switch {
		case k >= n:
			ph.Cutoff = 1 // every member; positions are below 1
		case k == 0:
			ph.Cutoff = max(pos[0]/2, math.SmallestNonzeroFloat64) // below every member
		default:
			ph.Cutoff = pos[k-1] + (pos[k]-pos[k-1])/2 // between the k-th and the next member
		}
	}
	return out
}

// Assign is the phase index of a device in a deployment.
func (p Plan) Assign(deploymentID, deviceID string) int {
	return p.PhaseAt(Position(deploymentID, deviceID))
}
