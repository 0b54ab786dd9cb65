package coverage

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestFixHistory checks the replay of coverage events into a fix's coverage series:
// the fleet at the fix release, one sample per change of the covered share in thousandths,
// departures, and devices on releases that were never affected.
func TestFixHistory(t *testing.T) {
	t0 := time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC)
	at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
	ev := func(h int, dev, rel string) Event {
		return Event{At: at(h), DeviceID: dev, Release: rel}
	}
	sample := func(h int, covered, total int64) FixSample {
		return FixSample{At: at(h), Covered: covered, Total: total}
	}
	tests := []struct {
		name   string
		events []Event
		since  time.Time
		want   []FixSample
	}{
		{"no devices", nil, at(0), []FixSample{sample(0, 0, 0)}},
		{
			"fleet moves to the fix",
			[]Event{ev(-5, "a", "1.0"), ev(-5, "b", "1.0"), ev(2, "a", "1.1"), ev(4, "b", "1.1")},
			at(0),
			[]FixSample{sample(0, 0, 2), sample(2, 1, 2), sample(4, 2, 2)},
		},
		{
			"a release never listed as affected counts as covered",
			[]Event{ev(-5, "a", "1.0"), ev(-5, "b", "0.9-custom")},
			at(0),
			[]FixSample{sample(0, 1, 2)},
		},
		{
			"a device that never reported a release is in the fleet but not covered",
			[]Event{ev(-5, "a", "1.0"), ev(-5, "b", Unknown), ev(2, "a", "1.1"), ev(3, "b", "1.1")},
			at(0),
			[]FixSample{sample(0, 0, 2), sample(2, 1, 2), sample(3, 2, 2)},
		},
		{
			"a departing exposed device raises coverage; a joining one lowers it",
			[]Event{ev(-5, "a", "1.0"), ev(-5, "b", "1.1"), ev(1, "a", ""), ev(3, "c", "1.0")},
			at(0),
			[]FixSample{sample(0, 1, 2), sample(1, 1, 1), sample(3, 1, 2)},
		},
		{
			"one instant is judged once all its events are applied",
			[]Event{ev(-5, "a", "1.0"), ev(2, "a", ""), ev(2, "a", "1.1")},
			at(0),
			[]FixSample{sample(0, 0, 1), sample(2, 1, 1)},
		},
		{
			"changes under a thousandth are folded, the last state is kept",
			append(fleetOn(2000, "1.0", -1), ev(1, "d0", "1.1"), ev(2, "d1", "1.1"), ev(3, "d2", "1.1")),
			at(0),
			[]FixSample{sample(0, 0, 2000), sample(2, 2, 2000), sample(3, 3, 2000)},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := FixHistory(tc.events, []string{"1.0"}, tc.since)
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("FixHistory (-got +want):\n%s", diff)
			}
		})
	}
}

// fleetOn is n devices d0..dn-1 running release from hour h of 2026-08-01.
func fleetOn(n int, release string, h int) []Event {
	out := make([]Event, n)
	for i := range out {
		out[i] = Event{At: time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(h) * time.Hour), DeviceID: fmt.Sprintf("d%d", i), Release: release}
	}
	return out
}
