package tasks

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/rampartsec/rampart/internal/rollout"
	"github.com/rampartsec/rampart/internal/store"
)

// DefaultStepEvery is how often deployments are stepped unless configured.
const DefaultStepEvery = 30 * time.Second

// StepperConfig configures a Stepper.
type StepperConfig struct {
	Store *store.Store
	// Every is the interval between passes; DefaultStepEvery when zero.
	Every time.Duration
	// Wake is called after a deployment opened a phase, to wake the group's waiting devices
	// that it now offers the release to (Waker.WakeDeployment). It may be nil.
	Wake   func(store.Deployment)
	Logger *slog.Logger
}

// Stepper is the rollout timer: at a fixed interval it steps every active deployment
// (store.StepDeployment), so phases open once soaked and criteria are checked even when no
// device reports, and it wakes the waiting devices of a group whose phase just opened. With
// several replicas each runs one, and the store's version check lets only one of them move a
// given deployment at a time.
//
// Between ticks it checks a deployment's criteria the moment new evidence arrives (Evidence: a
// crash batch or a failed install reported to this replica), so that a criterion pauses or
// aborts the deployment then, not up to a tick later; such a check never opens a phase
// (store.CheckDeployment). Evidence that arrives in a burst is checked together.
type Stepper struct {
	cfg StepperConfig
	log *slog.Logger

	mu       sync.Mutex
	evidence map[[2]string]bool // tenant ID, device ID
	kick     chan struct{}
}

// maxEvidence bounds the devices whose evidence waits to be checked; past it, more evidence is
// left to the next tick.
const maxEvidence = 100_000

// Evidence tells the stepper that a device of the tenant reported evidence its deployment's
// criteria count (crash reports, a failed install). It does not block: the stepper's Run checks
// the device's active deployment at once.
func (s *Stepper) Evidence(tenantID, deviceID string) {
	s.mu.Lock()
	if len(s.evidence) < maxEvidence {
		s.evidence[[2]string{tenantID, deviceID}] = true
	}
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// CheckEvidence checks the active deployment of every device that reported evidence since the
// last call, each deployment once; Run calls it when evidence arrives.
func (s *Stepper) CheckEvidence(ctx context.Context) (Pass, error) {
	s.mu.Lock()
	devices := s.evidence
	s.evidence = map[[2]string]bool{}
	s.mu.Unlock()
	var p Pass
	seen := map[[2]string]bool{}
	for dev := range devices {
		if err := ctx.Err(); err != nil {
			return p, err
		}
		id, err := s.cfg.Store.ActiveDeploymentOfDevice(ctx, dev[0], dev[1])
		if errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			s.log.Error("finding a device's deployment failed", "device", dev[1], "err", err)
			continue
		}
		key := [2]string{dev[0], id}
		if seen[key] {
			continue
		}
		seen[key] = true
		st, err := s.cfg.Store.CheckDeployment(ctx, dev[0], id)
		s.record(&p, dev[0], id, st, err)
	}
	return p, ctx.Err()
}

// NewStepper makes a Stepper.
func NewStepper(cfg StepperConfig) *Stepper {
	if cfg.Every <= 0 {
		cfg.Every = DefaultStepEvery
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Stepper{cfg: cfg, log: cfg.Logger, evidence: map[[2]string]bool{}, kick: make(chan struct{}, 1)}
}

// Pass counts what one pass did.
type Pass struct {
	Stepped  int // deployments evaluated
	Advanced int // phases opened
	Paused   int // deployments paused or aborted by their criteria
	Complete int // deployments completed
	Failed   int // deployments whose step failed (logged)
}

// StepAll steps every active deployment once. A deployment whose step fails is logged and
// skipped; another replica moving it at the same time (store.ErrConflict) is expected.
func (s *Stepper) StepAll(ctx context.Context) (Pass, error) {
	var p Pass
	deps, err := s.cfg.Store.OpenDeployments(ctx)
	if err != nil {
		return p, err
	}
	for _, d := range deps {
		if err := ctx.Err(); err != nil {
			return p, err
		}
		st, err := s.cfg.Store.StepDeployment(ctx, d.TenantID, d.ID)
		if err != nil && !errors.Is(err, store.ErrConflict) && ctx.Err() != nil {
			return p, ctx.Err()
		}
		s.record(&p, d.TenantID, d.ID, st, err)
	}
	return p, nil
}

// record logs what one step or check did and counts it in p; it wakes the group's devices when
// a phase opened.
func (s *Stepper) record(p *Pass, tenantID, id string, st store.DeploymentStep, err error) {
	switch {
	case errors.Is(err, store.ErrConflict):
		s.log.Debug("deployment moved by another replica", "deployment", id)
		return
	case err != nil:
		p.Failed++
		s.log.Error("deployment step failed", "tenant", tenantID, "deployment", id, "err", err)
		return
	}
	p.Stepped++
	for _, ev := range st.Events {
		s.log.Info("deployment changed", "tenant", tenantID, "deployment", id, "event", string(ev.Kind),
			"phase", ev.Phase+1, "reason", ev.Reason)
		switch ev.Kind {
		case rollout.EventPhaseAdvanced:
			p.Advanced++
			if s.cfg.Wake != nil {
				s.cfg.Wake(st.Deployment)
			}
		case rollout.EventPaused, rollout.EventAborted:
			p.Paused++
		case rollout.EventCompleted:
			p.Complete++
		}
	}
}

// Run steps deployments every interval, and checks the deployments of devices that reported
// evidence as it arrives, until ctx ends, then returns nil. A failed pass is logged and retried
// at the next tick.
func (s *Stepper) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if _, err := s.StepAll(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("deployment pass failed", "err", err)
			}
		case <-s.kick:
			if _, err := s.CheckEvidence(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("checking new evidence failed", "err", err)
			}
		}
	}
}
