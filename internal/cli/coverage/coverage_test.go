package coverage

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clienv"
)

// TestPrintCoverage pins the coverage table: times to each milestone, "-" for one not reached,
// no 0s milestones for a version the devices ran before Rampart managed them, and devices that
// never reported a release on a row of their own, never counted as covered; a milestone reached
// within the first second reads "<1s", not an instant "0s".
func TestPrintCoverage(t *testing.T) {
	ms := func(after ...int64) []client.CoverageMilestone {
		var out []client.CoverageMilestone
		for i, th := range []string{"50%", "90%", "99%", "100%"} {
			m := client.CoverageMilestone{Threshold: th}
			if i < len(after) {
				m.Reached, m.After = true, after[i]
			}
			out = append(out, m)
		}
		return out
	}
	cov := client.Coverage{Devices: 30, Newest: "1.0.1", NewestShare: 0.9,
		PerRelease: []client.ReleaseShare{{Release: "1.0.1", Devices: 27, Share: 0.9}, {Release: "1.0.0", Devices: 2, Share: 0.0667},
			{Release: "unknown", Devices: 1, Share: 0.0333}},
		Releases: []client.ReleaseCoverage{{Release: "1.0.1", Milestones: ms(2, 95)}, {Release: "1.0.0", Milestones: ms(0, 3, 3, 3)},
			{Release: "0.9-vendor", Preinstalled: true, Milestones: []client.CoverageMilestone{}}}}
	var out bytes.Buffer
	if err := printCoverage(&clienv.Env{Stdout: &out}, cov); err != nil {
		t.Fatal(err)
	}
	want := `RELEASE     DEVICES  SHARE  50%  90%    99%  100%
1.0.1       27       90.0%  2s   1m35s  -    -
1.0.0       2        6.7%   <1s  3s     3s   3s
0.9-vendor  0        0.0%   -    -      -    -
unknown     1        3.3%   -    -      -    -
0.9-vendor ran on the devices before Rampart managed them: it never spread, so it has no milestones

30 devices; 90.0% run the newest release, 1.0.1
`
	if diff := cmp.Diff(out.String(), want); diff != "" {
		t.Errorf("coverage table (-got +want):\n%s", diff)
	}
}
