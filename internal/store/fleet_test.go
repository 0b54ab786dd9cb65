package store_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rampartsec/rampart/internal/program"
	"github.com/rampartsec/rampart/internal/rollout"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

func sortCounts(cs []store.FleetCount) []store.FleetCount {
	out := slices.Clone(cs)
	slices.SortFunc(out, func(a, b store.FleetCount) int {
		return strings.Compare(a.Tenant+"/"+a.Product+"/"+a.Key, b.Tenant+"/"+b.Product+"/"+b.Key)
	})
	return out
}

// TestFleetState drives a small fleet through the store's own write paths (attestations,
// install reports, a deployment, vulnerability reports and a fix) and checks every aggregate
// FleetState reads back, on both databases.
func TestFleetState(t *testing.T) {
	vulnEach(t, func(t *testing.T, s *store.Store, c *clock) {
		ctx := context.Background()
		w := newWorld(t, s, "acme")
		g, err := s.GroupByName(ctx, w.tenant.ID, "edge-gateway", "Production")
		if err != nil {
			t.Fatal(err)
		}
		insertRelease(t, s, w.tenant.ID, w.product.ID, "26.07.1", "signed", c.Now())
		insertRelease(t, s, w.tenant.ID, w.product.ID, "26.07.2", "signed", c.Now())
		dev := func(n int) string { return fmt.Sprintf("%064x", n) }
		for n := 1; n <= 6; n++ {
			if _, err := storetest.DB(s).Exec(`INSERT INTO devices (id, tenant_id, product_id, group_id, state, attestation, current_release, target_release, created_at, updated_at)
				VALUES ($1, $2, $3, $4, 'claimed', '', '26.07.1', '', 1, 1)`, dev(n), w.tenant.ID, w.product.ID, g.ID); err != nil {
				t.Fatal(err)
			}
		}
		// An enrolled device no tenant has claimed yet.
		if _, err := storetest.DB(s).Exec(`INSERT INTO devices (id, state, attestation, current_release, target_release, created_at, updated_at)
			VALUES ($1, 'enrolled', '', '', '', 1, 1)`, dev(99)); err != nil {
			t.Fatal(err)
		}
		attest := func(n int, tenant, status, granted, rule string) {
			t.Helper()
			if _, err := s.RecordAttestation(ctx, store.AttestationRecord{TenantID: tenant, DeviceID: dev(n), Status: status, Granted: granted, Rule: rule,
				Reasons: []store.AttestationReason{{Code: rule, Detail: "test"}}}); err != nil {
				t.Fatal(err)
			}
		}
		attest(1, w.tenant.ID, "affirming", "normal", "all_known")
		attest(2, w.tenant.ID, "contraindicated", "none", "quote_invalid")
		attest(3, w.tenant.ID, "contraindicated", "none", "quote_invalid")
		attest(99, "", "contraindicated", "none", "nonce_unknown")
		c.Advance(25 * time.Hour) // devices 1-3 were seen more than a day ago
		attest(4, w.tenant.ID, "warning", "normal", "software_attester")

		plan, err := rollout.NewPlan([]float64{50, 100}, time.Hour, rollout.DefaultMinReporting)
		if err != nil {
			t.Fatal(err)
		}
		d, err := s.CreateDeployment(ctx, actor, w.tenant.ID, store.DeploymentSpec{Product: "edge-gateway", Group: "Production",
			Release: "26.07.2", Plan: plan, Criteria: rollout.DefaultCriteria()})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.RecordDeviceRelease(ctx, w.tenant.ID, dev(5), "26.07.2"); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordInstallFailure(ctx, w.tenant.ID, dev(6), "26.07.2", "health check failed: sshd down"); err != nil {
			t.Fatal(err)
		}
		for _, rep := range []store.InstallReport{
			{State: "failed", Release: "26.07.2", Reason: "health check failed: sshd down"},
			{State: "failed", Release: "26.07.2", Reason: "trial slot b booted 3 times without passing its health check"},
			{State: "failed", Release: "26.07.2", Reason: "the flash wore out"},
			{State: "rolled_back", Release: "26.07.2", Reason: "health check failed: exit status 1"},
			{State: "committed", Release: "26.07.2"},
		} {
			rep.At = c.Now()
			if err := s.AddInstallReport(ctx, w.tenant.ID, dev(6), rep, false, true); err != nil {
				t.Fatal(err)
			}
		}

		if _, err := s.SubmitReport(ctx, w.ada, "edge-challenge", submission("Heap overflow")); err != nil {
			t.Fatal(err)
		}
		if _, err := s.TransitionReport(ctx, actor, w.tenant.ID, 1, store.Transition{To: program.StateTriaged}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.LinkFix(ctx, actor, w.tenant.ID, 1, store.Fix{Affected: []string{"26.07.1"}, Fixed: "26.07.2"}); err != nil {
			t.Fatal(err)
		}
		c.Advance(time.Hour)
		submitted := c.Now()
		if _, err := s.SubmitReport(ctx, w.bob, "edge-challenge", submission("Replay")); err != nil {
			t.Fatal(err)
		}
		c.Advance(90 * time.Minute)

		f, err := s.FleetState(ctx)
		if err != nil {
			t.Fatal(err)
		}
		const a, p = "acme", "edge-gateway"
		checks := []struct {
			name      string
			got, want []store.FleetCount
		}{
			{"by attestation", f.DevicesByAttestation, []store.FleetCount{
				{"", "", "contraindicated", 1},
				{a, p, "", 2}, {a, p, "affirming", 1}, {a, p, "contraindicated", 2}, {a, p, "warning", 1}}},
			{"by release", f.DevicesByRelease, []store.FleetCount{{a, p, "26.07.1", 5}, {a, p, "26.07.2", 1}}},
			// Device 4 attested and device 6 reported installs within the day; 1-3 are a day
			// old; 5 was never seen (the release it runs came from the store, not a report).
			{"by online", f.DevicesByOnline, []store.FleetCount{{a, p, "never", 1}, {a, p, "offline", 3}, {a, p, "online", 2}}},
			{"deployments", f.Deployments, []store.FleetCount{{a, p, "active", 1}}},
			{"reports", f.Reports, []store.FleetCount{{a, p, "new", 1}, {a, p, "resolved", 1}}},
			{"refusals", f.Refusals, []store.FleetCount{{"", "", "nonce_unknown", 1}, {a, "", "quote_invalid", 2}}},
			{"install failures", f.InstallFailures, []store.FleetCount{{a, "", "health_check", 2}, {a, "", "other", 1}, {a, "", "trial_boot_limit", 1}}},
		}
		for _, ch := range checks {
			if diff := cmp.Diff(sortCounts(ch.got), ch.want); diff != "" {
				t.Errorf("%s (-got +want):\n%s", ch.name, diff)
			}
		}
		// Every device of the group joined the deployment when it was made, pending; 5 and 6
		// reported. Counted by the phase the plan assigns each.
		type key struct {
			phase   int64
			install string
		}
		count := map[key]int64{}
		for n := 1; n <= 6; n++ {
			install := map[int]string{5: "installed", 6: "failed"}[n]
			if install == "" {
				install = "pending"
			}
			count[key{int64(d.Plan.Assign(d.ID, dev(n))), install}]++
		}
		var phases []store.PhaseCount
		for k, n := range count {
			phases = append(phases, store.PhaseCount{Tenant: a, Product: p, Group: "Production", Deployment: d.Seq, Release: "26.07.2",
				State: "active", Phase: k.phase, Install: k.install, N: n})
		}
		slices.SortFunc(phases, func(x, y store.PhaseCount) int {
			if x.Phase != y.Phase {
				return int(x.Phase - y.Phase)
			}
			return strings.Compare(x.Install, y.Install)
		})
		if diff := cmp.Diff(f.Phases, phases); diff != "" {
			t.Errorf("phases (-got +want):\n%s", diff)
		}
		// The fix reached device 5 only; every other device still runs the affected 26.07.1.
		if diff := cmp.Diff(f.Fixes, []store.FixCoverage{{Tenant: a, Product: p, Report: 1, Fixed: "26.07.2", Covered: 1, Total: 6}}); diff != "" {
			t.Errorf("fixes (-got +want):\n%s", diff)
		}
		if len(f.Clocks) != 1 || !f.Clocks[0].OldestUntriaged.Equal(submitted) || !f.Clocks[0].OldestNoReply.Equal(submitted) {
			t.Errorf("clocks = %+v, want report 2's submission %s for both", f.Clocks, submitted)
		}
		if f.At.Sub(submitted) != 90*time.Minute || len(f.Truncated) != 0 {
			t.Errorf("read at %s (truncated %v), want 90 min after %s and nothing cut", f.At, f.Truncated, submitted)
		}
	})
}
