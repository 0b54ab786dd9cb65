package update

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/tuf"
)

// abDevice is a device whose installer (abInstaller) writes one of two slot files and whose
// bootloader boots the primary one: an in-process stand-in for RAUC with the same contract
// (install switches the primary slot, a reboot boots it, rollback of a booted bad slot switches
// back). internal/agent/rauc runs the real RAUC; this one lets a test cut the power at every
// write of the agent's own state.
type abDevice struct {
	dir     string // the installer's slot files and primary file
	booted  string
	bootN   int
	reboots int
}

func newABDevice(t *testing.T) *abDevice {
	d := &abDevice{dir: t.TempDir(), booted: "a"}
	if err := os.WriteFile(filepath.Join(d.dir, "primary"), []byte("a"), 0o600); err != nil {
		t.Fatal(err)
	}
	return d
}

func (d *abDevice) read(name string) string {
	b, _ := os.ReadFile(filepath.Join(d.dir, name))
	return string(b)
}

func (d *abDevice) write(name, s string) error {
	return os.WriteFile(filepath.Join(d.dir, name), []byte(s), 0o600)
}

// boot is the bootloader: it boots the primary slot, in a new boot.
func (d *abDevice) boot() {
	d.booted = d.read("primary")
	d.bootN++
}

func other(s string) string { return map[string]string{"a": "b", "b": "a"}[s] }

type abInstaller struct{ d *abDevice }

func (i abInstaller) Type() string { return "module:ab" }

func (i abInstaller) Install(_ context.Context, a *Artifact) (bool, error) {
	b, err := os.ReadFile(a.Path)
	if err != nil {
		return false, err
	}
	slot := other(i.d.booted)
	if err := i.d.write(slot, string(b)); err != nil {
		return false, err
	}
	a.Data[DataSlot] = slot
	return true, i.d.write("primary", slot)
}

func (i abInstaller) Reboot(context.Context, *Artifact) error { i.d.reboots++; return nil }

func (i abInstaller) Verify(_ context.Context, a *Artifact) error {
	if i.d.booted != a.Data[DataSlot] {
		return fmt.Errorf("booted slot %s, not %s", i.d.booted, a.Data[DataSlot])
	}
	return nil
}

func (i abInstaller) Commit(context.Context, *Artifact) error { return i.d.write("good", i.d.booted) }

func (i abInstaller) Rollback(_ context.Context, a *Artifact, _ string) (bool, error) {
	if slot := a.Data[DataSlot]; slot != "" && i.d.booted == slot {
		return true, i.d.write("primary", other(slot))
	}
	// The install may have switched the primary slot before the cut: keep the booted one.
	return false, i.d.write("primary", i.d.booted)
}

func (i abInstaller) Cleanup(context.Context, *Artifact) {}

func (w *world) abUpdater(t *testing.T, d *device, ab *abDevice, fsys FS, health HealthFunc) *Updater {
	t.Helper()
	return w.updater(t, d, fsys, func(c *Config) {
		c.Installers = []Installer{abInstaller{ab}}
		c.BootID = fmt.Sprintf("boot-%d", ab.bootN)
		c.Health = health
	})
}

func (w *world) abRelease(version string, content []byte) release {
	w.t.Helper()
	im := imageOf("app", version, 1, content)
	im.Type = "module:ab"
	w.mu.Lock()
	w.blobs[tuf.ImagePath(im.SHA256)] = content
	w.mu.Unlock()
	payload, err := w.repo.NextTargets([]tuf.Image{im}, nil, w.now)
	if err == nil {
		var signed []byte
		if signed, err = tuf.SignTargets(w.repo.Root(), payload, w.ks); err == nil {
			err = w.repo.SetTargets(signed, w.now)
		}
	}
	if err != nil {
		w.t.Fatal(err)
	}
	w.publish()
	rel := release{version: version, images: map[string]tuf.Image{"app": im}, content: map[string][]byte{"app": content}}
	w.releases[version] = rel
	return rel
}

// installerRelease reads the release the installers committed.
func installerRelease(t *testing.T, d *device) Journal {
	t.Helper()
	j, err := ReadJournal(d.stateDir)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// settle runs check-ins on the real filesystem, booting whenever the agent asked, until
// nothing is under way (at most 8 runs).
func (w *world) settle(t *testing.T, d *device, ab *abDevice) (Outcome, error) {
	t.Helper()
	var out Outcome
	var err error
	for range 8 {
		out, err = w.abUpdater(t, d, ab, nil, nil).RunOnce(context.Background())
		if out.Rebooting {
			ab.boot()
			continue
		}
		if j := installerRelease(t, d); j.Phase == "" && !out.Installed {
			return out, err
		}
	}
	return out, err
}

// TestInstallerRoundTrip installs two releases through an installer with a reboot each, then a
// third whose health check fails after its reboot and is rolled back, and a fourth that boots
// the old slot.
func TestInstallerRoundTrip(t *testing.T) {
	w := newWorld(t)
	d := newDevice(t)
	ab := newABDevice(t)
	ctx := context.Background()
	w.assign(w.abRelease("1.0.0", []byte("app 1.0.0")))
	out, err := w.abUpdater(t, d, ab, nil, nil).RunOnce(ctx)
	if err != nil || !out.Rebooting || out.Installer != "module:ab" {
		t.Fatalf("install: %+v, %v", out, err)
	}
	ab.boot()
	if out, err := w.abUpdater(t, d, ab, nil, nil).RunOnce(ctx); err != nil || !out.Committed {
		t.Fatalf("after the reboot: %+v, %v", out, err)
	}
	if j := installerRelease(t, d); j.Release != "1.0.0" || j.Installer != "module:ab" || ab.read("good") != "b" {
		t.Fatalf("journal %+v, good %q", j, ab.read("good"))
	}
	want := []InstallState{StateDownloading, StateInstalling, StateInstalled, StateRebooting, StateCommitted}
	if got := d.reports.states(); !slices.Equal(got, want) {
		t.Fatalf("reported %v, want %v", got, want)
	}

	d.reports.reset()
	w.assign(w.abRelease("1.1.0", []byte("app 1.1.0")))
	sick := func(context.Context, Boot) error { return errors.New("no heartbeat") }
	if out, err := w.abUpdater(t, d, ab, nil, sick).RunOnce(ctx); err != nil || !out.Rebooting {
		t.Fatalf("install 1.1.0: %+v, %v", out, err)
	}
	ab.boot()
	if out, err := w.abUpdater(t, d, ab, nil, sick).RunOnce(ctx); err != nil || !out.Rebooting {
		t.Fatalf("failed health: %+v, %v", out, err)
	}
	ab.boot()
	out, err = w.abUpdater(t, d, ab, nil, sick).RunOnce(ctx)
	if !errors.Is(err, ErrUnhealthy) || !strings.Contains(out.RolledBack, "health check failed: no heartbeat") || ab.booted != "b" {
		t.Fatalf("after the rollback reboot: %+v, %v, booted %s", out, err, ab.booted)
	}
	st := d.reports.states()
	if st[len(st)-1] != StateRolledBack || slices.Contains(st, StateCommitted) {
		t.Fatalf("reported %v", st)
	}

	d.reports.reset()
	w.assign(w.abRelease("1.2.0", []byte("app 1.2.0")))
	if out, err := w.abUpdater(t, d, ab, nil, nil).RunOnce(ctx); err != nil || !out.Rebooting {
		t.Fatalf("install 1.2.0: %+v, %v", out, err)
	}
	ab.bootN++ // the bootloader gave up on the new slot and booted the old one
	out, err = w.abUpdater(t, d, ab, nil, nil).RunOnce(ctx)
	if !errors.Is(err, ErrUnhealthy) || !strings.Contains(out.RolledBack, "after the reboot: booted slot b, not a") {
		t.Fatalf("old slot: %+v, %v", out, err)
	}
	if j := installerRelease(t, d); j.Release != "1.0.0" || j.Phase != "" {
		t.Fatalf("journal %+v", j)
	}
}

// TestInstallerPowerCutAtEveryWrite installs a release through an installer once to count the
// writes, renames and fsyncs of the agent's own state (the download, the journal), then for
// every N repeats it on a fresh device with the power cut at the Nth: the device reboots (the
// bootloader boots whatever slot is primary then) and the check-ins that follow must end with
// the new release committed, nothing left under way, the commit reported, and no failure or
// rollback reported against the release.
func TestInstallerPowerCutAtEveryWrite(t *testing.T) {
	w := newWorld(t)
	r1 := w.abRelease("1.0.0", []byte(strings.Repeat("app 1.0.0 ", 1000)))
	r2 := w.abRelease("1.1.0", []byte(strings.Repeat("app 1.1.0 ", 1000)))
	ctx := context.Background()
	prepare := func() (*device, *abDevice) {
		d, ab := newDevice(t), newABDevice(t)
		w.assign(r1)
		if out, err := w.settle(t, d, ab); err != nil || installerRelease(t, d).Release != "1.0.0" {
			t.Fatalf("install 1.0.0: %+v, %v", out, err)
		}
		w.assign(r2)
		d.reports.reset()
		return d, ab
	}
	// run is the uninterrupted update through fsys: install, reboot, commit.
	run := func(d *device, ab *abDevice, fsys FS) {
		for range 3 {
			u, err := w.newUpdater(d, fsys, func(c *Config) {
				c.Installers, c.BootID = []Installer{abInstaller{ab}}, fmt.Sprintf("boot-%d", ab.bootN)
			})
			if err != nil {
				return // the power is off
			}
			out, err := u.RunOnce(ctx)
			if err != nil || !out.Rebooting {
				return
			}
			ab.boot()
		}
	}
	d, ab := prepare()
	counter := newCrashFS(0)
	run(d, ab, counter)
	if j := installerRelease(t, d); j.Release != "1.1.0" {
		t.Fatalf("uncut update: journal %+v", j)
	}
	total := counter.ops
	if total < 8 {
		t.Fatalf("only %d writes counted", total)
	}
	for n := 1; n <= total; n++ {
		d, ab := prepare()
		cut := newCrashFS(n)
		run(d, ab, cut)
		if !cut.dead {
			t.Fatalf("cut %d/%d: power was never cut", n, total)
		}
		ab.boot() // power back: a boot of whatever is primary
		if _, err := w.settle(t, d, ab); err != nil {
			t.Fatalf("cut %d/%d: after power returned: %v", n, total, err)
		}
		j := installerRelease(t, d)
		if j.Release != "1.1.0" || j.Phase != "" || ab.booted != ab.read("good") {
			t.Fatalf("cut %d/%d: journal %+v, booted %s, good %s", n, total, j, ab.booted, ab.read("good"))
		}
		states := d.reports.states()
		if slices.Contains(states, StateFailed) || slices.Contains(states, StateRolledBack) {
			t.Fatalf("cut %d/%d: reported %v, want no failure", n, total, states)
		}
		if !slices.Contains(states, StateCommitted) {
			t.Fatalf("cut %d/%d: reported %v, want committed", n, total, states)
		}
	}
	t.Logf("cut power at each of %d writes", total)
}
