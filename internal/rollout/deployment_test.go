package rollout

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func newDeployment(t *testing.T, plan Plan) Deployment {
	t.Helper()
	d, ev, err := New("dep-7", plan, DefaultCriteria(), false, "alice", t0)
	if err != nil {
		t.Fatal(err)
	}
	want := Event{Kind: EventCreated, At: t0, Actor: "alice", To: StateActive}
	if diff := cmp.Diff(ev, want); diff != "" {
		t.Fatalf("created event (-got +want):\n%s", diff)
	}
	return d
}

func TestNewRejectsBadInput(t *testing.T) {
	tests := []struct {
		name    string
		id      string
		plan    Plan
		crit    Criteria
		wantErr error
	}{
		{name: "empty id", id: "", plan: DefaultPlan(), crit: DefaultCriteria()},
		{name: "bad plan", id: "d", plan: Plan{}, crit: DefaultCriteria(), wantErr: ErrInvalidPlan},
		{name: "bad criteria", id: "d", plan: DefaultPlan(), crit: Criteria{}, wantErr: ErrInvalidCriteria},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := New(tt.id, tt.plan, tt.crit, false, "op", t0)
			if err == nil {
				t.Fatal("New accepted bad input")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("New error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestEmergencyOffersEveryDevice(t *testing.T) {
	d, _, err := New("dep-e", DefaultPlan(), DefaultCriteria(), true, "op", t0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(d.Plan, EmergencyPlan()); diff != "" {
		t.Errorf("emergency plan (-got +want):\n%s", diff)
	}
	for _, dev := range fleet(500, nil) {
		if !d.Offers(dev.DeviceID) {
			t.Fatalf("emergency deployment does not offer %s", dev.DeviceID)
		}
	}
}

func TestOperatorTransitions(t *testing.T) {
	active := newDeployment(t, DefaultPlan())
	at := t0.Add(time.Hour)
	paused, _, err := active.Pause("bob", "looking", at)
	if err != nil {
		t.Fatal(err)
	}
	aborted, _, err := active.Abort("bob", "", at)
	if err != nil {
		t.Fatal(err)
	}
	completed := active
	completed.State = StateCompleted

	type op func(Deployment) (Deployment, Event, error)
	pause := func(r string) op {
		return func(d Deployment) (Deployment, Event, error) { return d.Pause("carol", r, at.Add(time.Hour)) }
	}
	resume := func(r string) op {
		return func(d Deployment) (Deployment, Event, error) { return d.Resume("carol", r, at.Add(time.Hour)) }
	}
	abort := func(r string) op {
		return func(d Deployment) (Deployment, Event, error) { return d.Abort("carol", r, at.Add(time.Hour)) }
	}
	tests := []struct {
		name      string
		from      Deployment
		op        op
		wantState State
		wantEvent EventKind
		wantRsn   string
		wantErr   error
	}{
		{"pause active", active, pause(""), StatePaused, EventPaused, "paused by operator", nil},
		{"pause active with reason", active, pause("  crash spike  "), StatePaused, EventPaused, "crash spike", nil},
		{"pause paused", paused, pause(""), StatePaused, "", "", ErrNotActive},
		{"pause aborted", aborted, pause(""), StateAborted, "", "", ErrNotActive},
		{"resume paused", paused, resume("false alarm"), StateActive, EventResumed, "false alarm", nil},
		{"resume active", active, resume(""), StateActive, "", "", ErrNotPaused},
		{"resume aborted", aborted, resume(""), StateAborted, "", "", ErrNotPaused},
		{"abort active", active, abort(""), StateAborted, EventAborted, "aborted by operator", nil},
		{"abort paused", paused, abort("bad build"), StateAborted, EventAborted, "bad build", nil},
		{"abort aborted", aborted, abort(""), StateAborted, "", "", ErrFinal},
		{"abort completed", completed, abort(""), StateCompleted, "", "", ErrFinal},
		{"reason too long", active, pause(strings.Repeat("x", MaxReasonLen+1)), StateActive, "", "", ErrReasonTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ev, err := tt.op(tt.from)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if diff := cmp.Diff(got, tt.from); diff != "" {
					t.Errorf("a refused transition changed the deployment (-got +want):\n%s", diff)
				}
				return
			}
			if got.State != tt.wantState || ev.Kind != tt.wantEvent || ev.Reason != tt.wantRsn || got.Reason != tt.wantRsn {
				t.Errorf("got state %s event %s reason %q/%q, want %s %s %q", got.State, ev.Kind, ev.Reason, got.Reason, tt.wantState, tt.wantEvent, tt.wantRsn)
			}
			if ev.Actor != "carol" || ev.From != tt.from.State || ev.To != tt.wantState || !ev.At.Equal(at.Add(time.Hour)) {
				t.Errorf("event %+v does not record actor, states and time", ev)
			}
		})
	}
}

func TestStep(t *testing.T) {
	plan, err := ParsePlan("10,50,100", "1h")
	if err != nil {
		t.Fatal(err)
	}
	d := newDeployment(t, plan)
	devs := fleet(1000, nil)
	phaseOf := func(id string) int { return plan.Assign(d.ID, id) }
	// report marks every offered device installed at the given time.
	report := func(d Deployment, at time.Time) {
		for i := range devs {
			if phaseOf(devs[i].DeviceID) <= d.Phase && devs[i].Install == InstallPending {
				installed(&devs[i], at)
			}
		}
	}

	// Nothing reported yet and no soak: no change.
	got, evs, dec, _ := d.Step(Snapshot{Now: t0.Add(30 * time.Minute), Devices: devs})
	if len(evs) != 0 || got.Phase != 0 || dec.Action != ActionContinue {
		t.Fatalf("early step: phase %d events %v decision %v", got.Phase, evs, dec.Action)
	}
	// Everyone reported but the soak has not elapsed: no change.
	report(d, t0.Add(20*time.Minute))
	if got, evs, _, _ = d.Step(Snapshot{Now: t0.Add(59 * time.Minute), Devices: devs}); len(evs) != 0 || got.Phase != 0 {
		t.Fatalf("step before soak: phase %d events %v", got.Phase, evs)
	}
	// Soaked and reported: phase 2 opens.
	d, evs, _, _ = d.Step(Snapshot{Now: t0.Add(time.Hour), Devices: devs})
	if len(evs) != 1 || evs[0].Kind != EventPhaseAdvanced || d.Phase != 1 || !d.SoakSince.Equal(t0.Add(time.Hour)) {
		t.Fatalf("step after soak: phase %d events %+v", d.Phase, evs)
	}
	// Soaked but under 90 % of the offered devices reported: no change.
	if got, evs, _, tally := d.Step(Snapshot{Now: t0.Add(3 * time.Hour), Devices: devs}); len(evs) != 0 || got.Phase != 1 || tally.ReportedShare() >= 0.9 {
		t.Fatalf("step with few reports: phase %d events %v reported %.2f", got.Phase, evs, tally.ReportedShare())
	}
	report(d, t0.Add(3*time.Hour))
	d, evs, _, _ = d.Step(Snapshot{Now: t0.Add(3 * time.Hour), Devices: devs})
	if len(evs) != 1 || d.Phase != 2 {
		t.Fatalf("phase 2 to 3: phase %d events %+v", d.Phase, evs)
	}
	report(d, t0.Add(4*time.Hour))
	d, evs, _, tally := d.Step(Snapshot{Now: t0.Add(4 * time.Hour), Devices: devs})
	if len(evs) != 1 || evs[0].Kind != EventCompleted || d.State != StateCompleted {
		t.Fatalf("last phase: state %s events %+v", d.State, evs)
	}
	if tally.Installed != 1000 {
		t.Errorf("installed = %d, want 1000", tally.Installed)
	}
	// A finished deployment does not move.
	if got, evs, _, _ := d.Step(Snapshot{Now: t0.Add(5 * time.Hour), Devices: devs}); len(evs) != 0 || got.State != StateCompleted {
		t.Errorf("completed deployment moved: %s %v", got.State, evs)
	}
	want := []time.Time{t0, t0.Add(time.Hour), t0.Add(3 * time.Hour)}
	if diff := cmp.Diff(d.PhasesOpenedAt, want); diff != "" {
		t.Errorf("phases opened at (-got +want):\n%s", diff)
	}
}

func TestStepPausesAndResumeRestartsEvidence(t *testing.T) {
	d := onePhase(t, DefaultCriteria())
	d.Plan.Phases[0].MinSoak = time.Hour
	devs := fleet(100, func(i int, d *DeviceStatus) {
		if i < 20 {
			failed(d, t0.Add(10*time.Minute))
		} else if i < 50 {
			installed(d, t0.Add(10*time.Minute))
		}
	})
	d, evs, dec, _ := d.Step(Snapshot{Now: t0.Add(20 * time.Minute), Devices: devs})
	if d.State != StatePaused || len(evs) != 1 || evs[0].Actor != ActorCriteria || evs[0].Kind != EventPaused {
		t.Fatalf("criteria did not pause: state %s events %+v", d.State, evs)
	}
	if len(evs[0].Findings) != 1 || evs[0].Findings[0].Criterion != CriterionInstallFailures || d.Reason != dec.Reason() {
		t.Errorf("pause event findings %+v, reason %q", evs[0].Findings, d.Reason)
	}
	// While paused the release is not offered and steps change nothing.
	if d.Offers(devs[60].DeviceID) {
		t.Error("paused deployment still offers the release")
	}
	if got, evs, _, _ := d.Step(Snapshot{Now: t0.Add(2 * time.Hour), Devices: devs}); len(evs) != 0 || got.State != StatePaused {
		t.Errorf("paused deployment moved: %s %v", got.State, evs)
	}
	resumedAt := t0.Add(3 * time.Hour)
	d, _, err := d.Resume("op", "known flaky flash", resumedAt)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Offers(devs[60].DeviceID) {
		t.Error("resumed deployment does not offer the release")
	}
	// The 20 failures before the resume no longer count.
	for i := 50; i < 100; i++ {
		installed(&devs[i], resumedAt.Add(10*time.Minute))
	}
	d, evs, dec, _ = d.Step(Snapshot{Now: resumedAt.Add(30 * time.Minute), Devices: devs})
	if d.State != StateActive || len(evs) != 0 || dec.Action != ActionContinue {
		t.Fatalf("after resume: state %s events %+v decision %+v", d.State, evs, dec)
	}
	// The phase soaks again from the resume.
	d, evs, _, _ = d.Step(Snapshot{Now: resumedAt.Add(time.Hour), Devices: devs})
	if d.State != StateCompleted {
		t.Fatalf("after resume and soak: state %s events %+v", d.State, evs)
	}
	// New failures after a resume trip the criterion again.
	d2 := onePhase(t, DefaultCriteria())
	d2, _, _ = d2.Pause("op", "", t0)
	d2, _, _ = d2.Resume("op", "", t0.Add(time.Hour))
	devs2 := fleet(40, func(i int, d *DeviceStatus) { failed(d, t0.Add(2*time.Hour)) })
	if d2, _, _, _ = d2.Step(Snapshot{Now: t0.Add(3 * time.Hour), Devices: devs2}); d2.State != StatePaused {
		t.Errorf("new failures after resume: state %s, want paused", d2.State)
	}
}

func TestStepAbortsWhenConfigured(t *testing.T) {
	c := DefaultCriteria()
	c.InstallFailures.Action = ActionAbort
	d := onePhase(t, c)
	devs := fleet(30, func(i int, d *DeviceStatus) { failed(d, t0) })
	d, evs, _, _ := d.Step(Snapshot{Now: t0.Add(time.Minute), Devices: devs})
	if d.State != StateAborted || len(evs) != 1 || evs[0].Kind != EventAborted || !strings.Contains(d.Reason, "install failures 30 of 30") {
		t.Fatalf("state %s reason %q events %+v", d.State, d.Reason, evs)
	}
	if _, _, err := d.Resume("op", "", t0.Add(time.Hour)); !errors.Is(err, ErrNotPaused) {
		t.Errorf("resume after abort: %v, want ErrNotPaused", err)
	}
}

func TestStepEmptyGroupCompletes(t *testing.T) {
	d := newDeployment(t, Plan{Phases: []Phase{{Share: 0.5, MinReporting: 1}, {Share: 1, MinReporting: 1}}})
	d, _, _, _ = d.Step(Snapshot{Now: t0})
	d, _, _, _ = d.Step(Snapshot{Now: t0})
	if d.State != StateCompleted {
		t.Errorf("empty group: state %s, want completed", d.State)
	}
}

func TestOffersByState(t *testing.T) {
	plan, err := ParsePlan("10,100", "1h")
	if err != nil {
		t.Fatal(err)
	}
	d := newDeployment(t, plan)
	var first, later string
	for _, dev := range fleet(200, nil) {
		if plan.Assign(d.ID, dev.DeviceID) == 0 {
			first = dev.DeviceID
		} else {
			later = dev.DeviceID
		}
	}
	tests := []struct {
		state                   State
		phase                   int
		wantFirst, wantLt       bool // Offers
		reachedFirst, reachedLt bool // Reached
	}{
		{StateActive, 0, true, false, true, false},
		{StateActive, 1, true, true, true, true},
		// A paused or aborted deployment offers nothing new, but reached its open phases.
		{StatePaused, 0, false, false, true, false},
		{StatePaused, 1, false, false, true, true},
		{StateAborted, 0, false, false, true, false},
		// Once completed the release is the group's: devices that were offline or join later get it.
		{StateCompleted, 1, true, true, true, true},
	}
	for _, tt := range tests {
		d.State, d.Phase = tt.state, tt.phase
		if got := d.Offers(first); got != tt.wantFirst {
			t.Errorf("%s phase %d: Offers(first phase) = %v", tt.state, tt.phase, got)
		}
		if got := d.Offers(later); got != tt.wantLt {
			t.Errorf("%s phase %d: Offers(later phase) = %v", tt.state, tt.phase, got)
		}
		if got := d.Reached(first); got != tt.reachedFirst {
			t.Errorf("%s phase %d: Reached(first phase) = %v", tt.state, tt.phase, got)
		}
		if got := d.Reached(later); got != tt.reachedLt {
			t.Errorf("%s phase %d: Reached(later phase) = %v", tt.state, tt.phase, got)
		}
	}
}

// TestStepSmallGroupFailingDoesNotComplete: in a group smaller than the minimum sample of 20,
// every device that reported failed. The deployment must not read as completed: before
// completing, the step judges the whole group's reports and pauses.
func TestStepSmallGroupFailingDoesNotComplete(t *testing.T) {
	d := onePhase(t, DefaultCriteria())
	devs := fleet(5, func(i int, d *DeviceStatus) { failed(d, t0) })
	d, evs, dec, _ := d.Step(Snapshot{Now: t0.Add(time.Minute), Devices: devs})
	if d.State != StatePaused || len(evs) != 1 || evs[0].Kind != EventPaused || dec.Action != ActionPause ||
		!strings.Contains(d.Reason, "install failures 5 of 5 (100.0%) exceed 5.0%") || !strings.Contains(d.Reason, "fewer than the minimum sample of 20") {
		t.Fatalf("state %s, reason %q, events %+v; want paused with the whole group judged", d.State, d.Reason, evs)
	}
	// A healthy small group still completes.
	ok := onePhase(t, DefaultCriteria())
	good := fleet(5, func(i int, d *DeviceStatus) { installed(d, t0) })
	if ok, _, _, _ = ok.Step(Snapshot{Now: t0.Add(time.Minute), Devices: good}); ok.State != StateCompleted {
		t.Errorf("healthy small group: state %s, want completed", ok.State)
	}
}

// TestCheckNeverOpensAPhase: Check, which the server runs when evidence arrives, pauses on a
// crossed criterion like Step but never opens a phase or completes; Step does both.
func TestCheckNeverOpensAPhase(t *testing.T) {
	plan, err := ParsePlan("10,100", "0s")
	if err != nil {
		t.Fatal(err)
	}
	d := newDeployment(t, plan)
	devs := fleet(1000, func(i int, d *DeviceStatus) { installed(d, t0.Add(time.Minute)) })
	snap := Snapshot{Now: t0.Add(time.Hour), Devices: devs}
	if got, evs, dec, _ := d.Check(snap); len(evs) != 0 || got.Phase != 0 || dec.Action != ActionContinue {
		t.Fatalf("Check on a phase ready to open: phase %d events %+v decision %s", got.Phase, evs, dec.Action)
	}
	if got, evs, _, _ := d.Step(snap); len(evs) != 1 || evs[0].Kind != EventPhaseAdvanced || got.Phase != 1 {
		t.Fatalf("Step on the same snapshot: phase %d events %+v", got.Phase, evs)
	}
	for i := range devs {
		if i%2 == 0 {
			failed(&devs[i], t0.Add(2*time.Minute))
		}
	}
	if got, evs, _, _ := d.Check(Snapshot{Now: t0.Add(time.Hour), Devices: devs}); len(evs) != 1 || evs[0].Kind != EventPaused || got.State != StatePaused {
		t.Fatalf("Check with failures crossing the criterion: state %s events %+v", got.State, evs)
	}
}
