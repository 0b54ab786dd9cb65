package coverage

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// clock hands out increasing instants, as a controllable clock.
type clock struct{ now time.Time }

func (c *clock) advance(d time.Duration) time.Time { c.now = c.now.Add(d); return c.now }

func TestAt(t *testing.T) {
	order := []string{"1.0", "1.1", "1.2"}
	events := []Event{
		{t0, "a", "1.0"}, {t0, "b", "1.0"}, {t0, "c", "1.0"}, {t0, "d", "0.9-beta"},
		{t0.Add(time.Hour), "a", "1.2"},
		{t0.Add(2 * time.Hour), "b", "1.1"},
		{t0.Add(3 * time.Hour), "c", ""}, // left the group
		{t0.Add(4 * time.Hour), "b", "1.2"},
	}
	tests := []struct {
		at   time.Duration
		want Snapshot
	}{
		{-time.Hour, Snapshot{Devices: 0, Newest: "1.2"}},
		{0, Snapshot{Devices: 4, Newest: "1.2", PerRelease: []ReleaseCount{{"1.0", 3, 0.75}, {"0.9-beta", 1, 0.25}}}},
		{2 * time.Hour, Snapshot{Devices: 4, Newest: "1.2", NewestShare: 0.25, PerRelease: []ReleaseCount{{"1.2", 1, 0.25}, {"1.1", 1, 0.25}, {"1.0", 1, 0.25}, {"0.9-beta", 1, 0.25}}}},
		{5 * time.Hour, Snapshot{Devices: 3, Newest: "1.2", NewestShare: 2.0 / 3, PerRelease: []ReleaseCount{{"1.2", 2, 2.0 / 3}, {"0.9-beta", 1, 1.0 / 3}}}},
	}
	for _, tt := range tests {
		t.Run(tt.at.String(), func(t *testing.T) {
			tt.want.At = t0.Add(tt.at)
			// Shuffled input gives the same answer.
			rev := make([]Event, len(events))
			for i, e := range events {
				rev[len(events)-1-i] = e
			}
			for _, evs := range [][]Event{events, rev} {
				if diff := cmp.Diff(At(evs, order, t0.Add(tt.at)), tt.want); diff != "" {
					t.Errorf("At (-got +want):\n%s", diff)
				}
			}
		})
	}
}

func TestMilestones(t *testing.T) {
	order := []string{"1.0", "1.1", "1.2"}
	c := &clock{now: t0}
	var events []Event
	for i := range 100 {
		events = append(events, Event{t0, fmt.Sprintf("d%03d", i), "1.0"})
	}
	release := c.advance(time.Hour) // 1.1 ships at t0+1h
	upgrade := func(from, to int, rel string) time.Time {
		at := c.advance(time.Hour)
		for i := from; i < to; i++ {
			events = append(events, Event{at, fmt.Sprintf("d%03d", i), rel})
		}
		return at
	}
	t50 := upgrade(0, 50, "1.1")  // 50 %
	upgrade(50, 80, "1.1")        // 80 %
	t90 := upgrade(80, 90, "1.2") // 90 %, ten of them on the newer 1.2
	t99 := upgrade(90, 99, "1.1") // 99 %
	left := c.advance(time.Hour)  // the last device leaves: 99 of 99
	events = append(events, Event{left, "d099", ""})

	got, err := Milestones(events, order, "1.1", release, DefaultThresholds())
	if err != nil {
		t.Fatal(err)
	}
	want := []Milestone{
		{0.5, true, t50, t50.Sub(release)},
		{0.9, true, t90, t90.Sub(release)},
		{0.99, true, t99, t99.Sub(release)},
		{1, true, left, left.Sub(release)},
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("Milestones 1.1 (-got +want):\n%s", diff)
	}
	// 1.2 reached only 10 %.
	got, err = Milestones(events, order, "1.2", t90, DefaultThresholds())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range got {
		if m.Reached {
			t.Errorf("1.2 reached %v", m.Threshold)
		}
	}
	// A release already everywhere at the start reaches everything at once.
	got, err = Milestones(events, order, "1.0", release, []float64{1})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, []Milestone{{1, true, release, 0}}); diff != "" {
		t.Errorf("Milestones 1.0 (-got +want):\n%s", diff)
	}
}

func TestMilestonesJoinerLowersCoverage(t *testing.T) {
	order := []string{"1", "2"}
	events := []Event{
		{t0, "a", "1"}, {t0, "b", "1"},
		{t0.Add(time.Hour), "a", "2"}, {t0.Add(time.Hour), "b", "2"}, // 100 % at once
	}
	got, err := Milestones(events, order, "2", t0, []float64{1})
	if err != nil {
		t.Fatal(err)
	}
	if !got[0].Reached || !got[0].At.Equal(t0.Add(time.Hour)) {
		t.Errorf("milestone %+v, want reached at t0+1h when both events of the instant applied", got[0])
	}
	// Events at one instant are applied together: a joiner on the old
	// release at the same instant keeps it below 100 %.
	events = append(events, Event{t0.Add(time.Hour), "c", "1"})
	got, _ = Milestones(events, order, "2", t0, []float64{1})
	if got[0].Reached {
		t.Errorf("reached 100 %% with a device on the old release: %+v", got[0])
	}
}

func TestMilestonesErrors(t *testing.T) {
	if _, err := Milestones(nil, []string{"1"}, "2", t0, DefaultThresholds()); !errors.Is(err, ErrUnknownRelease) {
		t.Errorf("unknown release: %v", err)
	}
	for _, th := range []float64{0, -1, 1.5} {
		if _, err := Milestones(nil, []string{"1"}, "1", t0, []float64{th}); err == nil {
			t.Errorf("threshold %v accepted", th)
		}
	}
	got, err := Milestones(nil, []string{"1"}, "1", t0, DefaultThresholds())
	if err != nil || got[0].Reached {
		t.Errorf("empty fleet: %+v %v", got, err)
	}
}

func BenchmarkMilestones10k(b *testing.B) {
	order := []string{"1", "2"}
	var events []Event
	for i := range 10000 {
		id := fmt.Sprintf("dev-%05d", i)
		events = append(events, Event{t0, id, "1"}, Event{t0.Add(time.Duration(i) * time.Second), id, "2"})
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Milestones(events, order, "2", t0, DefaultThresholds()); err != nil {
			b.Fatal(err)
		}
	}
}
