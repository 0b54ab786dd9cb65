package tasks

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/rollout"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func setup(t *testing.T, kind string) (*store.Store, *clock, string, store.Deployment) {
	t.Helper()
	clk := &clock{now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	s := storetest.OpenWithClock(t, kind, clk.Now)
	ctx := context.Background()
	tn, err := s.CreateTenant(ctx, "token:test", "", "acme")
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := s.CreateProduct(ctx, "token:test", tn.ID, "lamp", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := storetest.DB(s).ExecContext(ctx, `INSERT INTO releases (id, tenant_id, product_id, version, state, targets_version,
		revoked_reason, created_at) VALUES ('rel_1', $1, $2, '2.0', 'signed', 1, '', 0)`, tn.ID, p.ID); err != nil {
		t.Fatal(err)
	}
	plan, err := rollout.ParsePlan("50,100", "1h")
	if err != nil {
		t.Fatal(err)
	}
	d, err := s.CreateDeployment(ctx, "token:test", tn.ID, store.DeploymentSpec{Product: "lamp", Group: "Production", Release: "2.0",
		Plan: plan, Criteria: rollout.DefaultCriteria()})
	if err != nil {
		t.Fatal(err)
	}
	return s, clk, tn.ID, d
}

func TestStepAllOpensPhasesAndWakes(t *testing.T) {
	for _, kind := range storetest.Kinds {
		t.Run(kind, func(t *testing.T) {
			s, clk, tenant, d := setup(t, kind)
			var woken []store.Deployment
			st := NewStepper(StepperConfig{Store: s, Wake: func(d store.Deployment) { woken = append(woken, d) }})
			ctx := context.Background()
			p, err := st.StepAll(ctx)
			if err != nil || p != (Pass{Stepped: 1}) {
				t.Fatalf("pass before the soak: %+v, %v", p, err)
			}
			clk.advance(time.Hour)
			if p, err = st.StepAll(ctx); err != nil || p != (Pass{Stepped: 1, Advanced: 1}) {
				t.Fatalf("pass after the soak: %+v, %v", p, err)
			}
			if len(woken) != 1 || woken[0].ID != d.ID || woken[0].Phase != 1 {
				t.Fatalf("woken %+v", woken)
			}
			clk.advance(time.Hour)
			if p, err = st.StepAll(ctx); err != nil || p != (Pass{Stepped: 1, Complete: 1}) {
				t.Fatalf("last pass: %+v, %v", p, err)
			}
			// A completed deployment is no longer stepped.
			if p, err = st.StepAll(ctx); err != nil || p != (Pass{}) {
				t.Fatalf("pass after completion: %+v, %v", p, err)
			}
			got, err := s.DeploymentByID(ctx, tenant, d.ID)
			if err != nil || got.State != rollout.StateCompleted {
				t.Fatalf("deployment %s, %v", got.State, err)
			}
		})
	}
}

func TestRunStopsWithItsContext(t *testing.T) {
	s, clk, tenant, d := setup(t, "sqlite")
	clk.advance(time.Hour)
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	woke := make(chan struct{}, 10)
	done := make(chan error, 1)
	st := NewStepper(StepperConfig{Store: s, Every: time.Millisecond, Wake: func(store.Deployment) { woke <- struct{}{} }})
	go func() { done <- st.Run(ctx) }()
	<-woke // the first tick opens phase 2
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v, want nil after cancel", err)
	}
	got, _ := s.DeploymentByID(context.Background(), tenant, d.ID)
	if got.Phase != 1 {
		t.Errorf("phase %d, want 1", got.Phase)
	}
	for range 1000 {
		if runtime.NumGoroutine() <= before {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Errorf("goroutines: %d before, %d after", before, runtime.NumGoroutine())
}
