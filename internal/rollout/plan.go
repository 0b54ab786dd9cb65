package rollout

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/public"
)

// Limits on a phase plan, so that a typo cannot create a plan that never ends.
const (
	MaxPhases    = 20
	MaxSoak      = 30 * 24 * time.Hour
	shareEpsilon = 1e-9
)

// Defaults used by DefaultPlan and by the CLI when a flag is not given.
const (
	DefaultPhases       = "10,50,100"
	DefaultSoak         = time.Hour
	DefaultMinReporting = 0.9
)

// ErrInvalidPlan is wrapped by every plan validation and parse error.
var ErrInvalidPlan = errors.New("invalid phase plan")

// Phase is one step of a rollout.
type Phase struct {
	// Share is the cumulative share of the device group, in (0, 1], that has
	// been offered the release once this phase is open.
	Share float64
	// MinSoak is how long the phase stays open before the next one may open.
	MinSoak time.Duration
	// MinReporting is the share, in [0, 1], of the devices offered so far
	// that must have reported an outcome (installed, failed or timed out)
	// before the next phase may open.
	MinReporting float64
	// Cutoff, when set (Plan.Fit), is the position (see Position) below which a device is in
	// this phase or an earlier one; otherwise Share is.
	Cutoff float64
}

type phaseJSON struct {
	Share        float64 `json:"share"`
	MinSoak      string  `json:"min_soak"`
	MinReporting float64 `json:"min_reporting"`
	Cutoff       float64 `json:"cutoff,omitempty"`
}

// MarshalJSON writes the soak time as a Go duration string ("1h0m0s").
func (p Phase) MarshalJSON() ([]byte, error) {
	return json.Marshal(phaseJSON{Share: p.Share, MinSoak: p.MinSoak.String(), MinReporting: p.MinReporting, Cutoff: p.Cutoff})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (p *Phase) UnmarshalJSON(b []byte) error {
	var j phaseJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("rollout.Phase: %w", err)
	}
	soak, err := time.ParseDuration(j.MinSoak)
	if err != nil {
		return fmt.Errorf("rollout.Phase: min_soak: %w", err)
	}
	*p = Phase{Share: j.Share, MinSoak: soak, MinReporting: j.MinReporting, Cutoff: j.Cutoff}
	return nil
}

// Plan is the ordered list of phases of a deployment. The last phase always
// covers the whole group (Share 1).
type Plan struct {
	Phases []Phase `json:"phases"`
}

// Validate reports the first problem with the plan, wrapping ErrInvalidPlan.
func (p Plan) Validate() error {
	if len(p.Phases) == 0 {
		return public.Errorf(public.Invalid, "%w: at least one phase is needed", ErrInvalidPlan)
	}
	if len(p.Phases) > MaxPhases {
		return public.Errorf(public.Invalid, "%w: %d phases, at most %d allowed", ErrInvalidPlan, len(p.Phases), MaxPhases)
	}
	prev := 0.0
	for i, ph := range p.Phases {
		n := i + 1
		switch {
		case math.IsNaN(ph.Share) || ph.Share <= 0 || ph.Share > 1:
			return public.Errorf(public.Invalid, "%w: phase %d: %s%% is not in (0, 100]", ErrInvalidPlan, n, formatPercent(ph.Share))
		case ph.Share <= prev:
			return public.Errorf(public.Invalid, "%w: phase %d: %s%% does not grow past phase %d's %s%%; phases are cumulative shares of the group, e.g. 10,50,100",
				ErrInvalidPlan, n, formatPercent(ph.Share), n-1, formatPercent(prev))
		case math.IsNaN(ph.Cutoff) || ph.Cutoff < 0 || ph.Cutoff > 1:
			return public.Errorf(public.Invalid, "%w: phase %d: cutoff %v is not in [0, 1]", ErrInvalidPlan, n, ph.Cutoff)
		case ph.MinSoak < 0 || ph.MinSoak > MaxSoak:
			return public.Errorf(public.Invalid, "%w: phase %d: soak %v is not between 0 and %v", ErrInvalidPlan, n, ph.MinSoak, MaxSoak)
		case math.IsNaN(ph.MinReporting) || ph.MinReporting < 0 || ph.MinReporting > 1:
			return public.Errorf(public.Invalid, "%w: phase %d: minimum reporting %s%% is not in [0, 100]", ErrInvalidPlan, n, formatPercent(ph.MinReporting))
		}
		prev = ph.Share
	}
	if last := p.Phases[len(p.Phases)-1].Share; last != 1 {
		return public.Errorf(public.Invalid, "%w: the last phase must cover 100%% of the group, not %v%%", ErrInvalidPlan, formatPercent(last))
	}
	return nil
}

// Last is the index of the final phase.
func (p Plan) Last() int { return len(p.Phases) - 1 }

// String renders the plan as the --phases flag would take it, e.g. "10,50,100".
func (p Plan) String() string {
	parts := make([]string, len(p.Phases))
	for i, ph := range p.Phases {
		parts[i] = formatPercent(ph.Share)
	}
	return strings.Join(parts, ",")
}

func formatPercent(share float64) string {
	return strconv.FormatFloat(math.Round(share*100*1e6)/1e6, 'f', -1, 64)
}

// NewPlan builds a plan from cumulative percentages (as in --phases 10,50,100),
// giving every phase the same soak time and minimum reporting share.
func NewPlan(percents []float64, soak time.Duration, minReporting float64) (Plan, error) {
	p := Plan{Phases: make([]Phase, len(percents))}
	for i, pc := range percents {
		p.Phases[i] = Phase{Share: pc / 100, MinSoak: soak, MinReporting: minReporting}
	}
	if err := p.Validate(); err != nil {
		return Plan{}, err
	}
	return p, nil
}

// ParsePhases parses a comma-separated list of cumulative percentages such as
// "10,50,100" or "1,5.5,100".
func ParsePhases(spec string) ([]float64, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return nil, public.Errorf(public.Invalid, "%w: empty phase list", ErrInvalidPlan)
	}
	fields := strings.Split(spec, ",")
	if len(fields) > MaxPhases {
		return nil, public.Errorf(public.Invalid, "%w: %d phases, at most %d allowed", ErrInvalidPlan, len(fields), MaxPhases)
	}
	out := make([]float64, len(fields))
	for i, f := range fields {
		f = strings.TrimSuffix(strings.TrimSpace(f), "%")
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, public.Errorf(public.Invalid, "%w: phase %d: %q is not a percentage", ErrInvalidPlan, i+1, f)
		}
		if v <= 0 || v > 100 {
			return nil, public.Errorf(public.Invalid, "%w: phase %d: %v%% is not in (0, 100]", ErrInvalidPlan, i+1, v)
		}
		out[i] = v
	}
	return out, nil
}

// ParseSoak parses a soak time: a Go duration ("90m", "1h30m") or a whole
// number of days ("2d").
func ParseSoak(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return 0, public.Errorf(public.Invalid, "%w: soak %q is not a duration", ErrInvalidPlan, s)
		}
		d = time.Duration(n) * 24 * time.Hour
		if n > int(MaxSoak/(24*time.Hour)) {
			d = MaxSoak + 1
		}
	} else {
		var err error
		d, err = time.ParseDuration(s)
		if err != nil {
			return 0, public.Errorf(public.Invalid, "%w: soak %q is not a duration", ErrInvalidPlan, s)
		}
	}
	if d < 0 || d > MaxSoak {
		return 0, public.Errorf(public.Invalid, "%w: soak %v is not between 0 and %v", ErrInvalidPlan, d, MaxSoak)
	}
	return d, nil
}

// ParsePlan parses the CLI's --phases and --soak flags into a plan. Empty
// strings take the defaults.
func ParsePlan(phases, soak string) (Plan, error) {
	if phases == "" {
		phases = DefaultPhases
	}
	percents, err := ParsePhases(phases)
	if err != nil {
		return Plan{}, fmt.Errorf("rollout.ParsePlan: %w", err)
	}
	d := DefaultSoak
	if soak != "" {
		if d, err = ParseSoak(soak); err != nil {
			return Plan{}, fmt.Errorf("rollout.ParsePlan: %w", err)
		}
	}
	p, err := NewPlan(percents, d, DefaultMinReporting)
	if err != nil {
		return Plan{}, fmt.Errorf("rollout.ParsePlan: %w", err)
	}
	return p, nil
}

// DefaultPlan is 10 %, 50 %, 100 % with a one-hour soak and 90 % reporting.
func DefaultPlan() Plan {
	return Plan{Phases: []Phase{
		{Share: 0.1, MinSoak: DefaultSoak, MinReporting: DefaultMinReporting},
		{Share: 0.5, MinSoak: DefaultSoak, MinReporting: DefaultMinReporting},
		{Share: 1, MinSoak: DefaultSoak, MinReporting: DefaultMinReporting},
	}}
}

// EmergencyPlan is a single phase that offers the release to every device at
// once, for an actively exploited vulnerability, with no soak. It completes
// once the usual share of devices reported.
func EmergencyPlan() Plan {
	return Plan{Phases: []Phase{{Share: 1, MinReporting: DefaultMinReporting}}}
}
