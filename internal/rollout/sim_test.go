package rollout

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// behaviour is how a simulated device reacts to the new release.
type behaviour int

const (
	healthy behaviour = iota
	failsInstall
	crashes
	silent // never reports
)

// simDevice is an in-memory device with its own install delay.
type simDevice struct {
	status      DeviceStatus
	behaviour   behaviour
	offeredAt   time.Time
	installTook time.Duration
}

// fleetSim drives a deployment against in-memory devices on a fake clock.
type fleetSim struct {
	t        *testing.T
	rng      *rand.Rand
	now      time.Time
	tick     time.Duration
	dep      Deployment
	devices  []*simDevice
	events   []Event
	baseRate float64 // crashes per device-hour of the previous and a healthy new release
	// phaseAtOffer records the deployment's open phase when each device was
	// first offered the release.
	offeredInPhase map[string]int
}

func newFleetSim(t *testing.T, seed uint64, plan Plan, c Criteria) *fleetSim {
	s := &fleetSim{t: t, rng: rand.New(rand.NewPCG(seed, 1)), now: t0, tick: 5 * time.Minute, baseRate: 0.002, offeredInPhase: map[string]int{}}
	d, ev, err := New(fmt.Sprintf("sim-%d", seed), plan, c, false, "op", t0)
	if err != nil {
		t.Fatal(err)
	}
	s.dep, s.events = d, []Event{ev}
	return s
}

func (s *fleetSim) add(n int, b func(i int) behaviour, joinedAt time.Time) {
	start := len(s.devices)
	for i := range n {
		s.devices = append(s.devices, &simDevice{
			status: DeviceStatus{
				DeviceID: fmt.Sprintf("%064x", start+i), JoinedAt: joinedAt, Install: InstallPending,
				Running: RunningPrevious, RunningSince: t0.Add(-7 * 24 * time.Hour),
			},
			behaviour:   b(i),
			installTook: time.Duration(5+s.rng.IntN(40)) * time.Minute,
		})
	}
}

func (s *fleetSim) crashNow(rate float64) bool {
	return s.rng.Float64() < rate*s.tick.Hours()
}

// advance moves the clock one tick: devices check in, install, crash; then
// the server steps the deployment.
func (s *fleetSim) advance() {
	s.now = s.now.Add(s.tick)
	for _, d := range s.devices {
		st := &d.status
		if st.Running == RunningPrevious && s.crashNow(s.baseRate) {
			st.Crashes = append(st.Crashes, Crash{"sig-old", s.now})
		}
		if st.Running == RunningNew {
			rate := s.baseRate
			if d.behaviour == crashes {
				rate = 2 // a crash every half hour
			}
			if s.crashNow(rate) {
				sig := "sig-old"
				if d.behaviour == crashes {
					sig = "sig-new-release-bug"
				}
				st.Crashes = append(st.Crashes, Crash{sig, s.now})
			}
		}
		if st.Install != InstallPending || d.behaviour == silent {
			continue
		}
		if d.offeredAt.IsZero() {
			if s.dep.Offers(st.DeviceID) {
				d.offeredAt = s.now
				s.offeredInPhase[st.DeviceID] = s.dep.Phase
			}
			continue
		}
		if s.now.Sub(d.offeredAt) < d.installTook {
			continue
		}
		if d.behaviour == failsInstall {
			st.Install, st.ReportedAt = InstallFailed, s.now
			continue
		}
		st.Install, st.ReportedAt, st.Running, st.RunningSince, st.Crashes = InstallInstalled, s.now, RunningNew, s.now, nil
	}
	snap := Snapshot{Now: s.now, Devices: make([]DeviceStatus, len(s.devices)), KnownSignatures: map[string]bool{"sig-old": true}}
	for i, d := range s.devices {
		snap.Devices[i] = d.status
	}
	var evs []Event
	s.dep, evs, _, _ = s.dep.Step(snap)
	s.events = append(s.events, evs...)
}

// runUntil advances until the deployment leaves the active state or the
// limit passes.
func (s *fleetSim) runUntil(limit time.Duration, stop func() bool) {
	for end := t0.Add(limit); s.now.Before(end) && !stop(); {
		s.advance()
	}
}

func (s *fleetSim) finished() bool { return s.dep.State != StateActive }

func (s *fleetSim) kinds() []EventKind {
	var ks []EventKind
	for _, e := range s.events {
		ks = append(ks, e.Kind)
	}
	return ks
}

func (s *fleetSim) count(state InstallState) int {
	n := 0
	for _, d := range s.devices {
		if d.status.Install == state {
			n++
		}
	}
	return n
}

func simCriteria() Criteria {
	c := DefaultCriteria()
	c.Timeouts.Deadline = 6 * time.Hour
	return c
}

func simPlan(t *testing.T) Plan {
	p, err := ParsePlan("10,50,100", "1h")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func all(b behaviour) func(int) behaviour { return func(int) behaviour { return b } }

func TestSimulationHealthyReleaseCompletes(t *testing.T) {
	s := newFleetSim(t, 1, simPlan(t), simCriteria())
	s.add(1000, all(healthy), time.Time{})
	s.runUntil(7*24*time.Hour, s.finished)
	if s.dep.State != StateCompleted {
		t.Fatalf("state %s (reason %q), want completed; events %v", s.dep.State, s.dep.Reason, s.kinds())
	}
	want := []EventKind{EventCreated, EventPhaseAdvanced, EventPhaseAdvanced, EventCompleted}
	if got := s.kinds(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("events %v, want %v", got, want)
	}
	if got := s.count(InstallInstalled); got != 1000 {
		t.Errorf("installed %d, want 1000", got)
	}
	// Every device was first offered the release in its assigned phase.
	for _, d := range s.devices {
		if got, want := s.offeredInPhase[d.status.DeviceID], s.dep.Plan.Assign(s.dep.ID, d.status.DeviceID); got != want {
			t.Fatalf("device %s offered in phase %d, assigned %d", d.status.DeviceID[:8], got, want)
		}
	}
}

func TestSimulationCrashingReleasePausedBeforeNextPhase(t *testing.T) {
	s := newFleetSim(t, 2, simPlan(t), simCriteria())
	s.add(1000, func(i int) behaviour {
		if i%5 == 0 {
			return crashes
		}
		return healthy
	}, time.Time{})
	s.runUntil(7*24*time.Hour, s.finished)
	if s.dep.State != StatePaused || s.dep.Phase != 0 {
		t.Fatalf("state %s phase %d, want paused in phase 0; events %v", s.dep.State, s.dep.Phase, s.kinds())
	}
	last := s.events[len(s.events)-1]
	if last.Actor != ActorCriteria || len(last.Findings) == 0 {
		t.Fatalf("pause event %+v carries no findings", last)
	}
	crits := map[Criterion]bool{}
	for _, f := range last.Findings {
		crits[f.Criterion] = true
	}
	if !crits[CriterionNewSignature] && !crits[CriterionCrashRate] {
		t.Errorf("paused for %v, want a crash criterion", crits)
	}
	for _, d := range s.devices {
		if d.status.Install != InstallPending && s.dep.Plan.Assign(s.dep.ID, d.status.DeviceID) > 0 {
			t.Fatalf("device %s of a later phase got the release", d.status.DeviceID[:8])
		}
	}
}

func TestSimulationInstallFailuresPauseBeforeNextPhase(t *testing.T) {
	s := newFleetSim(t, 3, simPlan(t), simCriteria())
	s.add(1000, func(i int) behaviour {
		if i%7 == 0 {
			return failsInstall
		}
		return healthy
	}, time.Time{})
	s.runUntil(7*24*time.Hour, s.finished)
	if s.dep.State != StatePaused || s.dep.Phase != 0 {
		t.Fatalf("state %s phase %d, want paused in phase 0; events %v", s.dep.State, s.dep.Phase, s.kinds())
	}
	if f := s.events[len(s.events)-1].Findings; len(f) != 1 || f[0].Criterion != CriterionInstallFailures {
		t.Errorf("findings %+v, want install failures only", f)
	}
}

func TestSimulationSilentDevicesTimeOut(t *testing.T) {
	t.Run("a few silent devices do not hold the rollout open", func(t *testing.T) {
		s := newFleetSim(t, 4, simPlan(t), simCriteria())
		s.add(1000, func(i int) behaviour {
			if i%40 == 0 {
				return silent
			}
			return healthy
		}, time.Time{})
		// Every phase needs all its devices to report: only the timeout
		// can let it finish.
		for i := range s.dep.Plan.Phases {
			s.dep.Plan.Phases[i].MinReporting = 1
		}
		var tally Tally
		s.runUntil(7*24*time.Hour, s.finished)
		if s.dep.State != StateCompleted {
			t.Fatalf("state %s reason %q, want completed", s.dep.State, s.dep.Reason)
		}
		snap := Snapshot{Now: s.now}
		for _, d := range s.devices {
			snap.Devices = append(snap.Devices, d.status)
		}
		_, tally = s.dep.Evaluate(snap)
		if tally.TimedOut != 25 || tally.Installed != 975 {
			t.Errorf("timed out %d installed %d, want 25 and 975", tally.TimedOut, tally.Installed)
		}
	})
	t.Run("many silent devices pause it", func(t *testing.T) {
		s := newFleetSim(t, 5, simPlan(t), simCriteria())
		s.add(1000, func(i int) behaviour {
			if i%4 == 0 {
				return silent
			}
			return healthy
		}, time.Time{})
		s.runUntil(7*24*time.Hour, s.finished)
		if s.dep.State != StatePaused {
			t.Fatalf("state %s, want paused", s.dep.State)
		}
		if f := s.events[len(s.events)-1].Findings; len(f) != 1 || f[0].Criterion != CriterionTimeouts {
			t.Errorf("findings %+v, want timeouts", f)
		}
	})
}

func TestSimulationLateJoinersGetTheRelease(t *testing.T) {
	s := newFleetSim(t, 6, simPlan(t), simCriteria())
	s.add(600, all(healthy), time.Time{})
	s.runUntil(7*24*time.Hour, func() bool { return s.dep.Phase == 1 })
	if s.dep.Phase != 1 {
		t.Fatalf("phase %d, want 1", s.dep.Phase)
	}
	s.add(400, all(healthy), s.now)
	s.runUntil(7*24*time.Hour, s.finished)
	if s.dep.State != StateCompleted {
		t.Fatalf("state %s reason %q, want completed", s.dep.State, s.dep.Reason)
	}
	if got := s.count(InstallInstalled); got != 1000 {
		t.Errorf("installed %d of 1000, want all (late joiners included)", got)
	}
	lateInEarly := 0
	for _, d := range s.devices[600:] {
		if s.dep.Plan.Assign(s.dep.ID, d.status.DeviceID) <= 1 {
			lateInEarly++
			if s.offeredInPhase[d.status.DeviceID] != 1 {
				t.Fatalf("late joiner %s of an open phase was first offered in phase %d, want 1", d.status.DeviceID[:8], s.offeredInPhase[d.status.DeviceID])
			}
		}
	}
	if lateInEarly == 0 {
		t.Error("no late joiner fell into an open phase; the test proves nothing")
	}
}
