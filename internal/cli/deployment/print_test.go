package deployment

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clienv"
)

// TestPrintDeploymentSections pins the layout of deployment create/show: each section is a table
// of its own, no column is stretched by another section's text and no row is padded with "-".
func TestPrintDeploymentSections(t *testing.T) {
	d := client.Deployment{ID: "dep_1", Seq: 3, Product: "lamp", Group: "Production", Release: "2.0", State: "paused", Phase: 1,
		Reason:          "install failures 50% > 5% of 2 devices",
		CriteriaSummary: "install failures > 5% of ≥20 → pause; silent 24h > 10% of ≥20 → pause",
		Phases:          []client.DeploymentPhase{{Percent: 10, MinSoak: "1h0m0s", Devices: 3, Reported: 2}, {Percent: 100, MinSoak: "1h0m0s"}},
		Progress: &client.DeploymentProgress{Devices: 30, Offered: 3, Installed: 1, Failed: 1, Interrupted: 1, Pending: 1, Decision: "pause",
			Findings: []client.Finding{{Criterion: "install_failures", Action: "pause", Reason: "1 of 2 failed"}}}}
	var out bytes.Buffer
	if err := printDeployment(&clienv.Env{Stdout: &out}, d); err != nil {
		t.Fatal(err)
	}
	want := `ID     SEQ  PRODUCT  GROUP       RELEASE  STATE   PHASE
dep_1  3    lamp     Production  2.0      paused  1/2
reason: install failures 50% > 5% of 2 devices

abort criteria:
  install failures > 5% of ≥20 → pause
  silent 24h > 10% of ≥20 → pause

PHASE  SHARE  SOAK  OPENED  DEVICES  REPORTED
1      10%    1h    -       3        2
2      100%   1h    -       0        0

DEVICES  OFFERED  INSTALLED  FAILED  INTERRUPTED  TIMED OUT  PENDING  CRITERIA SAY
30       3        1          1       1            0          1        pause

FINDING           ACTION  REASON
install_failures  pause   1 of 2 failed
`
	if diff := cmp.Diff(out.String(), want); diff != "" {
		t.Errorf("deployment table (-got +want):\n%s", diff)
	}
}

func TestSoak(t *testing.T) {
	for in, want := range map[string]string{"1h0m0s": "1h", "1h30m0s": "1h30m", "30m0s": "30m", "0s": "0s", "45s": "45s", "720h0m0s": "720h", "2m30s": "2m30s"} {
		if got := soak(in); got != want {
			t.Errorf("soak(%q) = %q, want %q", in, got, want)
		}
	}
}
