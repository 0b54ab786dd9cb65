package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rampartsec/rampart/internal/rollout"
	"github.com/rampartsec/rampart/internal/store"
)

// DefaultStepInterval is how often the server evaluates every active deployment.
const DefaultStepInterval = 5 * time.Second

// StepResult is what one round of the deployment stepper did.
type StepResult struct {
	Deployments int // active deployments evaluated
	Events      []rollout.Event
	Woken       int // waiting devices woken because a phase opened
}

// StepDeployments evaluates every active deployment once, through store.StepDeployment: devices
// that joined its group since the last round are picked up, the abort criteria judge the
// devices' install outcomes, timeouts and crashes, and the deployment pauses or aborts with the
// findings as its reason, opens its next phase, completes, or stays as it is. Every transition
// is audited by the store in the same transaction. When a phase opens, the devices of the group
// waiting on /device/v1/wait whose phase is now open are woken. A deployment that another
// replica moved concurrently is left to the next round; other failures are joined and returned
// after the round.
func (s *Server) StepDeployments(ctx context.Context) (StepResult, error) {
	var res StepResult
	ds, err := s.store.OpenDeployments(ctx)
	if err != nil {
		return res, fmt.Errorf("server.StepDeployments: %w", err)
	}
	var errs []error
	for _, d := range ds {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		res.Deployments++
		st, err := s.store.StepDeployment(ctx, d.TenantID, d.ID)
		if errors.Is(err, store.ErrConflict) {
			s.log.Debug("deployment moved concurrently; next round", "deployment", d.ID)
			continue
		} else if err != nil {
			errs = append(errs, fmt.Errorf("deployment %s: %w", d.ID, err))
			continue
		}
		for _, ev := range st.Events {
			res.Events = append(res.Events, ev)
			s.log.Info("deployment moved", "tenant", d.TenantID, "deployment", d.ID, "release", d.Release, "group", d.GroupName,
				"event", string(ev.Kind), "phase", ev.Phase+1, "state", string(ev.To), "reason", ev.Reason)
			if ev.Kind == rollout.EventPhaseAdvanced && s.api != nil {
				res.Woken += s.api.WakeDeployment(st.Deployment)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return res, fmt.Errorf("server.StepDeployments: %w", err)
	}
	return res, nil
}

// deploymentStepper runs StepDeployments every interval until ctx ends. A failed round is
// logged and retried at the next tick; it never stops the server.
func (s *Server) deploymentStepper(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if _, err := s.StepDeployments(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("stepping deployments failed", "err", err)
		}
	}
}
