package sim_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rampartsec/rampart/internal/agent/update"
	"github.com/rampartsec/rampart/internal/cli"
	"github.com/rampartsec/rampart/internal/cli/clitest"
	"github.com/rampartsec/rampart/internal/public"
	"github.com/rampartsec/rampart/internal/sim"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/testenv"
)

// world is a running server with a product whose software attesters are accepted and whose
// releases are signed with offline keys, as doc/updates.md leaves it.
type world struct{ *clitest.Fleet }

func startWorld(t *testing.T) *world {
	t.Helper()
	return &world{clitest.StartFleet(t, cli.Root)}
}

// release signs version with a 32 KiB image drawn from seed.
func (w *world) release(t *testing.T, version string, seed uint64) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	img := make([]byte, 32<<10)
	for i := range img {
		img[i] = byte(r.Uint32())
	}
	w.Release(t, version, img)
}

// until polls cond (bounded; never a timing assertion: the limit only stops a hung test).
func until(t *testing.T, f *sim.Fleet, what string, cond func(sim.Progress) bool) sim.Progress {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		p := f.Progress()
		if cond(p) {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not happen; progress: %s", what, p)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestFleet runs six devices (one offline) through enrolment, a first release that every device
// installs despite power cuts and then crashes on, and a second release whose health check
// fails everywhere, so every device rolls back.
func TestFleet(t *testing.T) {
	ctx := context.Background()
	w := startWorld(t)
	w.release(t, "1.0.0", 1)
	f := w.Sim(t, sim.Config{Devices: 6, Offline: 1.0 / 6,
		CrashRate: map[string]float64{"1.0.0": 1}, InstallFailure: map[string]float64{"1.1.0": 1}, PowerCut: 0.7,
		Interval: time.Second, WaitTimeout: time.Second, Seed: 7})
	if err := f.Start(ctx); err != nil {
		t.Fatal(err)
	}
	p := f.Progress()
	// Blank devices measured nothing released: update-only certificates, no release.
	if diff := cmp.Diff([]int{p.Devices, p.Online, p.Enrolled, p.Attested, p.UpdateOnly, p.Releases[""]}, []int{6, 5, 6, 5, 5, 6}); diff != "" {
		t.Fatalf("after the first check-in (-got +want):\n%s\n%s", diff, p)
	}

	clitest.RunSim(t, f)

	w.Deploy(t, "1.0.0")
	p = until(t, f, "the fleet installing 1.0.0", func(p sim.Progress) bool { return p.Releases["1.0.0"] == 5 && p.Crashes >= 5 })
	if p.PowerCuts == 0 {
		t.Errorf("no power cut struck with a 70 %% rate: %s", p)
	}
	if p.Releases[""] != 1 {
		t.Errorf("the offline device moved: %s", p)
	}
	// Every online device committed 1.0.0 on the server's side too, power cuts or not. The
	// simulator counts a device by the slot it booted, and a power cut during the trial boot
	// leaves it booting 1.0.0 uncommitted: it commits and says so at its next check-in, so wait
	// for the server's record (bounded) rather than read it once.
	for i, id := range f.DeviceIDs()[:5] {
		testenv.WaitFor(t, fmt.Sprintf("device %d's commit of 1.0.0 on the server", i+1), func() bool {
			d, err := w.API.GetDevice(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			return d.CurrentRelease == "1.0.0"
		})
	}
	// The power cuts interrupted installs; none of them was reported as a failure of 1.0.0,
	// which the rollout's install_failures criterion would have counted.
	var failed, interrupted int
	if err := storetest.DB(w.Service.Store()).QueryRowContext(ctx, "SELECT COUNT(*) FROM install_reports WHERE release = '1.0.0' AND state = 'failed'").Scan(&failed); err != nil {
		t.Fatal(err)
	}
	if err := storetest.DB(w.Service.Store()).QueryRowContext(ctx, "SELECT COUNT(*) FROM install_reports WHERE state = 'interrupted'").Scan(&interrupted); err != nil {
		t.Fatal(err)
	}
	if failed != 0 {
		t.Errorf("%d failed install reports of 1.0.0 after power cuts (%d interrupted); want none", failed, interrupted)
	}
	t.Logf("install reports after %d power cuts: %d interrupted, %d failed", p.PowerCuts, interrupted, failed)
	// The agents collected the crash files: uploaded to the server, or queued in their outbox
	// while the server does not take them.
	var uploaded int
	until(t, f, "crash reports collected", func(sim.Progress) bool {
		if err := storetest.DB(w.Service.Store()).QueryRowContext(ctx, "SELECT COUNT(*) FROM failure_reports").Scan(&uploaded); err != nil {
			t.Fatal(err)
		}
		queued := 0
		for i := range 5 {
			if f.Status(i).PendingCrashes > 0 {
				queued++
			}
		}
		return uploaded >= 5 || queued == 5
	})
	t.Logf("crash reports on the server: %d", uploaded)

	w.release(t, "1.1.0", 2)
	w.Deploy(t, "1.1.0")
	// Each device fails its health check and rolls back. With a 70 % power-cut rate a trial boot
	// can be cut again and again before its health check completes, and a cut during the install
	// leaves a device on 1.0.0 that has not tried 1.1.0 yet and will. So wait for the end state
	// itself: every device on 1.0.0, out of its trial, refusing 1.1.0 as the set it rolled back
	// (which only a commit forgets).
	rolledBack := func(p sim.Progress) bool {
		if p.FailedInstalls < 5 {
			return false
		}
		for i := range 5 {
			st := f.Status(i)
			if st.Release != "1.0.0" || st.Trial || !strings.Contains(st.LastError, update.ErrPreviouslyFailed.Error()) {
				return false
			}
		}
		return true
	}
	p = until(t, f, "every device rolling back from 1.1.0", rolledBack)
	// Later check-ins do not reinstall the failed set.
	seen := p.CheckIns
	p = until(t, f, "more check-ins", func(p sim.Progress) bool { return p.CheckIns >= seen+10 })
	if p.Releases["1.0.0"] != 5 || p.Releases["1.1.0"] != 0 || p.FailedInstalls < 5 {
		t.Errorf("after the failing release: %s; want 5 devices on 1.0.0 and at least 5 failed installs (a power cut can repeat a health check)", p)
	}
	for i := range 5 {
		if st := f.Status(i); st.Release != "1.0.0" || st.Trial {
			t.Errorf("device %d: %+v", i+1, st)
		}
	}
	t.Log(p)
}

// TestReattest: once its release is revoked, the server tells the fleet to attest again, and
// every device drops to an update-only certificate.
func TestReattest(t *testing.T) {
	ctx := context.Background()
	w := startWorld(t)
	w.release(t, "1.0.0", 1)
	f := w.Sim(t, sim.Config{Devices: 3, Interval: time.Minute, WaitTimeout: time.Minute, Seed: 3})
	if err := f.Claim(ctx, w.API, "lamp", "Production"); err != nil {
		t.Fatalf("claiming again (a restarted simulator): %v", err)
	}
	w.Deploy(t, "1.0.0")
	if err := f.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if p := f.Progress(); p.Releases["1.0.0"] != 3 || p.UpdateOnly != 0 {
		t.Fatalf("after installing 1.0.0: %s", p)
	}
	clitest.RunSim(t, f)
	// The simulator does nothing itself: the server wakes the demoted devices and each agent
	// attests again, as a real one does.
	w.CLI.OK("release", "revoke", "--product", "lamp", "--version", "1.0.0", "--reason", "CVE-2026-0001")
	p := until(t, f, "update-only certificates", func(p sim.Progress) bool { return p.UpdateOnly == 3 && p.Reattests == 3 })
	if p.Releases["1.0.0"] != 3 {
		t.Errorf("after the revocation: %s", p)
	}
}

func TestConfigRefused(t *testing.T) {
	roots := x509.NewCertPool()
	for name, cfg := range map[string]sim.Config{
		"no devices":   {Server: "https://x", RootCAs: roots, Dir: t.TempDir()},
		"no server":    {RootCAs: roots, Dir: t.TempDir(), Devices: 1},
		"offline 2":    {Server: "https://x", RootCAs: roots, Dir: t.TempDir(), Devices: 1, Offline: 2},
		"crash rate":   {Server: "https://x", RootCAs: roots, Dir: t.TempDir(), Devices: 1, CrashRate: map[string]float64{"1": -1}},
		"power cut -1": {Server: "https://x", RootCAs: roots, Dir: t.TempDir(), Devices: 1, PowerCut: -1},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := sim.New(context.Background(), cfg); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestParseRates(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want map[string]float64
		bad  bool
	}{
		{"", map[string]float64{}, false},
		{"1.0.0=0.02", map[string]float64{"1.0.0": 0.02}, false},
		{"1.0.0=0.02, 1.0.1=1", map[string]float64{"1.0.0": 0.02, "1.0.1": 1}, false},
		{"1.0.0", nil, true},
		{"=0.1", nil, true},
		{"1.0.0=2", nil, true},
		{"1.0.0=x", nil, true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := sim.ParseRates(tc.in)
			if (err != nil) != tc.bad {
				t.Fatalf("error %v, want error %v", err, tc.bad)
			}
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("(-got +want):\n%s", diff)
			}
		})
	}
}

// TestRefusalSentences pins what `rampart sim` prints for a refused setting: the sentence alone,
// with no function names.
func TestRefusalSentences(t *testing.T) {
	_, bad := sim.ParseRates("1.0.0=x")
	_, short := sim.ParseRates("1.0.0")
	_, offline := sim.New(context.Background(), sim.Config{Server: "https://x", RootCAs: x509.NewCertPool(), Dir: t.TempDir(), Devices: 1, Offline: 2})
	for _, tc := range []struct {
		err  error
		want string
	}{
		{bad, `rate "x" for 1.0.0 is not a number from 0 to 1`},
		{short, `"1.0.0" is not RELEASE=RATE`},
		{offline, "offline share 2 is not between 0 and 1"},
	} {
		if msg, ok := public.Message(tc.err); !ok || msg != tc.want {
			t.Errorf("%v: sentence %q (%v), want %q", tc.err, msg, ok, tc.want)
		}
	}
}
