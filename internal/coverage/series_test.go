package coverage

import (
	"fmt"
	"testing"
	"time"
)

func TestSeries(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var ev []Event
	for i := range 4 {
		ev = append(ev, Event{At: t0, DeviceID: fmt.Sprint("d", i), Release: "1.0"})
	}
	ev = append(ev, Event{At: t0.Add(time.Hour), DeviceID: "d0", Release: "1.1"},
		Event{At: t0.Add(2 * time.Hour), DeviceID: "d1", Release: "1.2"},
		Event{At: t0.Add(3 * time.Hour), DeviceID: "d2", Release: "1.1"})
	order := []string{"1.0", "1.1", "1.2"}
	got, err := Series(ev, order, "1.1", t0, t0.Add(3*time.Hour), 100)
	if err != nil {
		t.Fatal(err)
	}
	want := []int{0, 1, 2, 3} // 1.2 covers too
	if len(got) != len(want) {
		t.Fatalf("got %d points, want %d: %+v", len(got), len(want), got)
	}
	for i, p := range got {
		if p.Covered != want[i] || p.Devices != 4 {
			t.Errorf("point %d = %+v, want %d of 4 covered", i, p, want[i])
		}
	}
	// Thinned to 2 points: the first and the last reading.
	got, _ = Series(ev, order, "1.1", t0, t0.Add(3*time.Hour), 2)
	if len(got) != 2 || got[0].Covered != 0 || got[1].Covered != 3 {
		t.Errorf("thinned = %+v, want the first and last readings", got)
	}
	if _, err := Series(ev, order, "9.9", t0, t0, 10); err == nil {
		t.Error("an unknown release gave a series")
	}
}
