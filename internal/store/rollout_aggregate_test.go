package store_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/rampartsec/rampart/internal/deviceapi"
	"github.com/rampartsec/rampart/internal/rollout"
	"github.com/rampartsec/rampart/internal/store"
)

// TestStepAggregatesMatchSnapshot drives deployments over random fleets (installs, failed
// installs, crashes on both releases, devices joining and leaving the group, resumes, time
// passing by seconds or minutes) and checks after every move that the SQL aggregates of
// DeploymentStatus, and the tally of StepDeployment over the group it remembers and patches
// with what changed, tally and decide exactly as a fresh snapshot of every member
// (ReferenceStatus).
func TestStepAggregatesMatchSnapshot(t *testing.T) {
	eachWithClock(t, func(t *testing.T, s *store.Store, clk *testClock) {
		ctx := context.Background()
		for seed := range uint64(3) {
			r := rand.New(rand.NewPCG(seed, 20))
			f := newFleet(t, s, fmt.Sprintf("tenant-%d", seed), 40+r.IntN(40))
			crit := rollout.DefaultCriteria()
			crit.InstallFailures.MaxShare = 0.3
			crit.InstallFailures.MinSample = 3
			crit.Timeouts.Deadline = 20 * time.Minute
			crit.Timeouts.MaxShare = 0.9
			crit.CrashRate.MinExposureHours = 0.5
			crit.NewSignature.MaxDevices = 2
			d, err := s.CreateDeployment(ctx, actor, f.tenant.ID, store.DeploymentSpec{Product: "thermostat", Group: "Field Test", Release: "1.1",
				Plan: plan(t, "20,50,100", "10m"), Criteria: crit})
			if err != nil {
				t.Fatal(err)
			}
			check := func(round int, what string) {
				t.Helper()
				got, err := s.DeploymentStatus(ctx, f.tenant.ID, d.ID)
				if err != nil {
					t.Fatal(err)
				}
				want, err := s.ReferenceStatus(ctx, f.tenant.ID, d.ID)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(got, want, cmpopts.EquateApprox(0, 1e-9)); diff != "" {
					t.Fatalf("seed %d round %d after %s: aggregate (-got +want):\n%s", seed, round, what, diff)
				}
			}
			crashes := 0
			for round := range 100 {
				dev := f.devices[r.IntN(len(f.devices))]
				var what string
				switch r.IntN(12) {
				case 8:
					what = "crashes on the new release"
					for _, id := range f.devices {
						if cur, err := s.DeviceByID(ctx, f.tenant.ID, id); err == nil && cur.CurrentRelease == "1.1" && r.IntN(3) == 0 {
							crashes++
							if _, err := s.AddFailureReports(ctx, f.tenant.ID, id, []deviceapi.CrashReport{
								crashReport(fmt.Sprintf("c%d", crashes), []string{"tls_init", "net_poll"}[r.IntN(2)], clk.Now())}); err != nil {
								t.Fatal(err)
							}
						}
					}
				case 0, 1:
					what = "installs"
					for range 1 + r.IntN(8) {
						dev := f.devices[r.IntN(len(f.devices))]
						if off, err := s.OfferForDevice(ctx, f.tenant.ID, dev); err == nil && off.Offered {
							if err := s.RecordDeviceRelease(ctx, f.tenant.ID, dev, "1.1"); err != nil {
								t.Fatal(err)
							}
						}
					}
				case 2:
					what = "a failed install"
					if err := s.RecordInstallFailure(ctx, f.tenant.ID, dev, "1.1", "boom"); err != nil && !errors.Is(err, store.ErrNotFound) {
						t.Fatal(err)
					}
				case 3:
					what = "crashes"
					var reps []deviceapi.CrashReport
					for range 1 + r.IntN(3) {
						crashes++
						at := clk.Now().Add(-time.Duration(r.IntN(40)) * time.Minute)
						reps = append(reps, crashReport(fmt.Sprintf("c%d", crashes), []string{"sensor_read", "sensor_write", "net_poll", "", "tls_init"}[r.IntN(5)], at))
					}
					if _, err := s.AddFailureReports(ctx, f.tenant.ID, dev, reps); err != nil {
						t.Fatal(err)
					}
				case 4:
					what = "joiners"
					addDevices(t, s, f, 1+r.IntN(4), []string{"1.0", "1.1", "0.9"}[r.IntN(3)])
				case 5:
					what = "a move"
					group := []string{"Production", "Field Test"}[r.IntN(2)]
					if _, err := s.MoveDevice(ctx, actor, f.tenant.ID, dev, group); err != nil {
						t.Fatal(err)
					}
				case 6, 10, 11:
					what = "a step"
					st, err := s.StepDeployment(ctx, f.tenant.ID, d.ID)
					if err != nil {
						t.Fatal(err)
					}
					if len(st.Events) == 0 {
						// Nothing moved: the step's tally is the group's now.
						want, err := s.ReferenceStatus(ctx, f.tenant.ID, d.ID)
						if err != nil {
							t.Fatal(err)
						}
						if diff := cmp.Diff(st.Tally, want.Tally, cmpopts.EquateApprox(0, 1e-9)); diff != "" {
							t.Fatalf("seed %d round %d: step's tally (-got +want):\n%s", seed, round, diff)
						}
					}
				case 7:
					what = "a resume"
					if cur, err := s.DeploymentByID(ctx, f.tenant.ID, d.ID); err == nil && cur.State == rollout.StatePaused {
						if _, err := s.ResumeDeployment(ctx, actor, f.tenant.ID, d.ID, "judged"); err != nil {
							t.Fatal(err)
						}
					}
				default:
					what = "time"
				}
				clk.Advance([]time.Duration{0, 5 * time.Second, 40 * time.Second, 40 * time.Second, 2 * time.Minute, 2 * time.Minute, 15 * time.Minute}[r.IntN(7)])
				check(round, what)
			}
		}
	})
}

// TestStepPicksUpJoinersAndSurges checks the step against the group as it changes mid-deployment:
// devices that join the group are recorded as members at the step that first sees them, and
// count toward the phases and timeouts from then; a surge of failed installs among them pauses
// the deployment at the next check (beside the first members' timeouts).
func TestStepPicksUpJoinersAndSurges(t *testing.T) {
	eachWithClock(t, func(t *testing.T, s *store.Store, clk *testClock) {
		ctx := context.Background()
		f := newFleet(t, s, "acme", 20)
		d, err := s.CreateDeployment(ctx, actor, f.tenant.ID, store.DeploymentSpec{Product: "thermostat", Group: "Field Test", Release: "1.1",
			Plan: plan(t, "100", "1h"), Criteria: rollout.DefaultCriteria()})
		if err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Minute)
		joiners := addDevices(t, s, f, 30, "1.0")
		st, err := s.StepDeployment(ctx, f.tenant.ID, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if st.Tally.Devices != 50 || st.Tally.Offered != 50 || len(st.Events) != 0 {
			t.Fatalf("step after 30 joined: %+v, events %v; want 50 members offered, no transition", st.Tally, st.Events)
		}
		for _, id := range f.devices[:10] {
			if err := s.RecordDeviceRelease(ctx, f.tenant.ID, id, "1.1"); err != nil {
				t.Fatal(err)
			}
		}
		// The joiners' timeout deadline counts from the step that saw them, a minute after
		// creation: 10 s past the first members' deadline, only those time out.
		clk.Advance(rollout.DefaultCriteria().Timeouts.Deadline - 50*time.Second)
		st, err = s.DeploymentStatus(ctx, f.tenant.ID, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if st.Tally.Installed != 10 || st.Tally.TimedOut != 10 || st.Tally.Pending != 30 {
			t.Errorf("past the first members' deadline: %+v; want 10 installed, 10 timed out, the 30 joiners pending", st.Tally)
		}
		// Half the joiners fail to install: the next check pauses the deployment.
		for _, id := range joiners[:15] {
			if err := s.RecordInstallFailure(ctx, f.tenant.ID, id, "1.1", "no space left"); err != nil {
				t.Fatal(err)
			}
		}
		st, err = s.CheckDeployment(ctx, f.tenant.ID, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		failures := false
		for _, ev := range st.Events {
			for _, fd := range ev.Findings {
				failures = failures || fd.Criterion == rollout.CriterionInstallFailures
			}
		}
		if st.Deployment.State != rollout.StatePaused || len(st.Events) != 1 || !failures {
			t.Fatalf("after 15 of 30 joiners failed: %s, events %+v; want paused on install failures", st.Deployment.State, st.Events)
		}
		if want, err := s.ReferenceStatus(ctx, f.tenant.ID, d.ID); err != nil || want.Tally.WindowFailed != 15 {
			t.Errorf("reference after the surge: %+v, %v", want.Tally, err)
		}
	})
}
