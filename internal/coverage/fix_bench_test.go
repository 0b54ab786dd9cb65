package coverage

import (
	"fmt"
	"testing"
	"time"
)

// historyFleet is n devices on 1.0 before the fix, then updating to 1.1 one per second after it:
// 2n events, the history a report of a 100k-device product replays on each view.
func historyFleet(n int) ([]Event, time.Time) {
	t0 := time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC)
	events := make([]Event, 0, 2*n)
	for i := range n {
		events = append(events, Event{At: t0.Add(-time.Hour), DeviceID: fmt.Sprintf("%064x", i), Release: "1.0"})
	}
	for i := range n {
		events = append(events, Event{At: t0.Add(time.Duration(i+1) * time.Second), DeviceID: fmt.Sprintf("%064x", i), Release: "1.1"})
	}
	return events, t0
}

// BenchmarkFixHistory replays a 100k-device history into a fix's coverage series.
func BenchmarkFixHistory(b *testing.B) {
	events, t0 := historyFleet(100_000)
	b.ReportAllocs()
	for b.Loop() {
		if s := FixHistory(events, []string{"1.0"}, t0); len(s) == 0 {
			b.Fatal("no samples")
		}
	}
}

// BenchmarkFixHistoryCeiling is the floor of any replay of the same history: one pass
// over the events into a map of device to release, nothing else.
func BenchmarkFixHistoryCeiling(b *testing.B) {
	events, _ := historyFleet(100_000)
	b.ReportAllocs()
	for b.Loop() {
		current := make(map[string]string)
		for _, e := range events {
			current[e.DeviceID] = e.Release
		}
		if len(current) == 0 {
			b.Fatal("empty")
		}
	}
}
