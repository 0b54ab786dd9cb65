package rollout

import "time"

// Aggregate is a snapshot reduced to the sums Count reads, so that a store can compute it with a
// few grouped queries instead of loading every member of the group (CountAggregate). For the
// same group at the same instant, CountAggregate(Summarize(s)) equals Count(s).
type Aggregate struct {
	Now time.Time
	// Phases holds, per phase of the plan, the outcomes of its members.
	Phases []PhaseAggregate
	// New and Previous sum the members running the deployment's release and the previous one.
	New, Previous RunningAggregate
	// NewSignatures counts, per crash signature not known from the previous release, the members
	// on the new release that reported it in the evidence window (Tally.NewSignatures).
	NewSignatures map[string]int
	// BaselineCrashRate is Snapshot.BaselineCrashRate.
	BaselineCrashRate *float64
}

// PhaseAggregate counts one phase's members by outcome.
type PhaseAggregate struct {
	Devices int
	// Installed and Failed count the members that reported the outcome; the Window counts,
	// those whose report is not older than the evidence window (Deployment.EvidenceSince).
	Installed, WindowInstalled int
	Failed, WindowFailed       int
	// Pending counts the members without an outcome; PendingDue, those of them that were
	// members at creation or joined no later than Now minus the timeouts' deadline, the ones
	// that time out once their phase and the evidence window are that old too.
	Pending, PendingDue int
}

// RunningAggregate sums the members running one release: their crashes while running it in the
// evidence window, how many of them crashed, and their exposure in device-hours.
type RunningAggregate struct {
	Crashes       int
	Crashed       int
	ExposureHours float64
}

// Summarize reduces a snapshot to its Aggregate for the deployment; Count(s) equals
// CountAggregate(Summarize(s)). Stores compute the same sums in SQL.
func (d Deployment) Summarize(s Snapshot) Aggregate {
	a := Aggregate{Now: s.Now, Phases: make([]PhaseAggregate, len(d.Plan.Phases)), BaselineCrashRate: s.BaselineCrashRate}
	due := s.Now.Add(-d.Criteria.Timeouts.Deadline)
	sigDevices := map[string]int{}
	for i := range s.Devices {
		dev := &s.Devices[i]
		p := &a.Phases[d.Plan.Assign(d.ID, dev.DeviceID)]
		p.Devices++
		inWindow := !dev.ReportedAt.Before(d.EvidenceSince)
		switch dev.Install {
		case InstallInstalled:
			p.Installed++
			if inWindow {
				p.WindowInstalled++
			}
		case InstallFailed:
			p.Failed++
			if inWindow {
				p.WindowFailed++
			}
		default:
			p.Pending++
			if !dev.JoinedAt.After(due) {
				p.PendingDue++
			}
		}
		var r *RunningAggregate
		switch dev.Running {
		case RunningNew:
			r = &a.New
		case RunningPrevious:
			r = &a.Previous
		default:
			continue
		}
		from := laterOf(dev.RunningSince, d.EvidenceSince)
		r.ExposureHours += hoursBetween(from, s.Now)
		crashes := countCrashes(dev, from, s, sigDevices)
		r.Crashes += crashes
		if crashes > 0 {
			r.Crashed++
		}
	}
	if len(sigDevices) > 0 {
		a.NewSignatures = sigDevices
	}
	return a
}

// CountAggregate is Count over an aggregate: each phase's outcomes (its pending members timed out
// once the criteria's deadline passed since the phase opened, the evidence window opened and they
// joined), and the crashes and exposure on the new and the previous release.
func (d Deployment) CountAggregate(a Aggregate) Tally {
	t := Tally{PerPhase: make([]PhaseTally, len(d.Plan.Phases))}
	for i, p := range a.Phases {
		if i >= len(t.PerPhase) {
			break
		}
		t.Devices += p.Devices
		t.PerPhase[i].Devices = p.Devices
		opened := d.PhaseOpenedAt(i)
		if i > d.Phase || opened.IsZero() {
			continue
		}
		t.Offered += p.Devices
		t.Installed += p.Installed
		t.Failed += p.Failed
		t.WindowReported += p.WindowInstalled + p.WindowFailed
		t.WindowFailed += p.WindowFailed
		timedOut := 0
		if !a.Now.Before(laterOf(opened, d.EvidenceSince).Add(d.Criteria.Timeouts.Deadline)) {
			timedOut = p.PendingDue
		}
		t.TimedOut += timedOut
		t.WindowTimedOut += timedOut
		t.Pending += p.Pending - timedOut
		t.PerPhase[i].Reported = p.Installed + p.Failed + timedOut
	}
	t.NewCrashes, t.NewCrashed, t.NewExposureHours = a.New.Crashes, a.New.Crashed, a.New.ExposureHours
	t.PrevCrashes, t.PrevExposureHrs = a.Previous.Crashes, a.Previous.ExposureHours
	if len(a.NewSignatures) > 0 {
		t.NewSignatures = a.NewSignatures
	}
	return t
}

// EvaluateAggregate is Evaluate over an aggregate.
func (d Deployment) EvaluateAggregate(a Aggregate) (Decision, Tally) {
	t := d.CountAggregate(a)
	return d.Criteria.Decide(t, a.BaselineCrashRate), t
}
