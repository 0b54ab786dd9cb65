package coverage

import "time"

// FixSample is the coverage of a fix at one instant: Covered of the Total devices run a release
// not listed as affected.
type FixSample struct {
	At      time.Time
	Covered int64
	Total   int64
}

// FixHistory replays coverage events (in time order, departures before arrivals at one
// instant, as the store's CoverageEvents returns them) and returns the coverage of a fix
// released at since: the fleet as it stood at since, then a sample at each later instant where
// the covered share, in thousandths, changed (so every 50/90/99/100 % crossing is kept), and
// the last instant. A device counts as covered when it runs a release not in affected; a device
// whose release is Unknown (claimed, never reported) is in Total but never covered.
func FixHistory(events []Event, affected []string, since time.Time) []FixSample {
	isAffected := make(map[string]bool, len(affected))
	for _, v := range affected {
		isAffected[v] = true
	}
	isCovered := func(release string) bool { return release != Unknown && !isAffected[release] }
	perMille := func(c FixSample) int64 {
		if c.Total == 0 {
			return -1
		}
		return c.Covered * 1000 / c.Total
	}
	var out []FixSample
	// The latest instant not kept, so that the series ends on the last state.
	var pending FixSample
	hasPending := false
	replay(events, since, isCovered, func(at time.Time, covered, total int) {
		c := FixSample{At: at, Covered: int64(covered), Total: int64(total)}
		switch {
		case out == nil:
			out = []FixSample{c}
		case perMille(c) != perMille(out[len(out)-1]):
			out = append(out, c)
			hasPending = false
		default:
			pending, hasPending = c, true
		}
	})
	if last := out[len(out)-1]; hasPending && (pending.Covered != last.Covered || pending.Total != last.Total) {
		out = append(out, pending)
	}
	return out
}
