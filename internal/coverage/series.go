package coverage

import (
	"fmt"
	"time"
)

// Point is the share of the fleet covered by a release (it or a newer one) at one instant.
type Point struct {
	At      time.Time `json:"at"`
	Covered int       `json:"covered"`
	Devices int       `json:"devices"`
}

// Series replays the history and returns the share covered by release (it or a newer one in
// order) over time: the fleet as it stood at since, then a reading at each instant it changed,
// thinned to at most max points by keeping the last reading of each equal slice of time up to
// until, so a chart of any fleet costs the same. Readings hold until the next (steps).
func Series(events []Event, order []string, release string, since, until time.Time, max int) ([]Point, error) {
	rank := ranks(order)
	target, ok := rank[release]
	if !ok {
		return nil, fmt.Errorf("coverage.Series: %w: %q", ErrUnknownRelease, release)
	}
	if max < 2 {
		max = 2
	}
	isCovered := func(r string) bool {
		k, ok := rank[r]
		return ok && k >= target && r != Unknown
	}
	var all []Point
	replay(sorted(events), since, isCovered, func(at time.Time, covered, total int) {
		all = append(all, Point{At: at, Covered: covered, Devices: total})
	})
	if len(all) <= max || !until.After(since) {
		return all, nil
	}
	// Slices 1..max-1 of (since, until], each ending at since + k*slot, keep their last reading.
	slot := until.Sub(since) / time.Duration(max-1)
	slice := func(at time.Time) time.Duration { return (at.Sub(since) + slot - 1) / slot }
	out := []Point{all[0]}
	for _, p := range all[1:] {
		last := &out[len(out)-1]
		if len(out) > 1 && slice(p.At) == slice(last.At) {
			*last = p // a later reading in the same slice of time
			continue
		}
		out = append(out, p)
	}
	return out, nil
}
