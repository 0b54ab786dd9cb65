// Package coverage computes fleet coverage from the history of which release
// each device runs: devices per release at an instant, the share on the
// newest release, and when a release first reached 50, 90, 99 and 100 % of
// the fleet.
//
// It is pure: the history comes from storage, the instant from the caller.
// The store and the demo import it.
package coverage

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// Event says that from At on, a device runs Release. An empty Release means
// the device left the fleet (moved to another group, decommissioned).
type Event struct {
	At       time.Time `json:"at"`
	DeviceID string    `json:"device_id"`
	Release  string    `json:"release"`
}

// Unknown is the release recorded for a claimed device that has not reported
// what it runs. It is never covered: a device counts toward a fix only once
// it says it runs a release that carries it.
const Unknown = "unknown"

// ErrUnknownRelease is returned when a release is not in the given order.
var ErrUnknownRelease = errors.New("release not in the release order")

// DefaultThresholds are the coverage milestones Rampart reports.
func DefaultThresholds() []float64 { return []float64{0.5, 0.9, 0.99, 1} }

// ReleaseCount is how many devices run one release.
type ReleaseCount struct {
	Release string  `json:"release"`
	Devices int     `json:"devices"`
	Share   float64 `json:"share"`
}

// Snapshot is the fleet at one instant.
type Snapshot struct {
	At      time.Time `json:"at"`
	Devices int       `json:"devices"`
	// PerRelease lists releases newest first, then releases missing from
	// the order by name; releases no device runs are left out.
	PerRelease []ReleaseCount `json:"per_release"`
	// Newest is the newest release in the order; NewestShare the share of
	// devices running it.
	Newest      string  `json:"newest"`
	NewestShare float64 `json:"newest_share"`
}

// sorted returns the events in time order, stable for equal times.
func sorted(events []Event) []Event {
	out := slices.Clone(events)
	slices.SortStableFunc(out, func(a, b Event) int { return a.At.Compare(b.At) })
	return out
}

// replay applies events (in time order) to a fleet of devices and calls judge with the number
// of devices whose release covers and the fleet's size: once for the fleet as it stood at since
// (the events up to since applied), then at each later instant, once all of that instant's
// events are applied. An event with no release is a device leaving the fleet.
func replay(events []Event, since time.Time, covers func(release string) bool, judge func(at time.Time, covered, total int)) {
	current := map[string]string{}
	covered := 0
	apply := func(e Event) {
		if prev, ok := current[e.DeviceID]; ok && covers(prev) {
			covered--
		}
		if e.Release == "" {
			delete(current, e.DeviceID)
			return
		}
		current[e.DeviceID] = e.Release
		if covers(e.Release) {
			covered++
		}
	}
	i := 0
	for ; i < len(events) && !events[i].At.After(since); i++ {
		apply(events[i])
	}
	judge(since, covered, len(current))
	for ; i < len(events); i++ {
		apply(events[i])
		if i+1 == len(events) || !events[i+1].At.Equal(events[i].At) {
			judge(events[i].At, covered, len(current))
		}
	}
}

func share(n, total int) float64 {
	if total == 0 {
		return 0
	}
	return float64(n) / float64(total)
}

// At computes the fleet at the instant at from the history. order lists the
// product's releases oldest first.
func At(events []Event, order []string, at time.Time) Snapshot {
	current := map[string]string{}
	for _, e := range sorted(events) {
		if e.At.After(at) {
			break
		}
		if e.Release == "" {
			delete(current, e.DeviceID)
		} else {
			current[e.DeviceID] = e.Release
		}
	}
	counts := map[string]int{}
	for _, r := range current {
		counts[r]++
	}
	rank := ranks(order)
	s := Snapshot{At: at, Devices: len(current)}
	for r, n := range counts {
		s.PerRelease = append(s.PerRelease, ReleaseCount{Release: r, Devices: n, Share: share(n, len(current))})
	}
	slices.SortFunc(s.PerRelease, func(a, b ReleaseCount) int {
		ra, oka := rank[a.Release]
		rb, okb := rank[b.Release]
		switch {
		case oka && okb:
			return cmp.Compare(rb, ra)
		case oka:
			return -1
		case okb:
			return 1
		}
		return cmp.Compare(a.Release, b.Release)
	})
	if len(order) > 0 {
		s.Newest = order[len(order)-1]
		s.NewestShare = share(counts[s.Newest], len(current))
	}
	return s
}

func ranks(order []string) map[string]int {
	m := make(map[string]int, len(order))
	for i, r := range order {
		m[r] = i
	}
	return m
}

// Milestone is when a release first reached a share of the fleet.
type Milestone struct {
	Threshold float64       `json:"threshold"`
	Reached   bool          `json:"reached"`
	At        time.Time     `json:"at,omitzero"`
	After     time.Duration `json:"after"` // since the start given to Milestones
}

// needed is the number of covered devices that reaches the threshold in a
// fleet of total, computed without float surprises (99 % of 100 is 99).
func needed(threshold float64, total int) int {
	return int(math.Ceil(threshold*float64(total) - 1e-9))
}

// Milestones replays the history and reports, for each threshold, the first
// instant at which devices running the release or a newer one made up at
// least that share of the fleet, and how long after since that was. A
// device counts as covered by a newer release too, since it carries the
// fix. Only instants after since count; an empty fleet covers nothing.
func Milestones(events []Event, order []string, release string, since time.Time, thresholds []float64) ([]Milestone, error) {
	rank := ranks(order)
	target, ok := rank[release]
	if !ok {
		return nil, fmt.Errorf("coverage.Milestones: %w: %q", ErrUnknownRelease, release)
	}
	for _, th := range thresholds {
		if math.IsNaN(th) || th <= 0 || th > 1 {
			return nil, fmt.Errorf("coverage.Milestones: threshold %v is not in (0, 1]", th)
		}
	}
	out := make([]Milestone, len(thresholds))
	for i, th := range thresholds {
		out[i].Threshold = th
	}
	isCovered := func(r string) bool {
		k, ok := rank[r]
		return ok && k >= target && r != Unknown
	}
	// The fleet as it stood at since: a release that already covered it reaches those
	// milestones at since.
	replay(sorted(events), since, isCovered, func(at time.Time, covered, total int) {
		if total == 0 {
			return
		}
		for i := range out {
			if !out[i].Reached && covered >= needed(out[i].Threshold, total) {
				out[i].Reached, out[i].At, out[i].After = true, at, at.Sub(since)
			}
		}
	})
	return out, nil
}
