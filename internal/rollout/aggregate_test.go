package rollout

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// randomRollout makes a deployment somewhere in its life and a random snapshot of its group:
// members at creation and joiners, every outcome, reports before and after a resume, devices on
// the new, the previous and other releases, crashes in and out of the evidence window.
func randomRollout(r *rand.Rand) (Deployment, Snapshot) {
	crit := DefaultCriteria()
	crit.InstallFailures.MinSample = 1 + r.IntN(20)
	crit.InstallFailures.MaxShare = r.Float64() * 0.3
	crit.Timeouts.Deadline = time.Duration(1+r.IntN(180)) * time.Minute
	crit.Timeouts.MinSample = 1 + r.IntN(20)
	crit.CrashRate.MinExposureHours = r.Float64() * 5
	crit.CrashRate.MinCrashedDevices = 1 + r.IntN(4)
	crit.NewSignature.MaxDevices = r.IntN(3)
	plan, err := NewPlan([]float64{5, 25, 60, 100}, 0, 0.5)
	if err != nil {
		panic(err)
	}
	d, _, err := New(fmt.Sprintf("dep-%d", r.Int()), plan, crit, false, "op", t0)
	if err != nil {
		panic(err)
	}
	d.Phase = r.IntN(len(plan.Phases))
	d.PhasesOpenedAt = nil
	for i := 0; i <= d.Phase; i++ {
		d.PhasesOpenedAt = append(d.PhasesOpenedAt, t0.Add(time.Duration(i)*time.Hour))
	}
	if r.IntN(2) == 0 {
		d.EvidenceSince = t0.Add(time.Duration(r.IntN(300)) * time.Minute)
	}
	now := t0.Add(time.Duration(r.IntN(600)) * time.Minute).Add(time.Duration(r.IntN(1_000_000)) * time.Microsecond)
	at := func() time.Time {
		return t0.Add(time.Duration(r.Int64N(int64(now.Sub(t0)) + 1))).Truncate(time.Microsecond)
	}
	s := Snapshot{Now: now, KnownSignatures: map[string]bool{"known": true}}
	for i := range r.IntN(300) {
		dev := DeviceStatus{DeviceID: fmt.Sprintf("device-%d", i), Install: InstallPending}
		if r.IntN(4) == 0 {
			dev.JoinedAt = at()
		}
		switch r.IntN(4) {
		case 0:
			dev.Install, dev.ReportedAt = InstallInstalled, at()
		case 1:
			dev.Install, dev.ReportedAt = InstallFailed, at()
		}
		dev.Running = []Running{RunningNew, RunningPrevious, RunningOther}[r.IntN(3)]
		if r.IntN(3) > 0 {
			dev.RunningSince = at()
		}
		for range r.IntN(3) {
			dev.Crashes = append(dev.Crashes, Crash{Signature: []string{"", "known", "sig-a", "sig-b"}[r.IntN(4)], At: at().Add(time.Duration(r.IntN(3)-1) * time.Minute)})
		}
		s.Devices = append(s.Devices, dev)
	}
	if r.IntN(3) == 0 {
		rate := r.Float64() * 0.1
		s.BaselineCrashRate = &rate
	}
	return d, s
}

// TestAggregateDecidesAsSnapshot checks that the aggregate path (Summarize, CountAggregate,
// StepAggregate, CheckAggregate) tallies and decides as Count, Step and Check do over the
// snapshot, on random groups.
func TestAggregateDecidesAsSnapshot(t *testing.T) {
	r := rand.New(rand.NewPCG(20, 12))
	floats := cmpopts.EquateApprox(0, 1e-9)
	for i := range 1000 {
		d, s := randomRollout(r)
		a := d.Summarize(s)
		if diff := cmp.Diff(d.CountAggregate(a), d.Count(s), floats); diff != "" {
			t.Fatalf("case %d: CountAggregate (-got +want):\n%s", i, diff)
		}
		gd, gev, gdec, gt := d.StepAggregate(a)
		wd, wev, wdec, wt := d.Step(s)
		if diff := cmp.Diff([]any{gd, gev, gdec, gt}, []any{wd, wev, wdec, wt}, floats); diff != "" {
			t.Fatalf("case %d: StepAggregate (-got +want):\n%s", i, diff)
		}
		gd, gev, gdec, gt = d.CheckAggregate(a)
		wd, wev, wdec, wt = d.Check(s)
		if diff := cmp.Diff([]any{gd, gev, gdec, gt}, []any{wd, wev, wdec, wt}, floats); diff != "" {
			t.Fatalf("case %d: CheckAggregate (-got +want):\n%s", i, diff)
		}
	}
}

// TestAggregateTimeouts pins the edge of the timeout: a pending device times out at exactly the
// deadline after the latest of its phase's opening, the evidence window's and its joining.
func TestAggregateTimeouts(t *testing.T) {
	d, _, err := New("dep-edge", DefaultPlan(), DefaultCriteria(), false, "op", t0)
	if err != nil {
		t.Fatal(err)
	}
	d.Phase = d.Plan.Last()
	for len(d.PhasesOpenedAt) <= d.Phase {
		d.PhasesOpenedAt = append(d.PhasesOpenedAt, t0)
	}
	deadline := d.Criteria.Timeouts.Deadline
	for _, joined := range []time.Time{{}, t0.Add(time.Hour)} {
		for _, off := range []time.Duration{-time.Microsecond, 0, time.Microsecond} {
			now := laterOf(t0, joined).Add(deadline + off)
			s := Snapshot{Now: now, Devices: []DeviceStatus{{DeviceID: "a", JoinedAt: joined, Install: InstallPending}}}
			want := d.Count(s)
			if got := d.CountAggregate(d.Summarize(s)); !cmp.Equal(got, want) || math.Signbit(float64(off)) == (want.TimedOut == 1) {
				t.Errorf("joined %v, now deadline%+v: timed out %d, want %d (count says %d)", joined, off, got.TimedOut, btoi(off >= 0), want.TimedOut)
			}
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
