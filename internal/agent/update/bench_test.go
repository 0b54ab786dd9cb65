package update

import (
	"context"
	"fmt"
	"testing"
)

// installedDevice is a world with two releases and a device that installed and committed the
// first, named for it; u is the device's Updater, kept as the agent keeps it.
func installedDevice(b *testing.B) (w *world, u *Updater, r1 release) {
	w = newWorld(b)
	r1, _ = twoReleases(w)
	w.assign(r1)
	u = w.updater(b, newDevice(b), nil)
	if out, err := u.RunOnce(context.Background()); err != nil || !out.Committed {
		b.Fatalf("install: %+v, %v", out, err)
	}
	return w, u, r1
}

// BenchmarkIdleCheckIn is one check-in of an installed device when nothing is new: the same
// Updater (as the agent keeps it between check-ins) refreshes both repositories' metadata over
// loopback HTTP, finds the named release committed and does nothing. Its CPU is most of what
// the fleet simulator spends per device between deployments.
func BenchmarkIdleCheckIn(b *testing.B) {
	_, u, _ := installedDevice(b)
	ctx := context.Background()
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

// BenchmarkHealCheckIn is the check-in of a heal: the kept Updater of a device finds a new
// release signed and named for it (new timestamps in both repositories, the root unchanged),
// verifies the new metadata, installs the release from a delta and commits it. Signing each
// release is outside the timer.
func BenchmarkHealCheckIn(b *testing.B) {
	w, u, r1 := installedDevice(b)
	ctx := context.Background()
	prev := r1
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		// Only the last release is kept to build deltas from, as a repository that signs
		// releases one after another.
		w.releases = map[string]release{prev.version: prev}
		next := w.addRelease(fmt.Sprintf("2.%d.0", i), 1, map[string][]byte{"rootfs": edit(prev.content["rootfs"], uint64(i)+100), "config": prev.content["config"]},
			map[string]string{"config": prev.images["config"].Version})
		w.assign(next)
		b.StartTimer()
		out, err := u.RunOnce(ctx)
		if err != nil || !out.Committed || len(out.Delta) != 1 {
			b.Fatalf("heal check-in %d: %+v, %v", i, out, err)
		}
		prev = next
	}
}
