package runner_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/agent/runner"
	"github.com/rampartsec/rampart/internal/agent/update"
	"github.com/rampartsec/rampart/internal/rollout"
	"github.com/rampartsec/rampart/internal/server"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/testenv"
)

// agent is one in-process device: the real runner with its own state, slots and crash spool.
type agent struct {
	r     *runner.Runner
	spool string
}

// agents enrols n devices, claims them into group and runs their first check-in (a blank
// device gets an update-only certificate and no release). health, when set, is each device's
// trial-boot health check.
func (f *fleetServer) agents(t *testing.T, n int, group string, interval time.Duration, health func(i int) update.HealthFunc) []*agent {
	t.Helper()
	ctx := context.Background()
	out := make([]*agent, n)
	var g errgroup.Group
	g.SetLimit(8)
	for i := range out {
		g.Go(func() error {
			state := t.TempDir()
			cfg := runner.Config{Server: f.URL, RootCAs: f.Roots, StateDir: state, SpoolDir: filepath.Join(state, "spool"),
				Attester: "software", KernelBootID: "boot-1", Interval: interval, WaitTimeout: 30 * time.Second}
			if health != nil {
				cfg.Health = health(i)
			}
			r, err := runner.New(ctx, cfg)
			if err != nil {
				return err
			}
			t.Cleanup(r.Close)
			if err := r.Enroll(ctx); err != nil {
				return err
			}
			if _, err := f.API.ClaimDevice(ctx, r.DeviceID(), client.ClaimDeviceRequest{Product: "lamp", Group: group}); err != nil {
				return fmt.Errorf("claim: %w", err)
			}
			if err := r.Once(ctx); err != nil {
				return fmt.Errorf("first check-in: %w", err)
			}
			out[i] = &agent{r: r, spool: cfg.SpoolDir}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	return out
}

// round runs one check-in on every agent, eight at a time. A refused install is the device's
// outcome, not a test failure; the runner reports it to the server.
func round(t *testing.T, agents []*agent) {
	t.Helper()
	var g errgroup.Group
	g.SetLimit(8)
	for _, a := range agents {
		g.Go(func() error {
			a.r.Once(context.Background())
			return nil
		})
	}
	g.Wait()
}

// crash drops a crash file into the agent's spool, as a crash handler would.
func (a *agent) crash(t *testing.T, id string) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"id": id, "program": "/usr/bin/sensord", "component": "rootfs", "signal": 11,
		"frames": []string{"sensor_read+0x1a", "poll_loop+0x40", "main"}})
	if err := os.MkdirAll(a.spool, 0o700); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(a.spool, ".new")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(a.spool, id+".json")); err != nil {
		t.Fatal(err)
	}
}

func (f *fleetServer) show(t *testing.T, id string) client.Deployment {
	t.Helper()
	d, err := f.API.GetDeployment(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// createDeployment runs `rampart deployment create` and returns the deployment.
func (f *fleetServer) createDeployment(t *testing.T, args ...string) client.Deployment {
	t.Helper()
	var d client.Deployment
	out := f.CLI.OK(append([]string{"deployment", "create", "--product", "lamp", "-o", "json"}, args...)...)
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("deployment create: %v\n%s", err, out)
	}
	return d
}

// TestRolloutHealthyFleet runs 26 agents in their real loop (long-poll, one-hour interval).
// They all get 1.0.0 by an emergency deployment; then two stop reporting, and 1.1.0 is deployed
// in phases of 30, 60 and 100 % with no soak. The devices learn of each phase only through the
// server's wake-ups, the stepper opens each phase once the previous one reported, the silent
// devices time out (the storage clock is moved past the deadline) instead of holding the
// rollout, two devices claimed after the deployment started get the release, and coverage
// shows every reporting device on 1.1.0.
func TestRolloutHealthyFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("a fleet of agents takes a few seconds")
	}
	var offset atomic.Int64
	f := startFleet(t, func(c *server.Config) {
		c.StepInterval = 50 * time.Millisecond
		c.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	})
	v1 := f.release(t, "1.0.0", 1, nil)
	f.release(t, "1.1.0", 2, v1)
	all := f.agents(t, 26, "Production", time.Hour, nil)
	live, silent := all[:24:24], all[24:]

	var wg sync.WaitGroup
	start := func(ctx context.Context, as []*agent) {
		for _, a := range as {
			wg.Add(1)
			go func() { defer wg.Done(); a.r.Run(ctx) }()
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); wg.Wait() }()
	silentCtx, stopSilent := context.WithCancel(ctx)
	start(ctx, live)
	start(silentCtx, silent)

	// A wake-up reaches the devices waiting on their long-poll; wait until all are.
	testenv.WaitFor(t, "every device waits", func() bool { return f.Service.Wake().Waiting() == len(all) })
	d0 := f.createDeployment(t, "--group", "Production", "--release", "1.0.0", "--emergency")
	testenv.WaitFor(t, "every device runs 1.0.0", func() bool { return runAll(all, "1.0.0") })
	// The deployment completes at 90 % reporting, and an agent runs its release once committed,
	// before its report reaches the server: stopping the silent devices any earlier could drop
	// their report, and the server would never learn that they run 1.0.0.
	testenv.WaitFor(t, "the emergency deployment completes with every device's report", func() bool {
		d := f.show(t, d0.ID)
		return d.State == "completed" && d.Progress != nil && d.Progress.Installed == len(all)
	})
	stopSilent()

	testenv.WaitFor(t, "the live devices wait", func() bool { return f.Service.Wake().Waiting() == len(live) })
	d := f.createDeployment(t, "--group", "Production", "--release", "1.1.0", "--phases", "30,60,100", "--soak", "0s")
	if d.PreviousRelease != "1.0.0" || d.Phase != 1 {
		t.Fatalf("created %+v", d)
	}
	// Two devices are claimed into the group after the deployment started.
	late := f.agents(t, 2, "Production", time.Hour, nil)
	start(ctx, late)
	reporting := append(live, late...)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if time.Now().After(deadline) {
			t.Fatalf("deployment did not complete: %+v progress %+v", d, d.Progress)
		}
		time.Sleep(50 * time.Millisecond)
		d = f.show(t, d.ID)
		if d.State == "completed" {
			break
		}
		if d.State != "active" {
			t.Fatalf("deployment left active: %s (%s)", d.State, d.Reason)
		}
		// The open phase is held below its reporting share although every reporting device it
		// reached reported: only silent devices hold it, so move the storage clock past their
		// deadline. The phase and the tally come from one read of the store, so they agree.
		// (A phase at 90 % opens the next one on its own; moving the clock then would time out
		// the devices the stepper is just waking.)
		st, err := f.Service.Store().DeploymentStatus(context.Background(), f.TenantID, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		dep, p := st.Deployment.Deployment, st.Tally
		if dep.State == rollout.StateActive && p.Pending > 0 && p.ReportedShare() < dep.Plan.Phases[dep.Phase].MinReporting &&
			p.Installed+p.Failed == countReached(dep, reporting) {
			offset.Add(int64(25 * time.Hour))
		}
	}
	t.Logf("completed: %s", d.Reason)
	// The last phase completes at 90 % reporting too: the last reporting devices may still be
	// installing. Their reports come without any clock moved; moving it now would time them out.
	testenv.WaitFor(t, "every reporting device reports its install", func() bool {
		d = f.show(t, d.ID)
		return d.Progress != nil && d.Progress.Installed+d.Progress.Failed >= len(reporting)
	})
	if p := d.Progress; p == nil || p.Installed != len(reporting) || p.Failed != 0 || p.Installed+p.TimedOut+p.Pending != 28 {
		t.Errorf("progress %+v, want the %d reporting devices installed", d.Progress, len(reporting))
	}
	// A day later every silent device has timed out.
	offset.Add(int64(25 * time.Hour))
	if d = f.show(t, d.ID); d.Progress == nil || d.Progress.TimedOut != len(silent) || d.Progress.Pending != 0 {
		t.Errorf("a day after completion: progress %+v, want the %d silent devices timed out", d.Progress, len(silent))
	}
	t.Logf("rampart deployment show %s:\n%s", d.ID, f.CLI.OK("deployment", "show", d.ID))
	testenv.WaitFor(t, "every reporting device runs 1.1.0", func() bool { return runAll(reporting, "1.1.0") })
	if !runAll(silent, "1.0.0") {
		t.Error("a silent device left 1.0.0")
	}
	var cov client.Coverage
	if err := json.Unmarshal([]byte(f.CLI.OK("coverage", "--product", "lamp", "--group", "Production", "-o", "json")), &cov); err != nil {
		t.Fatal(err)
	}
	reached := map[string][]bool{}
	for _, r := range cov.Releases {
		if r.Release == "unknown" { // what the devices ran before their first release
			continue
		}
		for _, m := range r.Milestones {
			reached[r.Release] = append(reached[r.Release], m.Reached)
		}
	}
	if cov.Devices != 28 || cov.Newest != "1.1.0" || fmt.Sprint(reached) != "map[1.0.0:[true true true true] 1.1.0:[true true false false]]" {
		t.Errorf("coverage %+v, milestones reached %v", cov, reached)
	}
	t.Logf("rampart coverage:\n%s", f.CLI.OK("coverage", "--product", "lamp", "--group", "Production"))
	// Each phase opened in turn: two advances, then completion.
	if out := f.CLI.OK("audit", "list", "--action", "deployment.advance"); strings.Count(out, "deployment.advance") != 2 {
		t.Errorf("audit list --action deployment.advance:\n%s", out)
	}
}

// runAll reports whether every agent runs release.
func runAll(agents []*agent, release string) bool {
	for _, a := range agents {
		if a.r.Status().Release != release {
			return false
		}
	}
	return true
}

// countReached counts the agents the deployment reached (rollout.Deployment.Reached).
func countReached(d rollout.Deployment, agents []*agent) int {
	n := 0
	for _, a := range agents {
		if d.Reached(a.r.DeviceID()) {
			n++
		}
	}
	return n
}

// stored is the deployment as the server holds it, with the plan fitted to the group at
// creation, so that the test asks the product's own rule which devices it reached rather than
// rebuilding the plan from what the API shows.
func (f *fleetServer) stored(t *testing.T, id string) store.Deployment {
	t.Helper()
	d, err := f.Service.Store().DeploymentByID(context.Background(), f.TenantID, id)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestRolloutGatedByFailures drives 36 agents check-in by check-in through two bad releases:
// 1.2.0 fails its health check on a quarter of the devices and is paused inside its first
// phase; after it is aborted, 1.3.0 installs but crashes on most devices, the crash reports
// flow up through the agents' spools, form a failure group new in 1.3.0, and pause it inside
// its first phase too. No device of the second phase is ever offered either release.
func TestRolloutGatedByFailures(t *testing.T) {
	if testing.Short() {
		t.Skip("a fleet of agents takes a few seconds")
	}
	f := startFleet(t, func(c *server.Config) { c.StepInterval = time.Hour })
	f.release(t, "1.2.0", 2, nil)
	f.release(t, "1.3.0", 3, nil)
	agents := f.agents(t, 36, "Field Test", time.Hour, func(i int) update.HealthFunc {
		return func(ctx context.Context, b update.Boot) error {
			if i%4 == 0 && b.Info.Release == "1.2.0" {
				return errors.New("sensord does not start")
			}
			return nil
		}
	})
	step := func() {
		t.Helper()
		if _, err := f.Service.StepDeployments(context.Background()); err != nil {
			t.Fatal(err)
		}
	}

	d := f.createDeployment(t, "--group", "Field Test", "--release", "1.2.0", "--phases", "80,100", "--soak", "0s")
	round(t, agents)
	step()
	d = f.show(t, d.ID)
	if d.State != "paused" || d.Phase != 1 || findings(d) != "install_failures" {
		t.Fatalf("1.2.0 after its first phase: state %s phase %d reason %q findings %s", d.State, d.Phase, d.Reason, findings(d))
	}
	if out := f.CLI.OK("deployment", "show", d.ID); !strings.Contains(out, "install failures") || !strings.Contains(out, "paused") {
		t.Errorf("deployment show:\n%s", out)
	} else {
		t.Logf("rampart deployment show %s:\n%s", d.ID, out)
	}
	checkPhaseTwoUntouched(t, f.stored(t, d.ID), agents)
	f.CLI.OK("deployment", "abort", d.ID, "--reason", "sensord fails on rev B boards")

	d = f.createDeployment(t, "--group", "Field Test", "--release", "1.3.0", "--phases", "80,100", "--soak", "0s")
	round(t, agents)
	crashed := 0
	for i, a := range agents {
		if i%4 != 0 && a.r.Status().Release == "1.3.0" {
			a.crash(t, fmt.Sprintf("crash-%d", i))
			crashed++
		}
	}
	round(t, agents) // uploads the crash reports
	step()
	d = f.show(t, d.ID)
	if d.State != "paused" || d.Phase != 1 || findings(d) != "new_crash_signature" {
		t.Fatalf("1.3.0 after %d devices crashed: state %s phase %d reason %q findings %s", crashed, d.State, d.Phase, d.Reason, findings(d))
	}
	checkPhaseTwoUntouched(t, f.stored(t, d.ID), agents)

	out := f.CLI.OK("failure", "list", "--product", "lamp", "--release", "1.3.0")
	if strings.Count(out, "\n") != 2 || !strings.Contains(out, "sensord") || !strings.Contains(out, "SIGSEGV") {
		t.Fatalf("failure list:\n%s", out)
	}
	t.Logf("rampart failure list --product lamp --release 1.3.0:\n%s", out)
	t.Logf("rampart deployment show %s:\n%s", d.ID, f.CLI.OK("deployment", "show", d.ID))
	id := strings.Fields(strings.Split(out, "\n")[1])[0]
	t.Logf("rampart failure show %s:\n%s", id, f.CLI.OK("failure", "show", id))
	var g client.FailureGroupDetail
	if err := json.Unmarshal([]byte(f.CLI.OK("failure", "show", id, "-o", "json")), &g); err != nil {
		t.Fatal(err)
	}
	var sample struct{ Version string }
	json.Unmarshal(g.Sample, &sample)
	if sample.Version != "1.3.0" {
		t.Errorf("the agent filled the crash's version as %q, want the release it runs", sample.Version)
	}
	if g.NewInRelease != "1.3.0" || g.Count != int64(crashed) || g.Devices != int64(crashed) || len(g.Counts) != 1 || g.Counts[0].Phase != 1 || g.Counts[0].DeploymentID != d.ID {
		t.Errorf("failure group %+v, want %d reports on 1.3.0 in phase 1 of %s", g, crashed, d.ID)
	}
}

// findings lists the criteria the deployment's progress reports as crossed.
func findings(d client.Deployment) string {
	if d.Progress == nil {
		return ""
	}
	var out []string
	for _, f := range d.Progress.Findings {
		out = append(out, f.Criterion)
	}
	return strings.Join(out, ",")
}

// checkPhaseTwoUntouched checks that no device the deployment did not reach installed its
// release.
func checkPhaseTwoUntouched(t *testing.T, d store.Deployment, agents []*agent) {
	t.Helper()
	for _, a := range agents {
		if !d.Reached(a.r.DeviceID()) && a.r.Status().Release == d.Release {
			t.Errorf("device %s of a closed phase installed %s", a.r.DeviceID(), d.Release)
		}
	}
}

// TestCrashesPauseAtOnce: crash reports that cross the new-signature criterion pause the
// deployment the moment they arrive, with no stepper tick (the interval is an hour and the test
// never steps by hand), and the deployment stays in its first phase.
func TestCrashesPauseAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("a fleet of agents takes a few seconds")
	}
	f := startFleet(t, func(c *server.Config) { c.StepInterval = time.Hour })
	f.release(t, "1.3.0", 3, nil)
	agents := f.agents(t, 10, "Field Test", time.Hour, nil)
	d := f.createDeployment(t, "--group", "Field Test", "--release", "1.3.0", "--phases", "80,100", "--soak", "0s")
	round(t, agents)
	crashed := 0
	for i, a := range agents {
		if a.r.Status().Release == "1.3.0" {
			a.crash(t, fmt.Sprintf("crash-%d", i))
			crashed++
		}
	}
	if crashed <= 3 {
		t.Fatalf("only %d devices run 1.3.0; the criterion needs more than 3", crashed)
	}
	round(t, agents) // uploads the crash reports; nothing steps the deployment
	testenv.WaitFor(t, "the deployment paused by the new crash signature", func() bool {
		return f.show(t, d.ID).State == "paused"
	})
	d = f.show(t, d.ID)
	if d.Phase != 1 || findings(d) != "new_crash_signature" {
		t.Fatalf("after %d devices crashed: state %s phase %d reason %q findings %s", crashed, d.State, d.Phase, d.Reason, findings(d))
	}
}
