package rollout

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParsePlan(t *testing.T) {
	tests := []struct {
		name, phases, soak string
		want               Plan
		wantErr            string
	}{
		{name: "defaults", want: DefaultPlan()},
		{name: "three phases", phases: "10,50,100", soak: "2h", want: Plan{Phases: []Phase{
			{Share: 0.1, MinSoak: 2 * time.Hour, MinReporting: DefaultMinReporting},
			{Share: 0.5, MinSoak: 2 * time.Hour, MinReporting: DefaultMinReporting},
			{Share: 1, MinSoak: 2 * time.Hour, MinReporting: DefaultMinReporting},
		}}},
		{name: "percent signs spaces and decimals", phases: " 1%, 5.5 ,100% ", soak: "0s", want: Plan{Phases: []Phase{
			{Share: 0.01, MinReporting: DefaultMinReporting},
			{Share: 0.055, MinReporting: DefaultMinReporting},
			{Share: 1, MinReporting: DefaultMinReporting},
		}}},
		{name: "days", phases: "100", soak: "2d", want: Plan{Phases: []Phase{{Share: 1, MinSoak: 48 * time.Hour, MinReporting: DefaultMinReporting}}}},
		{name: "last below 100", phases: "10,50", wantErr: "the last phase must cover 100% of the group, not 50%"},
		{name: "not increasing", phases: "50,50,100", wantErr: "phase 2: 50% does not grow past phase 1's 50%; phases are cumulative shares of the group, e.g. 10,50,100"},
		{name: "decreasing", phases: "50,10,100", wantErr: "phase 2: 10% does not grow past phase 1's 50%"},
		{name: "zero", phases: "0,100", wantErr: "phase 1: 0% is not in (0, 100]"},
		{name: "above 100", phases: "10,150", wantErr: "phase 2: 150% is not in (0, 100]"},
		{name: "word", phases: "10,half,100", wantErr: `phase 2: "half" is not a percentage`},
		{name: "nan", phases: "NaN,100", wantErr: `phase 1: "NaN" is not a percentage`},
		{name: "empty field", phases: "10,,100", wantErr: `phase 2: "" is not a percentage`},
		{name: "too many", phases: strings.Repeat("1,", 30) + "100", wantErr: "31 phases, at most 20"},
		{name: "bad soak", phases: "100", soak: "an hour", wantErr: `soak "an hour" is not a duration`},
		{name: "negative soak", phases: "100", soak: "-1h", wantErr: "soak -1h0m0s is not between 0"},
		{name: "soak too long", phases: "100", soak: "31d", wantErr: "is not between 0 and 720h0m0s"},
		{name: "huge days", phases: "100", soak: "99999999999d", wantErr: "is not between 0 and 720h0m0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePlan(tt.phases, tt.soak)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrInvalidPlan) {
					t.Fatalf("ParsePlan(%q, %q) error = %v, want one containing %q wrapping ErrInvalidPlan", tt.phases, tt.soak, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParsePlan(%q, %q): %v", tt.phases, tt.soak, err)
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("ParsePlan(%q, %q) (-got +want):\n%s", tt.phases, tt.soak, diff)
			}
		})
	}
}

func TestPlanValidate(t *testing.T) {
	tests := []struct {
		name    string
		plan    Plan
		wantErr string
	}{
		{name: "default", plan: DefaultPlan()},
		{name: "emergency", plan: EmergencyPlan()},
		{name: "empty", plan: Plan{}, wantErr: "at least one phase"},
		{name: "min reporting above 1", plan: Plan{Phases: []Phase{{Share: 1, MinReporting: 1.5}}}, wantErr: "minimum reporting 150% is not in [0, 100]"},
		{name: "negative soak", plan: Plan{Phases: []Phase{{Share: 1, MinSoak: -time.Second}}}, wantErr: "soak -1s is not between"},
		{name: "share above 1", plan: Plan{Phases: []Phase{{Share: 1.2}}}, wantErr: "phase 1: 120% is not in (0, 100]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.plan.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestPlanStringAndJSON(t *testing.T) {
	p, err := ParsePlan("1,5.5,100", "90m")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := p.String(), "1,5.5,100"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"min_soak":"1h30m0s"`) {
		t.Errorf("JSON %s does not carry the soak as a duration string", b)
	}
	var back Plan
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(back, p); diff != "" {
		t.Errorf("JSON round trip (-got +want):\n%s", diff)
	}
	if err := json.Unmarshal([]byte(`{"phases":[{"share":1,"min_soak":"soon"}]}`), &back); err == nil {
		t.Error("Unmarshal accepted a soak that is not a duration")
	}
}

func TestAssignIsDeterministicAndProportional(t *testing.T) {
	plan, err := ParsePlan("10,50,100", "1h")
	if err != nil {
		t.Fatal(err)
	}
	const n = 20000
	counts := make([]int, 3)
	for i := range n {
		dev := fmt.Sprintf("device-%d", i)
		p := plan.Assign("dep-1", dev)
		if again := plan.Assign("dep-1", dev); again != p {
			t.Fatalf("Assign(%s) = %d then %d", dev, p, again)
		}
		counts[p]++
	}
	// Expected 10 %, 40 %, 50 %; allow five standard deviations.
	for i, want := range []float64{0.1, 0.4, 0.5} {
		got := float64(counts[i]) / n
		if d := got - want; d > 0.02 || d < -0.02 {
			t.Errorf("phase %d holds %.3f of devices, want about %.2f", i, got, want)
		}
	}
	// Another deployment shuffles the fleet: the first phases differ.
	same := 0
	for i := range 1000 {
		dev := fmt.Sprintf("device-%d", i)
		if plan.Assign("dep-1", dev) == 0 && plan.Assign("dep-2", dev) == 0 {
			same++
		}
	}
	if same > 30 {
		t.Errorf("%d of 1000 devices are in the first phase of both deployments, want about 10", same)
	}
}

func TestPositionRange(t *testing.T) {
	for i := range 1000 {
		p := Position("d", fmt.Sprint(i))
		if p < 0 || p >= 1 {
			t.Fatalf("Position = %v, outside [0, 1)", p)
		}
	}
	if got, want := Position("a", "bc"), Position("ab", "c"); got == want {
		t.Error("Position does not separate deployment and device IDs")
	}
}

// TestPositionStable pins positions computed before Position hashed from a stack buffer: a
// device must stay in the phase it was in, across versions of the server, for as long as a
// deployment runs.
func TestPositionStable(t *testing.T) {
	long := strings.Repeat("x", 200) // past the stack buffer
	for _, tt := range []struct {
		deployment, device string
		want               float64
	}{
		{"dep-1", "dev-1", 0.660818009943355},
		{"", "", 0.4304816492364817},
		{"9f1c2e7a-5b1d-4c1e-9a55-2f0e1f8b6c3d", "a3f1c2d4e5b60718293a4b5c6d7e8f90112233445566778899aabbccddeeff00", 0.7952038415040517},
		{long, long, 0.2014833750000503},
	} {
		if got := Position(tt.deployment, tt.device); got != tt.want {
			t.Errorf("Position(%.12q, %.12q) = %v, want %v", tt.deployment, tt.device, got, tt.want)
		}
	}
	device := strings.Repeat("a", 64)
	if n := testing.AllocsPerRun(100, func() { Position("9f1c2e7a-5b1d-4c1e-9a55-2f0e1f8b6c3d", device) }); n != 0 {
		t.Errorf("Position allocates %v times", n)
	}
}

func TestPhaseAt(t *testing.T) {
	plan := DefaultPlan()
	tests := []struct {
		pos  float64
		want int
	}{{0, 0}, {0.0999, 0}, {0.1, 1}, {0.4999, 1}, {0.5, 2}, {0.9999, 2}}
	for _, tt := range tests {
		if got := plan.PhaseAt(tt.pos); got != tt.want {
			t.Errorf("PhaseAt(%v) = %d, want %d", tt.pos, got, tt.want)
		}
	}
}

// TestFitRoundsUp pins the rounding rule: with the members known, a phase of share s offers the
// release to ceil(s × N) of them, whatever their hashed positions; the last phase takes all.
func TestFitRoundsUp(t *testing.T) {
	for _, tc := range []struct {
		phases  string
		devices int
		want    []int // devices per phase, not cumulative
	}{
		{"20,100", 30, []int{6, 24}},
		{"10,50,100", 30, []int{3, 12, 15}},
		{"10,50,100", 5, []int{1, 2, 2}},
		{"1,100", 3, []int{1, 2}},
		{"99,100", 30, []int{30, 0}},
		{"100", 7, []int{7}},
	} {
		for seed := range 20 {
			depID := fmt.Sprintf("dep_%d", seed)
			var members []string
			for i := range tc.devices {
				members = append(members, fmt.Sprintf("device-%d-%d", seed, i))
			}
			plan, err := ParsePlan(tc.phases, "")
			if err != nil {
				t.Fatal(err)
			}
			fit := plan.Fit(depID, members)
			if err := fit.Validate(); err != nil {
				t.Fatalf("%s: fitted plan: %v", tc.phases, err)
			}
			got := make([]int, len(fit.Phases))
			for _, id := range members {
				got[fit.Assign(depID, id)]++
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("%s over %d devices (deployment %s): %v per phase, want %v", tc.phases, tc.devices, depID, got, tc.want)
			}
			// Stored and read back, the plan assigns the same way.
			b, _ := json.Marshal(fit)
			var back Plan
			if err := json.Unmarshal(b, &back); err != nil || !slices.Equal(back.Phases, fit.Phases) {
				t.Fatalf("plan JSON round trip: %v, %+v", err, back)
			}
		}
	}
	if p := DefaultPlan().Fit("dep", nil); p.Phases[0].Cutoff != 0 {
		t.Errorf("a plan fitted to no members has cutoffs: %+v", p)
	}
}
