package tasks

import (
	"context"
	"errors"
	"log/slog"
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
type Stepper struct {
	cfg StepperConfig
	log *slog.Logger
}

// NewStepper makes a Stepper.
func NewStepper(cfg StepperConfig) *Stepper {
	if cfg.Every <= 0 {
		cfg.Every = DefaultStepEvery
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Stepper{cfg: cfg, log: cfg.Logger}
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
		switch {
		case errors.Is(err, store.ErrConflict):
			s.log.Debug("deployment moved by another replica", "deployment", d.ID)
			continue
		case err != nil:
			if ctx.Err() != nil {
				return p, ctx.Err()
			}
			p.Failed++
			s.log.Error("deployment step failed", "tenant", d.TenantID, "deployment", d.ID, "err", err)
			continue
		}
		p.Stepped++
		for _, ev := range st.Events {
			s.log.Info("deployment changed", "tenant", d.TenantID, "deployment", d.ID, "event", string(ev.Kind),
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
	return p, nil
}

// Run steps deployments every interval until ctx ends, then returns nil. A failed pass is
// logged and retried at the next tick.
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
		}
	}
}
