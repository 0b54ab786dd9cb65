package rollout

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/public"
)

// Action is what a crossed criterion does to a deployment.
type Action string

// Actions, from weakest to strongest.
const (
	ActionContinue Action = "continue" // nothing crossed (only in a Decision)
	ActionOff      Action = "off"      // the criterion is disabled
	ActionPause    Action = "pause"    // stop offering the release until an operator resumes
	ActionAbort    Action = "abort"    // stop the deployment for good
)

func (a Action) rank() int {
	switch a {
	case ActionPause:
		return 1
	case ActionAbort:
		return 2
	}
	return 0
}

// Criterion names one abort criterion.
type Criterion string

// The abort criteria.
const (
	CriterionInstallFailures Criterion = "install_failures"
	CriterionTimeouts        Criterion = "timeouts"
	CriterionCrashRate       Criterion = "crash_rate"
	CriterionNewSignature    Criterion = "new_crash_signature"
)

// ErrInvalidCriteria is wrapped by every criteria validation error.
var ErrInvalidCriteria = errors.New("invalid abort criteria")

// ShareLimit trips when more than MaxShare of at least MinSample devices
// that reported an outcome failed to install.
type ShareLimit struct {
	MaxShare  float64 `json:"max_share"`
	MinSample int     `json:"min_sample"`
	Action    Action  `json:"action"`
}

// TimeoutLimit counts a device as timed out when it has not reported an
// outcome Deadline after it was first offered the release (or after the last
// resume); it trips when more than MaxShare of at least MinSample devices
// whose outcome is known (reported or timed out) timed out. Timed-out
// devices count as reported for phase progress, so a stuck device never holds
// a rollout open.
type TimeoutLimit struct {
	Deadline  time.Duration `json:"deadline"`
	MaxShare  float64       `json:"max_share"`
	MinSample int           `json:"min_sample"`
	Action    Action        `json:"action"`
}

// CrashRateLimit compares the crash rate (crashes per device-hour) of devices
// running the new release with that of devices running the previous release.
// It trips when the new release has at least MinExposureHours device-hours,
// at least MinCrashedDevices distinct devices crashed on it, and its crash
// count is significantly above MaxRatio times the baseline: the chance of
// seeing that many crashes if the new rate were MaxRatio times the baseline
// is below Significance (a conditional binomial test between the two
// releases' crash counts, or a Poisson test against a supplied baseline
// rate). The test keeps a handful of unlucky crashes in a small first phase,
// or a quiet handful of devices left on the previous release, from pausing a
// healthy release.
type CrashRateLimit struct {
	MaxRatio          float64 `json:"max_ratio"`
	MinExposureHours  float64 `json:"min_exposure_hours"`
	MinCrashedDevices int     `json:"min_crashed_devices"`
	Significance      float64 `json:"significance"`
	Action            Action  `json:"action"`
}

// SignatureLimit trips when one crash signature that was never seen on the
// previous release has been reported by more than MaxDevices devices running
// the new release.
type SignatureLimit struct {
	MaxDevices int    `json:"max_devices"`
	Action     Action `json:"action"`
}

// Criteria are the abort criteria of a deployment, checked at every step.
type Criteria struct {
	InstallFailures ShareLimit     `json:"install_failures"`
	Timeouts        TimeoutLimit   `json:"timeouts"`
	CrashRate       CrashRateLimit `json:"crash_rate"`
	NewSignature    SignatureLimit `json:"new_crash_signature"`
}

// DefaultCriteria are the criteria a deployment gets unless told otherwise.
func DefaultCriteria() Criteria {
	return Criteria{
		InstallFailures: ShareLimit{MaxShare: 0.05, MinSample: 20, Action: ActionPause},
		Timeouts:        TimeoutLimit{Deadline: 24 * time.Hour, MaxShare: 0.10, MinSample: 20, Action: ActionPause},
		CrashRate:       CrashRateLimit{MaxRatio: 2, MinExposureHours: 24, MinCrashedDevices: 3, Significance: 0.01, Action: ActionPause},
		NewSignature:    SignatureLimit{MaxDevices: 3, Action: ActionPause},
	}
}

func validAction(a Action) bool {
	return a == ActionOff || a == ActionPause || a == ActionAbort
}

func validShare(v float64) bool { return !math.IsNaN(v) && v >= 0 && v <= 1 }

// Validate reports the first problem with the criteria, wrapping ErrInvalidCriteria.
func (c Criteria) Validate() error {
	type check struct {
		ok  bool
		msg string
	}
	checks := []check{
		{validAction(c.InstallFailures.Action), fmt.Sprintf("install_failures: action %q is not off, pause or abort", c.InstallFailures.Action)},
		{validShare(c.InstallFailures.MaxShare), fmt.Sprintf("install_failures: max share %v is not in [0, 1]", c.InstallFailures.MaxShare)},
		{c.InstallFailures.MinSample >= 1, fmt.Sprintf("install_failures: minimum sample %d is below 1", c.InstallFailures.MinSample)},
		{validAction(c.Timeouts.Action), fmt.Sprintf("timeouts: action %q is not off, pause or abort", c.Timeouts.Action)},
		{c.Timeouts.Deadline >= time.Minute && c.Timeouts.Deadline <= MaxSoak, fmt.Sprintf("timeouts: deadline %v is not between 1m and %v", c.Timeouts.Deadline, MaxSoak)},
		{validShare(c.Timeouts.MaxShare), fmt.Sprintf("timeouts: max share %v is not in [0, 1]", c.Timeouts.MaxShare)},
		{c.Timeouts.MinSample >= 1, fmt.Sprintf("timeouts: minimum sample %d is below 1", c.Timeouts.MinSample)},
		{validAction(c.CrashRate.Action), fmt.Sprintf("crash_rate: action %q is not off, pause or abort", c.CrashRate.Action)},
		{!math.IsNaN(c.CrashRate.MaxRatio) && c.CrashRate.MaxRatio >= 1, fmt.Sprintf("crash_rate: max ratio %v is below 1", c.CrashRate.MaxRatio)},
		{!math.IsNaN(c.CrashRate.MinExposureHours) && c.CrashRate.MinExposureHours >= 0, fmt.Sprintf("crash_rate: minimum exposure %v hours is negative", c.CrashRate.MinExposureHours)},
		{!math.IsNaN(c.CrashRate.Significance) && c.CrashRate.Significance > 0 && c.CrashRate.Significance < 1, fmt.Sprintf("crash_rate: significance %v is not in (0, 1)", c.CrashRate.Significance)},
		{c.CrashRate.MinCrashedDevices >= 1, fmt.Sprintf("crash_rate: minimum crashed devices %d is below 1", c.CrashRate.MinCrashedDevices)},
		{validAction(c.NewSignature.Action), fmt.Sprintf("new_crash_signature: action %q is not off, pause or abort", c.NewSignature.Action)},
		{c.NewSignature.MaxDevices >= 0, fmt.Sprintf("new_crash_signature: max devices %d is negative", c.NewSignature.MaxDevices)},
	}
	for _, ch := range checks {
		if !ch.ok {
			return public.Errorf(public.Invalid, "%w: %s", ErrInvalidCriteria, ch.msg)
		}
	}
	return nil
}

// InstallState is what a device last reported about installing the release.
type InstallState string

// Install states.
const (
	InstallPending   InstallState = "pending"   // offered or not yet offered; no outcome reported
	InstallInstalled InstallState = "installed" // installed and committed
	InstallFailed    InstallState = "failed"    // the install failed or rolled back
)

// Running says which release a device runs now.
type Running string

// Running values.
const (
	RunningNew      Running = "new"      // the deployment's release
	RunningPrevious Running = "previous" // the release the group ran before
	RunningOther    Running = "other"    // anything else (not counted in crash rates)
)

// Crash is one crash report from a device, reduced to what the criteria need.
type Crash struct {
	Signature string
	At        time.Time
}

// DeviceStatus is what the server knows about one device of the group.
type DeviceStatus struct {
	DeviceID string
	// JoinedAt is when the device joined the group; zero if it was a member
	// before the deployment started.
	JoinedAt time.Time
	// Install is the last outcome the device reported for this deployment.
	Install InstallState
	// ReportedAt is when Install last changed to installed or failed.
	ReportedAt time.Time
	// Running is which release the device runs, since RunningSince.
	Running      Running
	RunningSince time.Time
	// Crashes lists the crashes the device reported while running its
	// current release.
	Crashes []Crash
}

// Snapshot is the state of a device group at one instant.
type Snapshot struct {
	Now     time.Time
	Devices []DeviceStatus
	// KnownSignatures are crash signatures already seen on the previous
	// release; they never trip the new-signature criterion.
	KnownSignatures map[string]bool
	// BaselineCrashRate, if set, is the previous release's crash rate
	// (crashes per device-hour) measured elsewhere. It is used when the
	// devices still on the previous release give too little exposure.
	BaselineCrashRate *float64
}

// Finding is one crossed criterion.
type Finding struct {
	Criterion Criterion `json:"criterion"`
	Action    Action    `json:"action"`
	Reason    string    `json:"reason"`
	Observed  float64   `json:"observed"`
	Threshold float64   `json:"threshold"`
	Sample    int       `json:"sample"`
	Signature string    `json:"signature,omitempty"`
}

// Decision is the outcome of evaluating the criteria: the strongest action
// among the findings, or ActionContinue when none crossed.
type Decision struct {
	Action   Action    `json:"action"`
	Findings []Finding `json:"findings,omitempty"`
}

// Reason joins the findings' reasons into one sentence for the audit log.
func (d Decision) Reason() string {
	rs := make([]string, len(d.Findings))
	for i, f := range d.Findings {
		rs[i] = f.Reason
	}
	return strings.Join(rs, "; ")
}

// Tally counts the devices of a snapshot for one deployment.
type Tally struct {
	Devices   int `json:"devices"`   // members of the group
	Offered   int `json:"offered"`   // in an open phase
	Pending   int `json:"pending"`   // offered, no outcome yet, not timed out
	Installed int `json:"installed"` // offered and installed
	Failed    int `json:"failed"`    // offered and failed
	TimedOut  int `json:"timed_out"` // offered, no outcome within the deadline
	// The Window counts include only outcomes since the deployment's
	// evidence window opened (creation or last resume); the criteria use them.
	WindowReported int `json:"window_reported"`
	WindowFailed   int `json:"window_failed"`
	WindowTimedOut int `json:"window_timed_out"`

	NewCrashes       int     `json:"new_crashes"`
	NewExposureHours float64 `json:"new_exposure_hours"`
	NewCrashed       int     `json:"new_crashed_devices"`
	PrevCrashes      int     `json:"previous_crashes"`
	PrevExposureHrs  float64 `json:"previous_exposure_hours"`
	// PerPhase counts offered and reported devices per phase.
	PerPhase []PhaseTally `json:"per_phase"`
	// NewSignatures counts, per crash signature not known from the previous
	// release, the devices on the new release that reported it in the
	// evidence window; nil when there are none.
	NewSignatures map[string]int `json:"new_signatures,omitempty"`
}

// PhaseTally counts one phase's devices.
type PhaseTally struct {
	Devices  int `json:"devices"`
	Reported int `json:"reported"` // installed, failed or timed out
}

// Reported is the number of offered devices with an outcome, timed out included.
func (t Tally) Reported() int { return t.Installed + t.Failed + t.TimedOut }

// ReportedShare is Reported over Offered; 1 when nothing was offered.
func (t Tally) ReportedShare() float64 {
	if t.Offered == 0 {
		return 1
	}
	return float64(t.Reported()) / float64(t.Offered)
}

func laterOf(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func hoursBetween(from, to time.Time) float64 {
	if !to.After(from) {
		return 0
	}
	return to.Sub(from).Hours()
}

// Evaluate tallies the snapshot (Count) and checks every criterion that is not
// off against the tally (Criteria.Decide). It changes nothing; Step applies the
// decision.
func (d Deployment) Evaluate(s Snapshot) (Decision, Tally) {
	t := d.Count(s)
	return d.Criteria.Decide(t, s.BaselineCrashRate), t
}

// Count tallies the snapshot for the deployment: each device's phase and
// install outcome (timed out once the criteria's deadline passed without one),
// and the crashes and exposure on the new and the previous release within the
// evidence window. It judges nothing.
func (d Deployment) Count(s Snapshot) Tally {
	c := d.Criteria
	t := Tally{Devices: len(s.Devices), PerPhase: make([]PhaseTally, len(d.Plan.Phases))}
	sigDevices := map[string]int{}
	for i := range s.Devices {
		dev := &s.Devices[i]
		phase := d.Plan.Assign(d.ID, dev.DeviceID)
		t.PerPhase[phase].Devices++
		if phase <= d.Phase && !d.PhaseOpenedAt(phase).IsZero() {
			offeredAt := laterOf(d.PhaseOpenedAt(phase), dev.JoinedAt)
			windowFrom := laterOf(offeredAt, d.EvidenceSince)
			t.Offered++
			switch dev.Install {
			case InstallInstalled:
				t.Installed++
				t.PerPhase[phase].Reported++
				if !dev.ReportedAt.Before(d.EvidenceSince) {
					t.WindowReported++
				}
			case InstallFailed:
				t.Failed++
				t.PerPhase[phase].Reported++
				if !dev.ReportedAt.Before(d.EvidenceSince) {
					t.WindowReported++
					t.WindowFailed++
				}
			default:
				if !s.Now.Before(windowFrom.Add(c.Timeouts.Deadline)) {
					t.TimedOut++
					t.WindowTimedOut++
					t.PerPhase[phase].Reported++
				} else {
					t.Pending++
				}
			}
		}
		if dev.Running != RunningNew && dev.Running != RunningPrevious {
			continue
		}
		from := laterOf(dev.RunningSince, d.EvidenceSince)
		exposure := hoursBetween(from, s.Now)
		crashes := countCrashes(dev, from, s, sigDevices)
		if dev.Running == RunningNew {
			t.NewCrashes += crashes
			t.NewExposureHours += exposure
			if crashes > 0 {
				t.NewCrashed++
			}
		} else {
			t.PrevCrashes += crashes
			t.PrevExposureHrs += exposure
		}
	}
	if len(sigDevices) > 0 {
		t.NewSignatures = sigDevices
	}
	return t
}

// DecideWhole is Decide for a deployment about to complete: install failures and timeouts are
// judged over whatever reported even when that is below the minimum sample, since no larger
// sample will come. Without it a group smaller than the minimum sample in which every device
// failed would read as completed.
func (c Criteria) DecideWhole(t Tally, baseline *float64) Decision {
	if n := t.WindowReported; n > 0 && n < c.InstallFailures.MinSample {
		c.InstallFailures.MinSample = n
	}
	if n := t.WindowReported + t.WindowTimedOut; n > 0 && n < c.Timeouts.MinSample {
		c.Timeouts.MinSample = n
	}
	return c.Decide(t, baseline)
}

// Decide checks every criterion that is not off against a tally and returns
// the strongest action among the findings, or ActionContinue when none
// crossed. baseline, if set, is the previous release's crash rate measured
// elsewhere (Snapshot.BaselineCrashRate).
func (c Criteria) Decide(t Tally, baseline *float64) Decision {
	var dec Decision
	add := func(f Finding) { dec.Findings = append(dec.Findings, f) }

	if a := c.InstallFailures.Action; a != ActionOff && t.WindowReported >= c.InstallFailures.MinSample {
		n := t.WindowReported
		share := float64(t.WindowFailed) / float64(n)
		if share > c.InstallFailures.MaxShare {
			add(Finding{Criterion: CriterionInstallFailures, Action: a, Observed: share, Threshold: c.InstallFailures.MaxShare, Sample: n,
				Reason: fmt.Sprintf("install failures %d of %d (%.1f%%) exceed %.1f%%", t.WindowFailed, n, share*100, c.InstallFailures.MaxShare*100)})
		}
	}
	if decided := t.WindowReported + t.WindowTimedOut; c.Timeouts.Action != ActionOff && decided > 0 && decided >= c.Timeouts.MinSample {
		share := float64(t.WindowTimedOut) / float64(decided)
		if share > c.Timeouts.MaxShare {
			add(Finding{Criterion: CriterionTimeouts, Action: c.Timeouts.Action, Observed: share, Threshold: c.Timeouts.MaxShare, Sample: decided,
				Reason: fmt.Sprintf("devices timed out %d of %d (%.1f%%) exceed %.1f%% after %v", t.WindowTimedOut, decided, share*100, c.Timeouts.MaxShare*100, c.Timeouts.Deadline)})
		}
	}
	if a := c.CrashRate.Action; a != ActionOff && t.NewExposureHours > 0 && t.NewExposureHours >= c.CrashRate.MinExposureHours && t.NewCrashed >= c.CrashRate.MinCrashedDevices {
		rate := float64(t.NewCrashes) / t.NewExposureHours
		var base, p float64
		judged := false
		if t.PrevExposureHrs > 0 && t.PrevExposureHrs >= c.CrashRate.MinExposureHours {
			// Conditional test for two Poisson rates: given all crashes,
			// the new release's share is binomial under the hypothesis
			// that its rate is MaxRatio times the previous one.
			base, judged = float64(t.PrevCrashes)/t.PrevExposureHrs, true
			scaled := c.CrashRate.MaxRatio * t.NewExposureHours
			p = BinomialTail(t.NewCrashes+t.PrevCrashes, scaled/(scaled+t.PrevExposureHrs), t.NewCrashes)
		} else if baseline != nil {
			base, judged = *baseline, true
			p = PoissonTail(c.CrashRate.MaxRatio*base*t.NewExposureHours, t.NewCrashes)
		}
		limit := c.CrashRate.MaxRatio * base
		if judged && rate > limit && p < c.CrashRate.Significance {
			add(Finding{Criterion: CriterionCrashRate, Action: a, Observed: rate, Threshold: limit, Sample: t.NewCrashed,
				Reason: fmt.Sprintf("crash rate %.4g per device-hour on the new release (%d crashes on %d devices) exceeds %.3g times the previous release's %.4g (p=%.2g)", rate, t.NewCrashes, t.NewCrashed, c.CrashRate.MaxRatio, base, p)})
		}
	}
	if a := c.NewSignature.Action; a != ActionOff {
		sigs := make([]string, 0, len(t.NewSignatures))
		for sig, n := range t.NewSignatures {
			if n > c.NewSignature.MaxDevices {
				sigs = append(sigs, sig)
			}
		}
		slices.Sort(sigs)
		for _, sig := range sigs {
			n := t.NewSignatures[sig]
			add(Finding{Criterion: CriterionNewSignature, Action: a, Observed: float64(n), Threshold: float64(c.NewSignature.MaxDevices), Sample: n, Signature: sig,
				Reason: fmt.Sprintf("new crash signature %s on %d devices exceeds %d", shortSig(sig), n, c.NewSignature.MaxDevices)})
		}
	}

	dec.Action = ActionContinue
	for _, f := range dec.Findings {
		if f.Action.rank() > dec.Action.rank() {
			dec.Action = f.Action
		}
	}
	return dec
}

func shortSig(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

// PoissonTail is P(X >= k) for X ~ Poisson(lambda).
func PoissonTail(lambda float64, k int) float64 {
	if k <= 0 {
		return 1
	}
	if lambda <= 0 {
		return 0
	}
	// Far beyond the mean the tail is below any useful significance.
	if float64(k) > lambda+40*math.Sqrt(lambda)+40 {
		return 0
	}
	cdf := 0.0
	logL := math.Log(lambda)
	for i := range k {
		lg, _ := math.Lgamma(float64(i) + 1)
		cdf += math.Exp(-lambda + float64(i)*logL - lg)
	}
	return math.Max(0, 1-cdf)
}

// BinomialTail is P(X >= k) for X ~ Binomial(n, p).
func BinomialTail(n int, p float64, k int) float64 {
	switch {
	case k <= 0:
		return 1
	case k > n:
		return 0
	case p <= 0:
		return 0
	case p >= 1:
		return 1
	}
	lgN, _ := math.Lgamma(float64(n) + 1)
	lp, lq := math.Log(p), math.Log1p(-p)
	sum := 0.0
	for i := k; i <= n; i++ {
		lgI, _ := math.Lgamma(float64(i) + 1)
		lgNI, _ := math.Lgamma(float64(n-i) + 1)
		sum += math.Exp(lgN - lgI - lgNI + float64(i)*lp + float64(n-i)*lq)
	}
	return math.Min(1, sum)
}

// countCrashes counts the crashes dev reported between from and the snapshot's time and, on the
// new release, adds one to sigDevices for each signature it reported that the previous release
// never showed (a device counts once per signature). Count and Aggregate both judge crashes by it.
func countCrashes(dev *DeviceStatus, from time.Time, s Snapshot, sigDevices map[string]int) int {
	crashes := 0
	var seen map[string]bool
	for _, cr := range dev.Crashes {
		if cr.At.Before(from) || cr.At.After(s.Now) {
			continue
		}
		crashes++
		if dev.Running == RunningNew && cr.Signature != "" && !s.KnownSignatures[cr.Signature] && !seen[cr.Signature] {
			if seen == nil {
				seen = map[string]bool{}
			}
			seen[cr.Signature] = true
			sigDevices[cr.Signature]++
		}
	}
	return crashes
}
