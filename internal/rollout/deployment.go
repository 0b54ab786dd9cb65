package rollout

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/public"
)

// State is the lifecycle state of a deployment.
type State string

// Deployment states. Aborted and completed are final.
const (
	StateActive    State = "active"
	StatePaused    State = "paused"
	StateAborted   State = "aborted"
	StateCompleted State = "completed"
)

// Final reports whether no transition leaves the state.
func (s State) Final() bool { return s == StateAborted || s == StateCompleted }

// Errors returned by operator transitions.
var (
	ErrFinal         = errors.New("deployment is already finished")
	ErrNotActive     = errors.New("deployment is not active")
	ErrNotPaused     = errors.New("deployment is not paused")
	ErrReasonMissing = errors.New("a reason is required")
	ErrReasonTooLong = errors.New("reason is too long")
)

// MaxReasonLen bounds operator-supplied reasons.
const MaxReasonLen = 1000

// ActorCriteria is the actor recorded when the criteria act on a deployment.
const ActorCriteria = "criteria"

// EventKind names a change to a deployment; each one is audited.
type EventKind string

// Event kinds.
const (
	EventCreated       EventKind = "deployment.created"
	EventPhaseAdvanced EventKind = "deployment.phase_advanced"
	EventPaused        EventKind = "deployment.paused"
	EventResumed       EventKind = "deployment.resumed"
	EventAborted       EventKind = "deployment.aborted"
	EventCompleted     EventKind = "deployment.completed"
)

// Event is one transition, with who caused it and why.
type Event struct {
	Kind     EventKind `json:"kind"`
	At       time.Time `json:"at"`
	Actor    string    `json:"actor"`
	Reason   string    `json:"reason,omitempty"`
	Phase    int       `json:"phase"`
	From     State     `json:"from,omitempty"`
	To       State     `json:"to"`
	Findings []Finding `json:"findings,omitempty"`
}

// Deployment is the rollout state of one release to one device group. Its
// release, group and plan never change after creation; only the state, the
// open phase and the evidence window move, through the methods below, each of
// which returns a changed copy and the event to audit.
type Deployment struct {
	ID        string   `json:"id"`
	Emergency bool     `json:"emergency"`
	Plan      Plan     `json:"plan"`
	Criteria  Criteria `json:"criteria"`
	State     State    `json:"state"`
	// Phase is the index of the highest open phase.
	Phase int `json:"phase"`
	// PhasesOpenedAt holds when each phase up to Phase opened.
	PhasesOpenedAt []time.Time `json:"phases_opened_at"`
	// SoakSince is when the open phase started soaking: when it opened, or
	// the last resume.
	SoakSince time.Time `json:"soak_since"`
	// EvidenceSince opens the window whose outcomes the criteria judge:
	// the creation time, then the time of the last resume.
	EvidenceSince time.Time `json:"evidence_since"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
	// Reason is why the deployment was last paused, aborted or resumed.
	Reason string `json:"reason,omitempty"`
}

// New starts a deployment with its first phase open. An emergency deployment
// replaces the plan with EmergencyPlan.
func New(id string, plan Plan, criteria Criteria, emergency bool, actor string, now time.Time) (Deployment, Event, error) {
	if id == "" {
		return Deployment{}, Event{}, errors.New("rollout.New: empty deployment id")
	}
	if emergency {
		plan = EmergencyPlan()
	}
	if err := plan.Validate(); err != nil {
		return Deployment{}, Event{}, fmt.Errorf("rollout.New: %w", err)
	}
	if err := criteria.Validate(); err != nil {
		return Deployment{}, Event{}, fmt.Errorf("rollout.New: %w", err)
	}
	d := Deployment{
		ID: id, Emergency: emergency, Plan: plan, Criteria: criteria,
		State: StateActive, PhasesOpenedAt: []time.Time{now}, SoakSince: now,
		EvidenceSince: now, CreatedAt: now, UpdatedAt: now,
	}
	return d, Event{Kind: EventCreated, At: now, Actor: actor, To: StateActive}, nil
}

// PhaseOpenedAt is when phase i opened, or zero if it has not.
func (d Deployment) PhaseOpenedAt(i int) time.Time {
	if i < 0 || i >= len(d.PhasesOpenedAt) {
		return time.Time{}
	}
	return d.PhasesOpenedAt[i]
}

// Offers reports whether the device should be given the release now: the
// deployment is active and the device's phase is open, or it completed, after
// which the release is the group's and every device gets it, including those
// that were offline and those that join later. A paused or aborted deployment
// offers nothing new.
func (d Deployment) Offers(deviceID string) bool {
	switch d.State {
	case StateCompleted, StateActive:
		return d.Reached(deviceID)
	}
	return false
}

// Reached reports whether the deployment came as far as the device, whatever its state now:
// the device's phase opened (by the plan's fitted cutoffs, Plan.Assign), or the deployment
// completed. A paused or aborted deployment reached the devices of its open phases although it
// offers them nothing new; no device it did not reach was ever offered its release.
func (d Deployment) Reached(deviceID string) bool {
	return d.State == StateCompleted || d.Plan.Assign(d.ID, deviceID) <= d.Phase
}

func checkReason(reason string, required bool) (string, error) {
	reason = strings.TrimSpace(reason)
	if required && reason == "" {
		return "", ErrReasonMissing
	}
	if len(reason) > MaxReasonLen {
		return "", public.Errorf(public.Invalid, "%w: %d bytes, at most %d", ErrReasonTooLong, len(reason), MaxReasonLen)
	}
	return reason, nil
}

func (d Deployment) transition(kind EventKind, to State, actor, reason string, findings []Finding, now time.Time) (Deployment, Event) {
	ev := Event{Kind: kind, At: now, Actor: actor, Reason: reason, Phase: d.Phase, From: d.State, To: to, Findings: findings}
	d.State, d.Reason, d.UpdatedAt = to, reason, now
	return d, ev
}

// Pause stops offering the release until Resume. Only an active deployment
// can be paused.
func (d Deployment) Pause(actor, reason string, now time.Time) (Deployment, Event, error) {
	r, err := checkReason(reason, false)
	if err != nil {
		return d, Event{}, fmt.Errorf("rollout.Pause: %w", err)
	}
	if d.State != StateActive {
		return d, Event{}, fmt.Errorf("rollout.Pause: %w", public.Errorf(public.Conflict, "%w (state %s)", ErrNotActive, d.State))
	}
	if r == "" {
		r = "paused by operator"
	}
	nd, ev := d.transition(EventPaused, StatePaused, actor, r, nil, now)
	return nd, ev, nil
}

// Resume reopens a paused deployment. The evidence window restarts at now:
// outcomes and crashes seen before the resume were judged by the operator
// and do not trip the criteria again; new evidence does. The open phase soaks
// afresh.
func (d Deployment) Resume(actor, reason string, now time.Time) (Deployment, Event, error) {
	r, err := checkReason(reason, false)
	if err != nil {
		return d, Event{}, fmt.Errorf("rollout.Resume: %w", err)
	}
	if d.State != StatePaused {
		return d, Event{}, fmt.Errorf("rollout.Resume: %w", public.Errorf(public.Conflict, "%w (state %s)", ErrNotPaused, d.State))
	}
	nd, ev := d.transition(EventResumed, StateActive, actor, r, nil, now)
	nd.EvidenceSince, nd.SoakSince = now, now
	return nd, ev, nil
}

// Abort ends the deployment for good; a fix or rollback is a new deployment.
func (d Deployment) Abort(actor, reason string, now time.Time) (Deployment, Event, error) {
	r, err := checkReason(reason, false)
	if err != nil {
		return d, Event{}, fmt.Errorf("rollout.Abort: %w", err)
	}
	if d.State.Final() {
		return d, Event{}, fmt.Errorf("rollout.Abort: %w", public.Errorf(public.Conflict, "%w (state %s)", ErrFinal, d.State))
	}
	if r == "" {
		r = "aborted by operator"
	}
	nd, ev := d.transition(EventAborted, StateAborted, actor, r, nil, now)
	return nd, ev, nil
}

// Check evaluates the criteria over the snapshot and pauses or aborts the deployment when one
// crossed; it never opens a phase or completes. The server runs it the moment new evidence (a
// crash batch, a failed install) arrives, so that a criterion trips then rather than at the
// stepper's next tick; opening phases is Step's, which checks the criteria first on the same
// snapshot. A deployment that is not active is returned unchanged.
func (d Deployment) Check(s Snapshot) (Deployment, []Event, Decision, Tally) {
	dec, t := d.Evaluate(s)
	return d.check(dec, t, s.Now)
}

// CheckAggregate is Check over an aggregate of the group (Aggregate).
func (d Deployment) CheckAggregate(a Aggregate) (Deployment, []Event, Decision, Tally) {
	dec, t := d.EvaluateAggregate(a)
	return d.check(dec, t, a.Now)
}

func (d Deployment) check(dec Decision, t Tally, now time.Time) (Deployment, []Event, Decision, Tally) {
	if d.State != StateActive {
		return d, nil, dec, t
	}
	switch dec.Action {
	case ActionAbort:
		nd, ev := d.transition(EventAborted, StateAborted, ActorCriteria, dec.Reason(), dec.Findings, now)
		return nd, []Event{ev}, dec, t
	case ActionPause:
		nd, ev := d.transition(EventPaused, StatePaused, ActorCriteria, dec.Reason(), dec.Findings, now)
		return nd, []Event{ev}, dec, t
	}
	return d, nil, dec, t
}

// Step evaluates the criteria over the snapshot and moves the deployment at
// most one transition: pause or abort when a criterion crossed, else open the
// next phase (or complete after the last) once the open phase has soaked
// long enough and enough of its offered devices reported. A deployment that
// is not active is returned unchanged. The decision and tally are returned
// for display even when nothing changes.
func (d Deployment) Step(s Snapshot) (Deployment, []Event, Decision, Tally) {
	dec, t := d.Evaluate(s)
	return d.step(dec, t, s.Now, s.BaselineCrashRate)
}

// StepAggregate is Step over an aggregate of the group (Aggregate).
func (d Deployment) StepAggregate(a Aggregate) (Deployment, []Event, Decision, Tally) {
	dec, t := d.EvaluateAggregate(a)
	return d.step(dec, t, a.Now, a.BaselineCrashRate)
}

func (d Deployment) step(dec Decision, t Tally, now time.Time, baseline *float64) (Deployment, []Event, Decision, Tally) {
	checked, evs, dec, t := d.check(dec, t, now)
	if d.State != StateActive || len(evs) > 0 {
		return checked, evs, dec, t
	}
	ph := d.Plan.Phases[d.Phase]
	if now.Sub(d.SoakSince) < ph.MinSoak || t.ReportedShare() < ph.MinReporting {
		return d, nil, dec, t
	}
	if d.Phase == d.Plan.Last() {
		// The last chance to judge: reports too few for the minimum sample count now.
		if whole := d.Criteria.DecideWhole(t, baseline); whole.Action == ActionPause || whole.Action == ActionAbort {
			reason := whole.Reason() + fmt.Sprintf(" (all the group's reports, judged before completing: fewer than the minimum sample of %d)", d.Criteria.InstallFailures.MinSample)
			kind, to := EventPaused, StatePaused
			if whole.Action == ActionAbort {
				kind, to = EventAborted, StateAborted
			}
			nd, ev := d.transition(kind, to, ActorCriteria, reason, whole.Findings, now)
			return nd, []Event{ev}, whole, t
		}
		nd, ev := d.transition(EventCompleted, StateCompleted, ActorCriteria,
			fmt.Sprintf("all phases done: %d installed, %d failed, %d timed out of %d devices", t.Installed, t.Failed, t.TimedOut, t.Devices), nil, now)
		return nd, []Event{ev}, dec, t
	}
	nd := d
	nd.Phase++
	nd.PhasesOpenedAt = append(append([]time.Time(nil), d.PhasesOpenedAt...), now)
	nd.UpdatedAt, nd.SoakSince = now, now
	ev := Event{Kind: EventPhaseAdvanced, At: now, Actor: ActorCriteria, Phase: nd.Phase, From: StateActive, To: StateActive,
		Reason: fmt.Sprintf("phase %d soaked %v with %.0f%% reporting; opening phase %d (%s%%)",
			d.Phase+1, now.Sub(d.SoakSince).Round(time.Second), t.ReportedShare()*100, nd.Phase+1, formatPercent(nd.Plan.Phases[nd.Phase].Share))}
	return nd, []Event{ev}, dec, t
}
