package update

import (
	"context"
	"testing"
)

// BenchmarkIdleCheckIn is one check-in of an installed device when nothing is new: the same
// Updater (as the agent keeps it between check-ins) refreshes both repositories' metadata over
// loopback HTTP, finds the named release committed and does nothing. Its CPU is most of what
// the fleet simulator spends per device between deployments.
func BenchmarkIdleCheckIn(b *testing.B) {
	w := newWorld(b)
	r1, _ := twoReleases(w)
	w.assign(r1)
	d := newDevice(b)
	u := w.updater(b, d, nil)
	ctx := context.Background()
	if out, err := u.RunOnce(ctx); err != nil || !out.Committed {
		b.Fatalf("install: %+v, %v", out, err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		out, err := u.RunOnce(ctx)
		if err != nil || out.Installed || out.Release != "1.0.0" {
			b.Fatalf("idle check-in: %+v, %v", out, err)
		}
	}
}

// BenchmarkCheckInAfterReboot is the same check-in by a new Updater, as after a reboot: nothing
// is kept in memory, so both repositories' metadata is loaded from disk and verified again.
func BenchmarkCheckInAfterReboot(b *testing.B) {
	w := newWorld(b)
	r1, _ := twoReleases(w)
	w.assign(r1)
	d := newDevice(b)
	ctx := context.Background()
	if out, err := w.updater(b, d, nil).RunOnce(ctx); err != nil || !out.Committed {
		b.Fatalf("install: %+v, %v", out, err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		out, err := w.updater(b, d, nil).RunOnce(ctx)
		if err != nil || out.Installed || out.Release != "1.0.0" {
			b.Fatalf("check-in: %+v, %v", out, err)
		}
	}
}
