package server

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rampartsec/rampart/internal/rollout"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/tasks"
	"github.com/rampartsec/rampart/internal/wake"
)

// clock is a test clock the store reads.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// stepFleet is a server (not listening) with a product "lamp" and devices in its Production
// group running 1.0.0.
type stepFleet struct {
	s       *Server
	clk     *clock
	tenant  string
	product store.Product
	group   store.Group
	devices []string
}

func newStepFleet(t *testing.T, kind string, devices int) *stepFleet {
	t.Helper()
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	cfg := Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Now: clk.now}
	if kind == "postgres" {
		cfg.Database = storetest.PostgresURL(t)
	}
	s, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.store.Close() })
	tn, err := s.store.TenantByName(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := s.store.CreateProduct(ctx, store.System, tn.ID, "lamp", "")
	if err != nil {
		t.Fatal(err)
	}
	g, err := s.store.GroupByName(ctx, tn.ID, "lamp", "Production")
	if err != nil {
		t.Fatal(err)
	}
	f := &stepFleet{s: s, clk: clk, tenant: tn.ID, product: p, group: g}
	for i := range devices {
		f.addDevice(t, fmt.Sprintf("%064x", i+1))
	}
	return f
}

func (f *stepFleet) addDevice(t *testing.T, id string) {
	t.Helper()
	_, err := storetest.DB(f.s.store).Exec(`INSERT INTO devices (id, tenant_id, product_id, group_id, state, attestation, current_release, target_release, created_at, updated_at)
		VALUES ($1, $2, $3, $4, 'claimed', '', '1.0.0', '', 1, 1)`, id, f.tenant, f.product.ID, f.group.ID)
	if err != nil {
		t.Fatal(err)
	}
	f.devices = append(f.devices, id)
}

func (f *stepFleet) deploy(t *testing.T, phases []float64, soak time.Duration) store.Deployment {
	t.Helper()
	plan, err := rollout.NewPlan(phases, soak, rollout.DefaultMinReporting)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := storetest.DB(f.s.store).Exec(`INSERT INTO releases (id, tenant_id, product_id, version, state, targets_version, revoked_reason, created_at)
		VALUES ($1, $2, $3, '1.1.0', 'signed', 1, '', 1)`, store.NewID("rel"), f.tenant, f.product.ID); err != nil {
		t.Fatal(err)
	}
	crit := rollout.DefaultCriteria()
	crit.InstallFailures.MinSample = 5
	crit.Timeouts.MinSample = 5
	crit.Timeouts.Deadline = time.Hour
	d, err := f.s.store.CreateDeployment(context.Background(), store.System, f.tenant, store.DeploymentSpec{
		Product: "lamp", Group: "Production", Release: "1.1.0", Plan: plan, Criteria: crit})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// offered lists the devices the deployment offers the release to now.
func (f *stepFleet) offered(t *testing.T, id string) []string {
	t.Helper()
	d, err := f.s.store.DeploymentByID(context.Background(), f.tenant, id)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, dev := range f.devices {
		if d.Offers(dev) {
			out = append(out, dev)
		}
	}
	return out
}

func (f *stepFleet) step(t *testing.T) tasks.Pass {
	t.Helper()
	res, err := f.s.StepDeployments(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestStepperAdvancesAndCompletes installs the release on every offered device and steps: each
// phase opens after its soak, waiting devices of the new phase are woken, a late joiner is
// picked up, and the deployment completes; every move is audited.
func TestStepperAdvancesAndCompletes(t *testing.T) {
	for _, kind := range storetest.Kinds {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			f := newStepFleet(t, kind, 40)
			d := f.deploy(t, []float64{20, 100}, time.Hour)
			install := func() {
				for _, dev := range f.offered(t, d.ID) {
					if err := f.s.store.RecordDeviceRelease(ctx, f.tenant, dev, "1.1.0"); err != nil {
						t.Fatal(err)
					}
				}
			}
			install()
			if res := f.step(t); res != (tasks.Pass{Stepped: 1}) {
				t.Fatalf("before the soak: %+v", res)
			}
			// Devices of phase 2 wait on the long-poll; phase 1's devices must not be woken again.
			hub := f.s.Wake()
			tag := wake.GroupTag(f.tenant, "lamp", "Production")
			var phase2 []string
			for _, dev := range f.devices {
				if !slices.Contains(f.offered(t, d.ID), dev) {
					phase2 = append(phase2, dev)
				}
			}
			var wg sync.WaitGroup
			woken := make(chan string, len(phase2))
			wctx, cancel := context.WithCancel(ctx)
			defer cancel()
			// The last device of phase 2 is between two waits (checking in) when its phase opens.
			between := phase2[len(phase2)-1]
			phase2 = phase2[:len(phase2)-1]
			for _, dev := range phase2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if hub.Wait(wctx, dev, tag) == nil {
						woken <- dev
					}
				}()
			}
			for hub.Waiting() < len(phase2) {
				time.Sleep(5 * time.Millisecond)
			}
			f.clk.advance(time.Hour)
			if res := f.step(t); res != (tasks.Pass{Stepped: 1, Advanced: 1}) {
				t.Fatalf("after the soak: %+v, want one phase opened", res)
			}
			wg.Wait()
			if len(woken) != len(phase2) {
				t.Errorf("%d devices woken, want %d", len(woken), len(phase2))
			}
			// Its next wait answers at once instead of sleeping until the next check-in.
			soon, stop := context.WithTimeout(ctx, 10*time.Second)
			if err := hub.Wait(soon, between, tag); err != nil {
				t.Errorf("a device between two waits missed its phase opening: %v", err)
			}
			stop()
			// A device claimed into the group now is picked up and offered the release.
			late := fmt.Sprintf("%064x", 999)
			f.addDevice(t, late)
			install()
			f.clk.advance(time.Hour)
			if res := f.step(t); res != (tasks.Pass{Stepped: 1, Complete: 1}) {
				t.Fatalf("after phase 2: %+v, want completed", res)
			}
			st, err := f.s.store.DeploymentStatus(ctx, f.tenant, d.ID)
			if err != nil || st.Deployment.State != rollout.StateCompleted || st.Tally.Installed != 41 || st.Tally.Devices != 41 {
				t.Fatalf("completed deployment: %+v, tally %+v, %v", st.Deployment.State, st.Tally, err)
			}
			if res := f.step(t); res.Stepped != 0 {
				t.Errorf("a completed deployment was stepped again: %+v", res)
			}
			recs, _, err := f.s.store.ListAudit(ctx, f.tenant, store.AuditFilter{}, store.Page{Limit: 500})
			if err != nil {
				t.Fatal(err)
			}
			var actions []string
			for _, r := range recs {
				if r.Target == "deployment/"+d.ID {
					actions = append(actions, r.Action)
				}
			}
			if diff := cmp.Diff(actions, []string{"deployment.create", "deployment.advance", "deployment.complete"}); diff != "" {
				t.Errorf("audit (-got +want):\n%s", diff)
			}
		})
	}
}

// TestStepperPausesOnFailures fails the install on a share of the first phase's devices: the
// deployment pauses before the next phase, with the findings as its reason, and devices that
// never report time out.
func TestStepperPausesOnFailures(t *testing.T) {
	for _, kind := range storetest.Kinds {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			f := newStepFleet(t, kind, 60)
			d := f.deploy(t, []float64{50, 100}, 0)
			for i, dev := range f.offered(t, d.ID) {
				var err error
				if i%4 == 0 {
					err = f.s.store.RecordInstallFailure(ctx, f.tenant, dev, "1.1.0", "health check failed")
				} else {
					err = f.s.store.RecordDeviceRelease(ctx, f.tenant, dev, "1.1.0")
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if res := f.step(t); res != (tasks.Pass{Stepped: 1, Paused: 1}) {
				t.Fatalf("after failed installs: %+v, want paused", res)
			}
			st, err := f.s.store.DeploymentStatus(ctx, f.tenant, d.ID)
			got := st.Deployment
			if err != nil || got.State != rollout.StatePaused || got.Phase != 0 || len(st.Decision.Findings) != 1 ||
				st.Decision.Findings[0].Criterion != rollout.CriterionInstallFailures {
				t.Fatalf("paused deployment: %+v %+v, %v", got.Deployment, st.Decision, err)
			}
			t.Logf("paused: %s", got.Reason)

			// Resumed, with new devices that never report: they time out after the deadline.
			f.clk.advance(time.Minute)
			if _, err := f.s.store.ResumeDeployment(ctx, store.System, f.tenant, d.ID, "bad batch of flash chips, replaced"); err != nil {
				t.Fatal(err)
			}
			if res := f.step(t); res.Advanced != 1 {
				t.Fatalf("after resume: %+v, want phase 2 opened", res)
			}
			f.clk.advance(2 * time.Hour)
			if res := f.step(t); res.Paused != 1 {
				t.Fatalf("silent phase 2: %+v, want paused", res)
			}
			if st, _ := f.s.store.DeploymentStatus(ctx, f.tenant, d.ID); len(st.Decision.Findings) == 0 || st.Decision.Findings[0].Criterion != rollout.CriterionTimeouts {
				t.Fatalf("silent phase 2: findings %+v, want timeouts", st.Decision.Findings)
			}
		})
	}
}
