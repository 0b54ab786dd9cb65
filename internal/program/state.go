package program

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/public"
)

// State is the state of a report, close to the bounty platforms' own.
type State string

// Report states. New, Triaged and NeedsMoreInfo are open; the others are closed.
const (
	StateNew           State = "new"
	StateTriaged       State = "triaged"
	StateNeedsMoreInfo State = "needs_more_info"
	// StateResolved: the report was valid and a fix has shipped.
	StateResolved State = "resolved"
	// StateDuplicate: closed as a duplicate of an earlier report.
	StateDuplicate State = "duplicate"
	// StateByDesign: valid observation, but mitigated elsewhere in the system.
	StateByDesign State = "by_design"
	// StateInformative: useful information, no fix needed.
	StateInformative State = "informative"
	// StateNotApplicable: not a vulnerability, out of scope, or not
	// reproducible; also where needs_more_info reports go when they time out.
	StateNotApplicable State = "not_applicable"
	// StateSpam: abuse of the program.
	StateSpam State = "spam"
)

var states = []State{
	StateNew, StateTriaged, StateNeedsMoreInfo, StateResolved, StateDuplicate,
	StateByDesign, StateInformative, StateNotApplicable, StateSpam,
}

// States returns every report state.
func States() []State { return slices.Clone(states) }

// Valid reports whether s is a known state.
func (s State) Valid() bool { return slices.Contains(states, s) }

// Closed reports whether s is a closed state.
func (s State) Closed() bool {
	switch s {
	case StateNew, StateTriaged, StateNeedsMoreInfo:
		return false
	}
	return s.Valid()
}

// Awardable reports whether a report in state s may be awarded: only triaged
// and resolved reports are.
func (s State) Awardable() bool { return s == StateTriaged || s == StateResolved }

// AwardRefusal completes the sentence "report N ..." with why a report in
// state s is not awarded: an open report is not triaged yet, a closed one is
// closed. It is empty when s is awardable.
func (s State) AwardRefusal() string {
	switch {
	case s.Awardable():
		return ""
	case !s.Closed():
		return fmt.Sprintf("is %s; triage it before an award", s)
	}
	return fmt.Sprintf("is %s; a closed report is not awarded", s.Describe())
}

// Describe names the state in a sentence, saying that a closed state is
// closed: "new", "closed as a duplicate", "closed as by design".
func (s State) Describe() string {
	if s.Closed() {
		return "closed as " + s.phrase()
	}
	return string(s)
}

// phrase names a closed state in a sentence: "closed as a duplicate".
func (s State) phrase() string {
	switch s {
	case StateDuplicate:
		return "a duplicate"
	case StateByDesign:
		return "by design"
	case StateNotApplicable:
		return "not applicable"
	}
	return string(s)
}

// ParseState parses a state name.
func ParseState(s string) (State, error) {
	st := State(s)
	if !st.Valid() {
		return "", fmt.Errorf("program.ParseState: %w", public.Errorf(public.Invalid, "%q is not one of %s", s, joinStates(states)))
	}
	return st, nil
}

func joinStates(ss []State) string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = string(s)
	}
	return strings.Join(out, ", ")
}

// closes lists the closing states that triage may choose from an open state.
var closes = []State{StateDuplicate, StateByDesign, StateInformative, StateNotApplicable, StateSpam}

// transitions lists, for each state, the states triage may move a report to.
// Closed states other than spam and resolved may be reopened to triaged.
var transitions = map[State][]State{
	StateNew:           append([]State{StateTriaged, StateNeedsMoreInfo}, closes...),
	StateNeedsMoreInfo: append([]State{StateNew, StateTriaged}, closes...),
	StateTriaged:       append([]State{StateNeedsMoreInfo, StateResolved}, closes...),
	StateResolved:      nil,
	StateDuplicate:     {StateTriaged},
	StateByDesign:      {StateTriaged},
	StateInformative:   {StateTriaged},
	StateNotApplicable: {StateTriaged},
	StateSpam:          nil,
}

// Errors returned by the state machine.
var (
	ErrInvalidTransition = errors.New("transition not allowed")
	ErrReasonRequired    = errors.New("a reason is required")
	ErrDuplicateTarget   = errors.New("invalid duplicate target")
	ErrNotFirstArrival   = errors.New("the original must have arrived first")
)

// Allowed returns the states a report in from may move to.
func Allowed(from State) []State { return slices.Clone(transitions[from]) }

// CheckTransition reports whether triage may move a report from one state to
// another. Closing a report other than as a duplicate, and reopening one,
// needs a reason; a duplicate needs its original, checked by
// DuplicateOriginal.
func CheckTransition(from, to State, reason string) error {
	if !from.Valid() || !to.Valid() {
		return fmt.Errorf("program.CheckTransition: %w", public.Errorf(public.Conflict, "%w: unknown state %q -> %q", ErrInvalidTransition, from, to))
	}
	if !slices.Contains(transitions[from], to) {
		return fmt.Errorf("program.CheckTransition: %w", public.Errorf(public.Conflict, "%w: %s -> %s (allowed: %s)", ErrInvalidTransition, from, to, joinStates(transitions[from])))
	}
	needsReason := (to.Closed() && to != StateDuplicate && to != StateResolved) || from.Closed()
	if needsReason && strings.TrimSpace(reason) == "" {
		return fmt.Errorf("program.CheckTransition: %w", public.Errorf(public.Invalid, "%w for %s -> %s", ErrReasonRequired, from, to))
	}
	return nil
}

// ReportRef is what the duplicate rule needs to know about a report.
type ReportRef struct {
	ID          int64
	Program     string
	State       State
	DuplicateOf int64 // 0 when not a duplicate
	SubmittedAt time.Time
}

// Before reports whether r arrived before o: earlier submission time, and
// the lower ID when the times are equal.
func (r ReportRef) Before(o ReportRef) bool {
	if !r.SubmittedAt.Equal(o.SubmittedAt) {
		return r.SubmittedAt.Before(o.SubmittedAt)
	}
	return r.ID < o.ID
}

// DuplicateOriginal checks that dup may be closed as a duplicate of orig
// and returns the ID to link it to. The first arrival wins: the original
// must have arrived before dup. When orig is itself a duplicate, the link
// goes to orig's own original, so every duplicate points at the report that
// arrived first; root must then be that report.
func DuplicateOriginal(dup, orig ReportRef, root *ReportRef) (int64, error) {
	switch {
	case dup.ID == orig.ID:
		return 0, fmt.Errorf("program.DuplicateOriginal: %w", public.Errorf(public.Invalid, "%w: a report cannot duplicate itself", ErrDuplicateTarget))
	case dup.Program != orig.Program:
		return 0, fmt.Errorf("program.DuplicateOriginal: %w", public.Errorf(public.Invalid, "%w: report %d is in another program", ErrDuplicateTarget, orig.ID))
	case orig.State == StateSpam:
		return 0, fmt.Errorf("program.DuplicateOriginal: %w", public.Errorf(public.Invalid, "%w: report %d is spam", ErrDuplicateTarget, orig.ID))
	}
	target := orig
	if orig.State == StateDuplicate {
		if root == nil || root.ID != orig.DuplicateOf {
			return 0, fmt.Errorf("program.DuplicateOriginal: %w", public.Errorf(public.Invalid, "%w: report %d is a duplicate of %d, which must be given", ErrDuplicateTarget, orig.ID, orig.DuplicateOf))
		}
		target = *root
		if target.ID == dup.ID {
			return 0, fmt.Errorf("program.DuplicateOriginal: %w", public.Errorf(public.Invalid, "%w: report %d already duplicates this one", ErrDuplicateTarget, orig.ID))
		}
	}
	if !target.Before(dup) {
		return 0, fmt.Errorf("program.DuplicateOriginal: %w", public.Errorf(public.Conflict, "%w: report %d arrived after report %d; close %d as its duplicate instead",
			ErrNotFirstArrival, target.ID, dup.ID, target.ID))
	}
	return target.ID, nil
}

// NeedsInfoDeadline is when a report moved to needs_more_info at t closes
// automatically.
func (p *Program) NeedsInfoDeadline(t time.Time) time.Time {
	return t.Add(time.Duration(p.NeedsInfoTimeout))
}

// AutoCloseReason is the reason recorded when a report times out in needs_more_info.
const AutoCloseReason = "closed automatically: no answer from the researcher before the needs-more-info deadline"

// AutoClose returns the state a report must move to at now: not_applicable
// when it is in needs_more_info and its deadline has passed, and ok=false
// otherwise.
func AutoClose(state State, deadline, now time.Time) (State, bool) {
	if state != StateNeedsMoreInfo || deadline.IsZero() || now.Before(deadline) {
		return state, false
	}
	return StateNotApplicable, true
}
