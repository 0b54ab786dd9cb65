package program

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestCheckTransitionMatrix(t *testing.T) {
	// Every allowed edge, written out independently of the transitions table.
	allowed := map[[2]State]bool{}
	add := func(from State, tos ...State) {
		for _, to := range tos {
			allowed[[2]State{from, to}] = true
		}
	}
	closing := []State{StateDuplicate, StateByDesign, StateInformative, StateNotApplicable, StateSpam}
	add(StateNew, StateTriaged, StateNeedsMoreInfo)
	add(StateNew, closing...)
	add(StateNeedsMoreInfo, StateNew, StateTriaged)
	add(StateNeedsMoreInfo, closing...)
	add(StateTriaged, StateNeedsMoreInfo, StateResolved)
	add(StateTriaged, closing...)
	add(StateDuplicate, StateTriaged)
	add(StateByDesign, StateTriaged)
	add(StateInformative, StateTriaged)
	add(StateNotApplicable, StateTriaged)

	for _, from := range States() {
		for _, to := range States() {
			t.Run(string(from)+"->"+string(to), func(t *testing.T) {
				err := CheckTransition(from, to, "because")
				if allowed[[2]State{from, to}] {
					if err != nil {
						t.Errorf("CheckTransition = %v, want allowed", err)
					}
					return
				}
				if !errors.Is(err, ErrInvalidTransition) {
					t.Errorf("CheckTransition = %v, want ErrInvalidTransition", err)
				}
			})
		}
	}
}

func TestCheckTransitionReason(t *testing.T) {
	tests := []struct {
		from, to State
		needs    bool
	}{
		{StateNew, StateTriaged, false},
		{StateNew, StateNeedsMoreInfo, false},
		{StateNeedsMoreInfo, StateNew, false},
		{StateTriaged, StateResolved, false},
		{StateNew, StateDuplicate, false},
		{StateNew, StateByDesign, true},
		{StateTriaged, StateInformative, true},
		{StateNew, StateNotApplicable, true},
		{StateNew, StateSpam, true},
		{StateByDesign, StateTriaged, true},
	}
	for _, tt := range tests {
		t.Run(string(tt.from)+"->"+string(tt.to), func(t *testing.T) {
			err := CheckTransition(tt.from, tt.to, "")
			if tt.needs != errors.Is(err, ErrReasonRequired) {
				t.Errorf("CheckTransition without reason = %v, needs reason %v", err, tt.needs)
			}
			if !tt.needs && err != nil {
				t.Errorf("CheckTransition = %v", err)
			}
		})
	}
	if err := CheckTransition("open", StateNew, "x"); !errors.Is(err, ErrInvalidTransition) {
		t.Errorf("unknown state: %v", err)
	}
}

func TestStates(t *testing.T) {
	var open, closed []State
	for _, s := range States() {
		if s.Closed() {
			closed = append(closed, s)
		} else {
			open = append(open, s)
		}
	}
	if diff := cmp.Diff(open, []State{StateNew, StateTriaged, StateNeedsMoreInfo}); diff != "" {
		t.Errorf("open states (-got +want):\n%s", diff)
	}
	if len(closed) != 6 {
		t.Errorf("closed states = %v", closed)
	}
	if State("bogus").Closed() || State("bogus").Valid() {
		t.Error("bogus state is valid")
	}
	if _, err := ParseState("resolved"); err != nil {
		t.Error(err)
	}
	if _, err := ParseState("fixed"); err == nil {
		t.Error("ParseState(fixed) accepted")
	}
	if got := Allowed(StateSpam); len(got) != 0 {
		t.Errorf("spam can move to %v", got)
	}
	if got := Allowed(StateNew); !slices.Contains(got, StateTriaged) {
		t.Errorf("Allowed(new) = %v", got)
	}
}

func TestDuplicateOriginal(t *testing.T) {
	t0 := time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
	ref := func(id int64, at time.Duration, st State, dupOf int64) ReportRef {
		return ReportRef{ID: id, Program: "p", State: st, DuplicateOf: dupOf, SubmittedAt: t0.Add(at)}
	}
	root := ref(1, 0, StateTriaged, 0)
	tests := []struct {
		name   string
		dup    ReportRef
		orig   ReportRef
		root   *ReportRef
		want   int64
		target error
	}{
		{"earlier original wins", ref(2, time.Hour, StateNew, 0), root, nil, 1, nil},
		{"same time, lower ID wins", ref(2, 0, StateNew, 0), root, nil, 1, nil},
		{"later original is refused", root, ref(2, time.Hour, StateNew, 0), nil, 0, ErrNotFirstArrival},
		{"same time, higher ID is refused", ref(1, 0, StateNew, 0), ref(2, 0, StateTriaged, 0), nil, 0, ErrNotFirstArrival},
		{"link goes to the root of a duplicate", ref(3, 2*time.Hour, StateNew, 0), ref(2, time.Hour, StateDuplicate, 1), &root, 1, nil},
		{"root of a duplicate must be given", ref(3, 2*time.Hour, StateNew, 0), ref(2, time.Hour, StateDuplicate, 1), nil, 0, ErrDuplicateTarget},
		{"wrong root is refused", ref(3, 2*time.Hour, StateNew, 0), ref(2, time.Hour, StateDuplicate, 1), &ReportRef{ID: 9}, 0, ErrDuplicateTarget},
		{"self", root, root, nil, 0, ErrDuplicateTarget},
		{"other program", ref(2, time.Hour, StateNew, 0), ReportRef{ID: 1, Program: "q", State: StateTriaged, SubmittedAt: t0}, nil, 0, ErrDuplicateTarget},
		{"spam is no original", ref(2, time.Hour, StateNew, 0), ref(1, 0, StateSpam, 0), nil, 0, ErrDuplicateTarget},
		{"closed original is fine", ref(2, time.Hour, StateNew, 0), ref(1, 0, StateByDesign, 0), nil, 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DuplicateOriginal(tt.dup, tt.orig, tt.root)
			if !errors.Is(err, tt.target) {
				t.Fatalf("DuplicateOriginal error = %v, want %v", err, tt.target)
			}
			if got != tt.want {
				t.Errorf("DuplicateOriginal = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestAutoClose(t *testing.T) {
	p := mustParse(t, minimalYAML+"needs_info_timeout: 7d\n")
	asked := time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
	deadline := p.NeedsInfoDeadline(asked)
	if want := asked.Add(7 * 24 * time.Hour); !deadline.Equal(want) {
		t.Fatalf("deadline = %v, want %v", deadline, want)
	}
	tests := []struct {
		name      string
		state     State
		now       time.Time
		want      State
		wantClose bool
	}{
		{"before the deadline", StateNeedsMoreInfo, deadline.Add(-time.Second), StateNeedsMoreInfo, false},
		{"at the deadline", StateNeedsMoreInfo, deadline, StateNotApplicable, true},
		{"after the deadline", StateNeedsMoreInfo, deadline.Add(time.Hour), StateNotApplicable, true},
		{"answered in time", StateNew, deadline.Add(time.Hour), StateNew, false},
		{"triaged", StateTriaged, deadline.Add(time.Hour), StateTriaged, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, closed := AutoClose(tt.state, deadline, tt.now)
			if got != tt.want || closed != tt.wantClose {
				t.Errorf("AutoClose = %s, %v; want %s, %v", got, closed, tt.want, tt.wantClose)
			}
			if closed {
				if err := CheckTransition(tt.state, got, AutoCloseReason); err != nil {
					t.Errorf("auto-close is not an allowed transition: %v", err)
				}
			}
		})
	}
	if _, closed := AutoClose(StateNeedsMoreInfo, time.Time{}, deadline); closed {
		t.Error("a report without a deadline was closed")
	}
}
