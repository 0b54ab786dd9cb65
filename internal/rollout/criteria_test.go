package rollout

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// onePhase starts a deployment that offers the release to the whole group at
// t0, so every device in a snapshot counts.
func onePhase(t testing.TB, c Criteria) Deployment {
	t.Helper()
	d, _, err := New("dep", Plan{Phases: []Phase{{Share: 1}}}, c, false, "op", t0)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// fleet makes n devices, shaped by f.
func fleet(n int, f func(i int, d *DeviceStatus)) []DeviceStatus {
	out := make([]DeviceStatus, n)
	for i := range out {
		out[i] = DeviceStatus{DeviceID: fmt.Sprintf("dev-%04d", i), Install: InstallPending, Running: RunningPrevious, RunningSince: t0.Add(-30 * 24 * time.Hour)}
		if f != nil {
			f(i, &out[i])
		}
	}
	return out
}

func installed(d *DeviceStatus, at time.Time) {
	d.Install, d.ReportedAt, d.Running, d.RunningSince = InstallInstalled, at, RunningNew, at
}

func failed(d *DeviceStatus, at time.Time) {
	d.Install, d.ReportedAt = InstallFailed, at
}

func criteria(mod func(*Criteria)) Criteria {
	c := DefaultCriteria()
	mod(&c)
	return c
}

type findingKey struct {
	Criterion Criterion
	Action    Action
	Sample    int
	Signature string
}

func TestEvaluateCriteria(t *testing.T) {
	hour := time.Hour
	base := DefaultCriteria()
	rate := 0.01
	tests := []struct {
		name       string
		criteria   Criteria
		now        time.Duration // after t0
		devices    []DeviceStatus
		known      map[string]bool
		baseline   *float64
		wantAction Action
		want       []findingKey
	}{
		{
			name: "healthy", criteria: base, now: 2 * hour,
			devices:    fleet(100, func(i int, d *DeviceStatus) { installed(d, t0.Add(hour)) }),
			wantAction: ActionContinue,
		},
		{
			name: "install failures over threshold", criteria: base, now: 2 * hour,
			devices: fleet(100, func(i int, d *DeviceStatus) {
				if i%10 == 0 {
					failed(d, t0.Add(hour))
				} else {
					installed(d, t0.Add(hour))
				}
			}),
			wantAction: ActionPause,
			want:       []findingKey{{CriterionInstallFailures, ActionPause, 100, ""}},
		},
		{
			name: "install failures at threshold do not trip", criteria: base, now: 2 * hour,
			devices: fleet(100, func(i int, d *DeviceStatus) {
				if i < 5 {
					failed(d, t0.Add(hour))
				} else {
					installed(d, t0.Add(hour))
				}
			}),
			wantAction: ActionContinue,
		},
		{
			name: "install failures below minimum sample", criteria: base, now: 2 * hour,
			devices: fleet(100, func(i int, d *DeviceStatus) {
				switch {
				case i < 10:
					failed(d, t0.Add(hour))
				case i < 19:
					installed(d, t0.Add(hour))
				}
			}),
			wantAction: ActionContinue,
		},
		{
			name: "install failures abort when configured", criteria: criteria(func(c *Criteria) { c.InstallFailures.Action = ActionAbort }), now: 2 * hour,
			devices:    fleet(20, func(i int, d *DeviceStatus) { failed(d, t0.Add(hour)) }),
			wantAction: ActionAbort,
			want:       []findingKey{{CriterionInstallFailures, ActionAbort, 20, ""}},
		},
		{
			name: "install failures off", criteria: criteria(func(c *Criteria) { c.InstallFailures.Action = ActionOff }), now: 2 * hour,
			devices:    fleet(20, func(i int, d *DeviceStatus) { failed(d, t0.Add(hour)) }),
			wantAction: ActionContinue,
		},
		{
			name: "silent devices before the deadline are pending", criteria: base, now: 23 * hour,
			devices: fleet(100, func(i int, d *DeviceStatus) {
				if i >= 50 {
					installed(d, t0.Add(hour))
				}
			}),
			wantAction: ActionContinue,
		},
		{
			name: "silent devices past the deadline time out", criteria: base, now: 24 * hour,
			devices: fleet(100, func(i int, d *DeviceStatus) {
				if i >= 50 {
					installed(d, t0.Add(hour))
				}
			}),
			wantAction: ActionPause,
			want:       []findingKey{{CriterionTimeouts, ActionPause, 100, ""}},
		},
		{
			name: "few timeouts stay under the share", criteria: base, now: 25 * hour,
			devices: fleet(100, func(i int, d *DeviceStatus) {
				if i >= 5 {
					installed(d, t0.Add(hour))
				}
			}),
			wantAction: ActionContinue,
		},
		{
			name: "late joiner's deadline runs from when it joined", criteria: base, now: 30 * hour,
			devices: fleet(40, func(i int, d *DeviceStatus) {
				if i < 20 {
					installed(d, t0.Add(hour))
				} else {
					d.JoinedAt = t0.Add(20 * hour)
				}
			}),
			wantAction: ActionContinue,
		},
		{
			name: "crash rate on new release above ratio", criteria: base, now: 11 * hour,
			devices: fleet(200, func(i int, d *DeviceStatus) {
				if i < 100 {
					installed(d, t0.Add(hour)) // 100 devices x 10 h = 1000 device-hours
					if i < 10 {
						for h := range 5 {
							d.Crashes = append(d.Crashes, Crash{"sig-known", t0.Add(time.Duration(2+h) * hour)})
						}
					}
				} else if i < 105 {
					// 100 devices x 11 h = 1100 device-hours, 5 crashes.
					d.Crashes = []Crash{{"sig-known", t0.Add(2 * hour)}}
				}
			}),
			known:      map[string]bool{"sig-known": true},
			wantAction: ActionPause,
			want:       []findingKey{{CriterionCrashRate, ActionPause, 10, ""}},
		},
		{
			name: "crash rate like the previous release", criteria: base, now: 11 * hour,
			devices: fleet(200, func(i int, d *DeviceStatus) {
				if i < 100 {
					installed(d, t0.Add(hour))
					if i < 5 {
						d.Crashes = []Crash{{"sig-known", t0.Add(5 * hour)}}
					}
				} else if i < 106 {
					d.Crashes = []Crash{{"sig-known", t0.Add(2 * hour)}}
				}
			}),
			known:      map[string]bool{"sig-known": true},
			wantAction: ActionContinue,
		},
		{
			name: "crashes before the evidence window are ignored", criteria: base, now: 11 * hour,
			devices: fleet(200, func(i int, d *DeviceStatus) {
				if i < 100 {
					installed(d, t0.Add(hour))
					if i < 10 {
						d.Crashes = []Crash{{"sig-known", t0.Add(-time.Hour)}}
					}
				}
			}),
			known:      map[string]bool{"sig-known": true},
			wantAction: ActionContinue,
		},
		{
			name: "crash rate higher but not significantly", criteria: base, now: 11 * hour,
			devices: fleet(200, func(i int, d *DeviceStatus) {
				if i < 100 {
					installed(d, t0.Add(hour))
					if i < 4 {
						d.Crashes = []Crash{{"sig-known", t0.Add(5 * hour)}}
					}
				} else if i < 101 {
					d.Crashes = []Crash{{"sig-known", t0.Add(2 * hour)}}
				}
			}),
			known:      map[string]bool{"sig-known": true},
			wantAction: ActionContinue,
		},
		{
			name: "crash rate too few crashed devices", criteria: base, now: 11 * hour,
			devices: fleet(200, func(i int, d *DeviceStatus) {
				if i < 100 {
					installed(d, t0.Add(hour))
					if i < 2 {
						d.Crashes = make([]Crash, 50)
						for j := range d.Crashes {
							d.Crashes[j] = Crash{"sig-known", t0.Add(2 * hour)}
						}
					}
				}
			}),
			known:      map[string]bool{"sig-known": true},
			wantAction: ActionContinue,
		},
		{
			name: "crash rate without a baseline is not judged", criteria: base, now: 11 * hour,
			devices: fleet(100, func(i int, d *DeviceStatus) {
				installed(d, t0.Add(hour))
				if i < 10 {
					d.Crashes = []Crash{{"sig-known", t0.Add(2 * hour)}}
				}
			}),
			known:      map[string]bool{"sig-known": true},
			wantAction: ActionContinue,
		},
		{
			name: "crash rate against a supplied baseline", criteria: base, now: 11 * hour,
			devices: fleet(100, func(i int, d *DeviceStatus) {
				installed(d, t0.Add(hour))
				if i < 10 {
					d.Crashes = []Crash{{"sig-known", t0.Add(2 * hour)}}
				}
			}),
			known:      map[string]bool{"sig-known": true},
			baseline:   &rate, // 10 crashes / 1000 h = 0.01: ratio 1, under 2
			wantAction: ActionContinue,
		},
		{
			name: "new signature on more than K devices", criteria: base, now: 3 * hour,
			devices: fleet(50, func(i int, d *DeviceStatus) {
				installed(d, t0.Add(hour))
				if i < 4 {
					d.Crashes = []Crash{{"sig-new", t0.Add(2 * hour)}, {"sig-new", t0.Add(2 * hour)}}
				}
			}),
			wantAction: ActionPause,
			want:       []findingKey{{CriterionNewSignature, ActionPause, 4, "sig-new"}},
		},
		{
			name: "new signature on K devices does not trip", criteria: base, now: 3 * hour,
			devices: fleet(50, func(i int, d *DeviceStatus) {
				installed(d, t0.Add(hour))
				if i < 3 {
					d.Crashes = []Crash{{"sig-new", t0.Add(2 * hour)}}
				}
			}),
			wantAction: ActionContinue,
		},
		{
			name: "known signature on many devices does not trip it", criteria: criteria(func(c *Criteria) { c.CrashRate.Action = ActionOff }), now: 3 * hour,
			devices: fleet(50, func(i int, d *DeviceStatus) {
				installed(d, t0.Add(hour))
				if i < 20 {
					d.Crashes = []Crash{{"sig-old", t0.Add(2 * hour)}}
				}
			}),
			known:      map[string]bool{"sig-old": true},
			wantAction: ActionContinue,
		},
		{
			name: "new signature only counts devices on the new release", criteria: base, now: 3 * hour,
			devices: fleet(50, func(i int, d *DeviceStatus) {
				if i < 10 {
					d.Crashes = []Crash{{"sig-new", t0.Add(2 * hour)}}
				}
			}),
			wantAction: ActionContinue,
		},
		{
			name: "several criteria at once, abort wins", criteria: criteria(func(c *Criteria) { c.NewSignature.Action = ActionAbort }), now: 3 * hour,
			devices: fleet(40, func(i int, d *DeviceStatus) {
				if i < 20 {
					failed(d, t0.Add(hour))
				} else {
					installed(d, t0.Add(hour))
					d.Crashes = []Crash{{"sig-b", t0.Add(2 * hour)}, {"sig-a", t0.Add(2 * hour)}}
				}
			}),
			wantAction: ActionAbort,
			want: []findingKey{
				{CriterionInstallFailures, ActionPause, 40, ""},
				{CriterionCrashRate, ActionPause, 20, ""}, // the previous release never crashed
				{CriterionNewSignature, ActionAbort, 20, "sig-a"},
				{CriterionNewSignature, ActionAbort, 20, "sig-b"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := onePhase(t, tt.criteria)
			dec, _ := d.Evaluate(Snapshot{Now: t0.Add(tt.now), Devices: tt.devices, KnownSignatures: tt.known, BaselineCrashRate: tt.baseline})
			if dec.Action != tt.wantAction {
				t.Errorf("Action = %s, want %s (findings %+v)", dec.Action, tt.wantAction, dec.Findings)
			}
			var got []findingKey
			for _, f := range dec.Findings {
				got = append(got, findingKey{f.Criterion, f.Action, f.Sample, f.Signature})
				if f.Reason == "" {
					t.Errorf("finding %s has no reason", f.Criterion)
				}
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("findings (-got +want):\n%s", diff)
			}
		})
	}
}

func TestEvaluateReasons(t *testing.T) {
	d := onePhase(t, DefaultCriteria())
	devs := fleet(100, func(i int, d *DeviceStatus) {
		if i%10 == 0 {
			failed(d, t0.Add(time.Hour))
		} else {
			installed(d, t0.Add(time.Hour))
		}
	})
	dec, tally := d.Evaluate(Snapshot{Now: t0.Add(2 * time.Hour), Devices: devs})
	if got, want := dec.Reason(), "install failures 10 of 100 (10.0%) exceed 5.0%"; got != want {
		t.Errorf("Reason() = %q, want %q", got, want)
	}
	want := Tally{Devices: 100, Offered: 100, Installed: 90, Failed: 10, WindowReported: 100, WindowFailed: 10,
		NewExposureHours: 90, PrevExposureHrs: 20, PerPhase: []PhaseTally{{Devices: 100, Reported: 100}}}
	if diff := cmp.Diff(tally, want); diff != "" {
		t.Errorf("tally (-got +want):\n%s", diff)
	}
}

// TestCountThenDecide checks that the tally alone carries what the decision needs: deciding on a
// tally made by hand gives the findings Evaluate gives for a snapshot with the same counts.
func TestCountThenDecide(t *testing.T) {
	d := onePhase(t, criteria(func(c *Criteria) { c.NewSignature.Action = ActionAbort }))
	devs := fleet(40, func(i int, d *DeviceStatus) {
		if i < 20 {
			failed(d, t0.Add(time.Hour))
		} else {
			installed(d, t0.Add(time.Hour))
			d.Crashes = []Crash{{"sig-b", t0.Add(2 * time.Hour)}, {"sig-known", t0.Add(2 * time.Hour)}}
		}
	})
	snap := Snapshot{Now: t0.Add(3 * time.Hour), Devices: devs, KnownSignatures: map[string]bool{"sig-known": true}}
	tally := d.Count(snap)
	if diff := cmp.Diff(tally.NewSignatures, map[string]int{"sig-b": 20}); diff != "" {
		t.Errorf("NewSignatures (-got +want):\n%s", diff)
	}
	dec, evTally := d.Evaluate(snap)
	if diff := cmp.Diff(evTally, tally); diff != "" {
		t.Errorf("Evaluate's tally differs from Count's (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(d.Criteria.Decide(tally, nil), dec); diff != "" {
		t.Errorf("Decide differs from Evaluate (-got +want):\n%s", diff)
	}

	// A tally made by hand: 6 failures of 100 reported, one signature on 9 devices, no crash
	// exposure on the previous release but a measured baseline.
	hand := Tally{WindowReported: 100, WindowFailed: 6, NewCrashes: 30, NewCrashed: 12, NewExposureHours: 100,
		NewSignatures: map[string]int{"sig-x": 9, "sig-y": 1}}
	c := criteria(func(c *Criteria) { c.NewSignature.Action = ActionAbort })
	base := 0.01
	got := c.Decide(hand, &base)
	var keys []findingKey
	for _, f := range got.Findings {
		keys = append(keys, findingKey{f.Criterion, f.Action, f.Sample, f.Signature})
	}
	want := []findingKey{
		{CriterionInstallFailures, ActionPause, 100, ""},
		{CriterionCrashRate, ActionPause, 12, ""},
		{CriterionNewSignature, ActionAbort, 9, "sig-x"},
	}
	if diff := cmp.Diff(keys, want); diff != "" {
		t.Errorf("Decide findings (-got +want):\n%s", diff)
	}
	if got.Action != ActionAbort {
		t.Errorf("Decide action = %s, want abort", got.Action)
	}
	if got := c.Decide(hand, nil); len(got.Findings) != 2 {
		t.Errorf("without a baseline the crash rate is not judged; findings %+v", got.Findings)
	}
}

func TestCriteriaValidate(t *testing.T) {
	tests := []struct {
		name    string
		mod     func(*Criteria)
		wantErr string
	}{
		{name: "defaults", mod: func(*Criteria) {}},
		{name: "bad action", mod: func(c *Criteria) { c.CrashRate.Action = "explode" }, wantErr: `crash_rate: action "explode" is not off, pause or abort`},
		{name: "share above 1", mod: func(c *Criteria) { c.InstallFailures.MaxShare = 2 }, wantErr: "install_failures: max share 2 is not in [0, 1]"},
		{name: "zero sample", mod: func(c *Criteria) { c.Timeouts.MinSample = 0 }, wantErr: "timeouts: minimum sample 0 is below 1"},
		{name: "short deadline", mod: func(c *Criteria) { c.Timeouts.Deadline = time.Second }, wantErr: "timeouts: deadline 1s is not between 1m"},
		{name: "significance zero", mod: func(c *Criteria) { c.CrashRate.Significance = 0 }, wantErr: "crash_rate: significance 0 is not in (0, 1)"},
		{name: "ratio below 1", mod: func(c *Criteria) { c.CrashRate.MaxRatio = 0.5 }, wantErr: "crash_rate: max ratio 0.5 is below 1"},
		{name: "negative K", mod: func(c *Criteria) { c.NewSignature.MaxDevices = -1 }, wantErr: "new_crash_signature: max devices -1 is negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := criteria(tt.mod).Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrInvalidCriteria) {
				t.Fatalf("Validate error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func BenchmarkEvaluate10k(b *testing.B) {
	d, _, err := New("dep-bench", DefaultPlan(), DefaultCriteria(), false, "op", t0)
	if err != nil {
		b.Fatal(err)
	}
	d.Phase, d.PhasesOpenedAt = 2, []time.Time{t0, t0.Add(time.Hour), t0.Add(2 * time.Hour)}
	devs := fleet(10000, func(i int, d *DeviceStatus) {
		switch {
		case i%50 == 0:
			failed(d, t0.Add(3*time.Hour))
		case i%7 == 0:
		default:
			installed(d, t0.Add(3*time.Hour))
			if i%97 == 0 {
				d.Crashes = []Crash{{fmt.Sprintf("sig-%d", i%5), t0.Add(4 * time.Hour)}}
			}
		}
	})
	snap := Snapshot{Now: t0.Add(5 * time.Hour), Devices: devs, KnownSignatures: map[string]bool{"sig-0": true}}
	b.ReportAllocs()
	for b.Loop() {
		d.Evaluate(snap)
	}
}

func TestPoissonTail(t *testing.T) {
	tests := []struct {
		lambda float64
		k      int
		want   float64
	}{
		{1, 0, 1},
		{0, 1, 0},
		{1, 1, 1 - 0.36787944117144233},
		{0.339, 3, 0.0050464},
		{2, 3, 0.3233236},
		{10, 1000, 0},
	}
	for _, tt := range tests {
		got := PoissonTail(tt.lambda, tt.k)
		if d := got - tt.want; d > 1e-5 || d < -1e-5 {
			t.Errorf("PoissonTail(%v, %d) = %v, want %v", tt.lambda, tt.k, got, tt.want)
		}
	}
}

func TestBinomialTail(t *testing.T) {
	tests := []struct {
		n    int
		p    float64
		k    int
		want float64
	}{
		{10, 0.5, 0, 1},
		{10, 0.5, 11, 0},
		{10, 0, 1, 0},
		{10, 1, 10, 1},
		{8, 0.937, 8, 0.5941},
		{10, 0.5, 8, 0.0546875},
		{3, 0.2, 2, 0.104},
	}
	for _, tt := range tests {
		got := BinomialTail(tt.n, tt.p, tt.k)
		if d := got - tt.want; d > 1e-4 || d < -1e-4 {
			t.Errorf("BinomialTail(%d, %v, %d) = %v, want %v", tt.n, tt.p, tt.k, got, tt.want)
		}
	}
}
