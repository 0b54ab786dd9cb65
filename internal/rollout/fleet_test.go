package rollout_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/deviceapi"
	"github.com/rampartsec/rampart/internal/rollout"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/wake"
)

// This file drives deployments through the real store with many in-process agents: each agent
// holds a long-poll on a wake.Hub, and when woken asks the store whether its group's deployment
// offers it the release, installs it (or fails, crashes, or stays silent) and reports back. A
// stepper plays the server's timer: it steps the deployment and wakes the group when a phase
// opens.

type behaviour int

const (
	healthy behaviour = iota
	failsInstall
	crashes
	silent
)

// clock is the store's clock; the stepper moves it so soak times pass in a test.
type clock struct {
	mu   sync.Mutex
	now  time.Time
	real bool
}

func (c *clock) Now() time.Time {
	if c.real {
		return time.Now()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type fleet struct {
	s         *store.Store
	clk       *clock
	hub       *wake.Hub
	tenantID  string
	productID string
	groupID   string
	devices   []string
	installed atomic.Int64
}

func newFleet(t testing.TB, kind string, real bool) *fleet {
	t.Helper()
	clk := &clock{now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC), real: real}
	s := storetest.OpenWithClock(t, kind, clk.Now)
	ctx := context.Background()
	tn, err := s.CreateTenant(ctx, "token:test", "", "acme")
	if err != nil {
		t.Fatal(err)
	}
	p, groups, err := s.CreateProduct(ctx, "token:test", tn.ID, "thermostat", "")
	if err != nil {
		t.Fatal(err)
	}
	return &fleet{s: s, clk: clk, hub: wake.NewHub(1 << 20), tenantID: tn.ID, productID: p.ID, groupID: groups[2].ID}
}

// join claims n devices into the group on release, as the claim verb will.
func (f *fleet) join(t testing.TB, n int, release string) []string {
	t.Helper()
	ctx := context.Background()
	var ids []string
	err := storetest.InTx(ctx, f.s, func(tx *sql.Tx) error {
		for range n {
			sum := sha256.Sum256([]byte(fmt.Sprintf("%s/%d", f.tenantID, len(f.devices)+len(ids))))
			id := hex.EncodeToString(sum[:])
			now := f.s.Now().UnixMicro()
			if _, err := tx.ExecContext(ctx, `INSERT INTO devices (id, tenant_id, product_id, group_id, state, attestation,
				current_release, target_release, created_at, updated_at) VALUES ($1, $2, $3, $4, 'claimed', '', $5, '', $6, $6)`,
				id, f.tenantID, f.productID, f.groupID, release, now); err != nil {
				return err
			}
			if err := f.s.AppendCoverageEvent(ctx, tx, f.tenantID, f.productID, f.groupID, id, release); err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	f.devices = append(f.devices, ids...)
	return ids
}

// agent is one online device: it waits for a wake-up, and installs what it is offered. Like
// the real agent it retries a failed call (the embedded database answers "busy" when hundreds of
// devices write at once under the race detector); twenty failures in a row fail the test.
func (f *fleet) agent(ctx context.Context, id string, b behaviour, errs chan<- error) {
	done := ""
	failures := 0
	for ctx.Err() == nil {
		err := f.checkIn(ctx, id, b, &done)
		if err != nil && ctx.Err() == nil {
			if failures++; failures >= 20 {
				errs <- fmt.Errorf("agent %s: %w", id[:8], err)
				return
			}
			time.Sleep(time.Duration(min(failures, 5)) * 20 * time.Millisecond)
			continue
		}
		failures = 0
		if err := f.hub.Wait(ctx, id, f.groupID); err != nil && !errors.Is(err, context.Canceled) {
			errs <- fmt.Errorf("agent %s: wait: %w", id[:8], err)
			return
		}
	}
}

// checkIn asks for the group's deployment and acts on an offer once per release.
func (f *fleet) checkIn(ctx context.Context, id string, b behaviour, done *string) error {
	off, err := f.s.OfferForDevice(ctx, f.tenantID, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	rel := off.Deployment.Release
	if !off.Offered || *done == rel || b == silent {
		return nil
	}
	if b == failsInstall {
		err = f.s.RecordInstallFailure(ctx, f.tenantID, id, rel, "slot B: checksum mismatch")
	} else {
		err = f.s.RecordDeviceRelease(ctx, f.tenantID, id, rel)
	}
	if err == nil && b == crashes {
		_, err = f.s.AddFailureReports(ctx, f.tenantID, id, []deviceapi.CrashReport{{ID: "c-" + rel, Program: "/usr/bin/sensord",
			Version: rel, Signal: 11, Frames: []string{"sensor_read", "poll_loop"}, Time: f.s.Now().Add(time.Second)}})
	}
	if err != nil {
		return err
	}
	*done = rel
	if b == healthy {
		f.installed.Add(1)
	}
	return nil
}

// run starts agents for the given devices.
func (f *fleet) run(ctx context.Context, wg *sync.WaitGroup, ids []string, b func(i int) behaviour, errs chan<- error) {
	for i, id := range ids {
		wg.Go(func() { f.agent(ctx, id, b(i), errs) })
	}
}

// step plays the server: it steps the deployment, and when a phase opens wakes the devices it
// now offers the release to.
func (f *fleet) step(t testing.TB, depID string) store.DeploymentStep {
	t.Helper()
	st, err := f.s.StepDeployment(context.Background(), f.tenantID, depID)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range st.Events {
		if ev.Kind == rollout.EventPhaseAdvanced {
			f.hub.WakeTagged(f.groupID, st.Deployment.Offers)
		}
	}
	return st
}

func mustPlan(t testing.TB, phases, soak string, minReporting float64) rollout.Plan {
	t.Helper()
	plan, err := rollout.ParsePlan(phases, soak)
	if err != nil {
		t.Fatal(err)
	}
	for i := range plan.Phases {
		plan.Phases[i].MinReporting = minReporting
	}
	return plan
}

func (f *fleet) create(t testing.TB, release string, plan rollout.Plan, emergency bool, c rollout.Criteria) store.Deployment {
	t.Helper()
	// Every agent must be in its long-poll before the deployment starts: one that checked in
	// before and waits only after the wake-up below would miss it and join a later phase.
	f.awaitWaiting(t, len(f.devices))
	if _, err := storetest.DB(f.s).ExecContext(context.Background(), `INSERT INTO releases (id, tenant_id, product_id, version, state,
		targets_version, revoked_reason, created_at) VALUES ($1, $2, $3, $4, 'signed', 1, '', $5)`,
		store.NewID("rel"), f.tenantID, f.productID, release, f.s.Now().UnixMicro()); err != nil {
		t.Fatal(err)
	}
	d, err := f.s.CreateDeployment(context.Background(), "token:test", f.tenantID, store.DeploymentSpec{Product: "thermostat",
		Group: "Production", Release: release, Plan: plan, Criteria: c, Emergency: emergency})
	if err != nil {
		t.Fatal(err)
	}
	f.hub.WakeTagged(f.groupID, d.Offers)
	return d
}

// awaitWaiting waits until n agents hold a long-poll.
func (f *fleet) awaitWaiting(t testing.TB, n int) {
	t.Helper()
	for range 15000 {
		if f.hub.Waiting() >= n {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("%d of %d agents are waiting after 30s", f.hub.Waiting(), n)
}

// drive steps the deployment, moving the clock by tick each time, until it leaves the active
// state or rounds run out; between steps it lets the agents act on what they were offered.
func (f *fleet) drive(t *testing.T, depID string, tick time.Duration, rounds int, between func(round int, st store.DeploymentStep)) store.DeploymentStep {
	t.Helper()
	var st store.DeploymentStep
	for round := range rounds {
		f.settle(t, depID)
		f.clk.advance(tick)
		st = f.step(t, depID)
		if between != nil {
			between(round, st)
		}
		if st.Deployment.State != rollout.StateActive {
			return st
		}
	}
	return st
}

// settle waits until every offered device that will answer has answered: the tally stops
// moving and every agent is back in its long-poll.
func (f *fleet) settle(t *testing.T, depID string) {
	t.Helper()
	last := -1
	for range 10000 {
		st, err := f.s.DeploymentStatus(context.Background(), f.tenantID, depID)
		if err != nil {
			t.Fatal(err)
		}
		n := st.Tally.Installed + st.Tally.Failed
		if n == last && f.hub.Waiting() == len(f.devices) {
			return
		}
		last = n
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatal("agents did not settle")
}

func criteria() rollout.Criteria {
	c := rollout.DefaultCriteria()
	c.Timeouts.Deadline = 6 * time.Hour
	return c
}

func startAgents(t *testing.T, f *fleet, ids []string, b func(int) behaviour) (context.CancelFunc, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, 100*len(ids))
	var wg sync.WaitGroup
	f.run(ctx, &wg, ids, b, errs)
	return cancel, func() {
		cancel()
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}
}

func TestFleetRollouts(t *testing.T) {
	if testing.Short() {
		t.Skip("fleet rollouts take a few seconds")
	}
	for _, kind := range storetest.Kinds {
		t.Run(kind, func(t *testing.T) {
			t.Run("healthy release completes every phase, late joiners included", func(t *testing.T) {
				f := newFleet(t, kind, false)
				ids := f.join(t, 300, "1.0")
				_, stop := startAgents(t, f, ids, func(int) behaviour { return healthy })
				d := f.create(t, "1.1", mustPlan(t, "10,50,100", "1h", 0.9), false, criteria())
				var phases []int
				var late []string
				var stopLate func()
				st := f.drive(t, d.ID, 20*time.Minute, 100, func(round int, st store.DeploymentStep) {
					if len(st.Events) > 0 && st.Events[0].Kind == rollout.EventPhaseAdvanced {
						phases = append(phases, st.Deployment.Phase)
						if st.Deployment.Phase == 1 {
							late = f.join(t, 50, "1.0")
							_, stopLate = startAgents(t, f, late, func(int) behaviour { return healthy })
						}
					}
				})
				stop()
				if stopLate != nil {
					stopLate()
				}
				if st.Deployment.State != rollout.StateCompleted || fmt.Sprint(phases) != "[1 2]" {
					t.Fatalf("state %s (%s), phases opened %v", st.Deployment.State, st.Deployment.Reason, phases)
				}
				if st.Tally.Installed != 350 || f.installed.Load() != 350 {
					t.Errorf("installed %d (agents %d), want 350 with the late joiners", st.Tally.Installed, f.installed.Load())
				}
				rep, err := f.s.Coverage(context.Background(), f.tenantID, "thermostat", "Production")
				if err != nil {
					t.Fatal(err)
				}
				if rep.Now.NewestShare != 1 || !rep.Releases[0].Milestones[3].Reached {
					t.Errorf("coverage %+v, want 1.1 at 100 %%", rep.Now)
				}
			})
			// A share of the devices misbehaves; the criteria pause the release in its first
			// phase. That phase is 20 % here: phases are drawn by hashing random IDs, and a 10 %
			// phase of 300 devices held fewer than the criteria's minimum sample of 20 about one
			// run in twenty, so the release was judged only in the second phase. A crashing
			// release trips the new-signature criterion, and the crash-rate one too once the
			// crashes' exposure is large enough at the step that judges it; either pauses it.
			for _, tc := range []struct {
				name  string
				bad   behaviour
				every int                 // one device in every is bad
				trips []rollout.Criterion // what the findings may name
			}{
				{"crashing release is paused before the next phase", crashes, 3, []rollout.Criterion{rollout.CriterionNewSignature, rollout.CriterionCrashRate}},
				{"release failing to install is paused before the next phase", failsInstall, 5, []rollout.Criterion{rollout.CriterionInstallFailures}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					f := newFleet(t, kind, false)
					ids := f.join(t, 300, "1.0")
					_, stop := startAgents(t, f, ids, func(i int) behaviour {
						if i%tc.every == 0 {
							return tc.bad
						}
						return healthy
					})
					d := f.create(t, "1.1", mustPlan(t, "20,50,100", "1h", 0.9), false, criteria())
					st := f.drive(t, d.ID, 20*time.Minute, 100, nil)
					stop()
					if st.Deployment.State != rollout.StatePaused || st.Deployment.Phase != 0 {
						t.Fatalf("state %s phase %d, want paused in phase 1", st.Deployment.State, st.Deployment.Phase)
					}
					if len(st.Decision.Findings) == 0 {
						t.Errorf("paused with no findings, want %v", tc.trips)
					}
					for _, fd := range st.Decision.Findings {
						if !slices.Contains(tc.trips, fd.Criterion) {
							t.Errorf("finding %+v, want only %v", fd, tc.trips)
						}
					}
				})
			}
			t.Run("devices that stop reporting time out", func(t *testing.T) {
				f := newFleet(t, kind, false)
				ids := f.join(t, 300, "1.0")
				_, stop := startAgents(t, f, ids, func(i int) behaviour {
					if i%50 == 0 {
						return silent
					}
					return healthy
				})
				// Six silent devices of 300 are 2 %, but phases are drawn by hashing random IDs
				// and a 10 % first phase of about 30 devices sometimes held three of them, over
				// the default 10 %. The timeouts limit here is 50 %: no phase large enough to be
				// judged (20 devices) can hold more than six silent ones, so the deployment
				// pauses only if timeouts are miscounted.
				crit := criteria()
				crit.Timeouts.MaxShare = 0.5
				d := f.create(t, "1.1", mustPlan(t, "10,50,100", "1h", 1), false, crit)
				// Every phase waits for all its devices: only the timeout lets it finish.
				st := f.drive(t, d.ID, 20*time.Minute, 200, nil)
				stop()
				if st.Deployment.State != rollout.StateCompleted || st.Tally.TimedOut != 6 || st.Tally.Installed != 294 {
					t.Fatalf("state %s (%s) tally %+v, want completed with 6 timed out", st.Deployment.State, st.Deployment.Reason, st.Tally)
				}
			})
		})
	}
}

// benchFleetSize is the number of online agents in the deployment benchmarks: 10,000, or
// RAMPART_BENCH_DEVICES.
func benchFleetSize(b *testing.B) int {
	if v := os.Getenv("RAMPART_BENCH_DEVICES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 100 {
			b.Fatalf("RAMPART_BENCH_DEVICES=%q is not a number of at least 100", v)
		}
		return n
	}
	return 10000
}

// stepEvery is how often the benchmark's stepper (the server's timer) evaluates the deployment.
// A step reads the whole group in one transaction, so stepping much more often only slows the
// devices' writes; it bounds how fast a phased plan with no soak can open its phases.
const stepEvery = 250 * time.Millisecond

// BenchmarkDeploymentReach99 measures, per iteration, the time from creating a deployment until
// 99 % of 10,000 online in-process agents (each holding a long-poll) have installed the release
// and reported it to the store. Agents call the store directly: the figure covers wake-up,
// offer and report logic and the database, not HTTP and TLS. Compare it with
// BenchmarkCeilingRawUpdates, the same database's rate for 10,000 bare single-row updates.
func BenchmarkDeploymentReach99(b *testing.B) {
	for _, kind := range storetest.Kinds {
		for _, mode := range []struct {
			name      string
			phases    string
			emergency bool
		}{
			{"emergency", "100", true},
			{"phases=1,10,50,100/soak=0", "1,10,50,100", false},
		} {
			b.Run(kind+"/"+mode.name, func(b *testing.B) {
				benchFleet := benchFleetSize(b)
				f := newFleet(b, kind, true)
				setup := time.Now()
				ids := f.join(b, benchFleet, "1.0")
				b.Logf("%d devices joined in %v", benchFleet, time.Since(setup))
				ctx, cancel := context.WithCancel(context.Background())
				errs := make(chan error, 1000)
				var wg sync.WaitGroup
				f.run(ctx, &wg, ids, func(int) behaviour { return healthy }, errs)
				defer func() {
					cancel()
					wg.Wait()
				}()
				for f.hub.Waiting() < benchFleet {
					select {
					case err := <-errs:
						b.Fatal(err)
					case <-time.After(10 * time.Millisecond):
					}
				}
				b.Logf("%d agents waiting after %v", benchFleet, time.Since(setup))
				c := rollout.DefaultCriteria()
				plan := mustPlan(b, mode.phases, "0s", 0.9)
				target := int64(benchFleet * 99 / 100)
				iter := 0
				b.ResetTimer()
				for b.Loop() {
					iter++
					base := f.installed.Load()
					start := time.Now()
					d := f.create(b, fmt.Sprintf("1.%d", iter), plan, mode.emergency, c)
					for f.installed.Load()-base < target {
						select {
						case err := <-errs:
							b.Fatal(err)
						default:
						}
						st := f.step(b, d.ID)
						if st.Deployment.State == rollout.StatePaused || st.Deployment.State == rollout.StateAborted {
							b.Fatalf("deployment %s: %s", st.Deployment.State, st.Deployment.Reason)
						}
						time.Sleep(stepEvery)
					}
					b.ReportMetric(time.Since(start).Seconds(), "s-to-99%")
					b.StopTimer()
					// Let the rest install, then close the deployment for the next iteration.
					for f.installed.Load()-base < int64(benchFleet) {
						time.Sleep(10 * time.Millisecond)
					}
					if st := f.step(b, d.ID); st.Deployment.State == rollout.StateActive {
						if _, err := f.s.AbortDeployment(context.Background(), "token:test", f.tenantID, d.ID, "benchmark iteration done"); err != nil {
							b.Fatal(err)
						}
					}
					b.StartTimer()
				}
			})
		}
	}
}

// BenchmarkCeilingRawUpdates is the ceiling for BenchmarkDeploymentReach99: 10,000 concurrent
// single-row UPDATE statements (one transaction each) on the devices table of the same kind of
// store, through a pool of 10,000 goroutines.
func BenchmarkCeilingRawUpdates(b *testing.B) {
	for _, kind := range storetest.Kinds {
		b.Run(kind, func(b *testing.B) {
			benchFleet := benchFleetSize(b)
			f := newFleet(b, kind, true)
			ids := f.join(b, benchFleet, "1.0")
			db := storetest.DB(f.s)
			iter := 0
			for b.Loop() {
				iter++
				rel := fmt.Sprintf("1.%d", iter)
				var wg sync.WaitGroup
				var failed atomic.Int64
				for _, id := range ids {
					wg.Go(func() {
						for try := 0; ; try++ {
							_, err := db.ExecContext(context.Background(), `UPDATE devices SET current_release = $1 WHERE id = $2`, rel, id)
							if err == nil {
								return
							}
							if try == 20 {
								failed.Add(1)
								return
							}
							time.Sleep(10 * time.Millisecond)
						}
					})
				}
				wg.Wait()
				if failed.Load() > 0 {
					b.Fatalf("%d updates failed", failed.Load())
				}
			}
		})
	}
}
