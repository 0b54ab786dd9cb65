package update

import (
	"context"
	"errors"
	"slices"
	"testing"
)

// TestPowerCutAtEveryWrite installs an update once to count the writes,
// renames and fsyncs it does, then for every N repeats it on a fresh device
// with the power cut at the Nth. After each cut the device reboots on the
// real filesystem and must boot a verified slot holding either the old or
// the new release; then, power restored, the next run must end committed
// on the new release.
func TestPowerCutAtEveryWrite(t *testing.T) {
	for _, tc := range []struct {
		name     string
		useDelta bool
	}{
		{"delta", true},
		{"full image", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			r1, r2 := twoReleases(w)
			if !tc.useDelta {
				for path := range w.blobs {
					if len(path) > 7 && path[:7] == "deltas/" {
						delete(w.blobs, path)
					}
				}
			}
			ctx := context.Background()
			prepare := func() *device {
				d := newDevice(t)
				w.assign(r1)
				if out, err := w.updater(t, d, nil).RunOnce(ctx); err != nil || !out.Committed {
					t.Fatalf("install 1.0.0: %+v, %v", out, err)
				}
				w.assign(r2)
				return d
			}

			d := prepare()
			counter := newCrashFS(0)
			out, err := w.updater(t, d, counter).RunOnce(ctx)
			if err != nil || !out.Committed {
				t.Fatalf("uncut update: %+v, %v", out, err)
			}
			if tc.useDelta != (len(out.Delta) == 1) {
				t.Fatalf("uncut update used deltas %v", out.Delta)
			}
			total := counter.ops
			if total < 10 {
				t.Fatalf("only %d writes counted", total)
			}
			for n := 1; n <= total; n++ {
				d := prepare()
				d.reports.reset()
				cut := newCrashFS(n)
				u, err := w.newUpdater(d, cut)
				if err == nil {
					_, err = u.RunOnce(ctx)
				}
				if !cut.dead {
					t.Fatalf("cut %d/%d: power was never cut", n, total)
				}
				// Only a cut after the commit, while the agent notes that the server took the
				// committed report, leaves a successful run.
				if err == nil && committedRelease(t, d) != "1.1.0" {
					t.Fatalf("cut %d/%d: run reported success", n, total)
				}
				b, err := booted(t, d)
				if err != nil {
					t.Fatalf("cut %d/%d: device does not boot: %v", n, total, err)
				}
				if b.Info.Release != "1.0.0" && b.Info.Release != "1.1.0" {
					t.Fatalf("cut %d/%d: booted release %q", n, total, b.Info.Release)
				}
				out, err := w.updater(t, d, nil).RunOnce(ctx)
				if err != nil && !errors.Is(err, ErrUnhealthy) {
					t.Fatalf("cut %d/%d: run after power returned: %v", n, total, err)
				}
				if got := committedRelease(t, d); got != "1.1.0" {
					t.Fatalf("cut %d/%d: after recovery committed %q (outcome %+v)", n, total, got, out)
				}
				// An install that a power cut interrupted and that then resumed is not a failed
				// release: the server must not count it against the rollout.
				states := d.reports.states()
				if slices.Contains(states, StateFailed) {
					t.Fatalf("cut %d/%d: reported %v, want no failed state", n, total, states)
				}
				// And the server learns of the commit, whenever the cut struck.
				if !slices.Contains(states, StateCommitted) {
					t.Fatalf("cut %d/%d: reported %v, want committed", n, total, states)
				}
			}
			t.Logf("cut power at each of %d writes", total)
		})
	}
}
