package store_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/coverage"
	"github.com/rampartsec/rampart/internal/store"
)

// historyFleet is n devices on 1.0 before the fix, then updating to 1.1 one per second after it:
// 2n events, the history a report of a 100k-device product replays on each view.
func historyFleet(n int) ([]coverage.Event, time.Time) {
	t0 := time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC)
	events := make([]coverage.Event, 0, 2*n)
	for i := range n {
		events = append(events, coverage.Event{At: t0.Add(-time.Hour), DeviceID: fmt.Sprintf("%064x", i), Release: "1.0"})
	}
	for i := range n {
		events = append(events, coverage.Event{At: t0.Add(time.Duration(i+1) * time.Second), DeviceID: fmt.Sprintf("%064x", i), Release: "1.1"})
	}
	return events, t0
}

// BenchmarkCoverageFromHistory replays a 100k-device history into a fix's coverage series.
func BenchmarkCoverageFromHistory(b *testing.B) {
	events, t0 := historyFleet(100_000)
	b.ReportAllocs()
	for b.Loop() {
		if s := store.CoverageFromHistory(events, []string{"1.0"}, t0); len(s) == 0 {
			b.Fatal("no samples")
		}
	}
}

// BenchmarkCoverageFromHistoryCeiling is the floor of any replay of the same history: one pass
// over the events into a map of device to release, nothing else.
func BenchmarkCoverageFromHistoryCeiling(b *testing.B) {
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
