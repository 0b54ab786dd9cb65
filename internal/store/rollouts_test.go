package store_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rampartsec/rampart/internal/coverage"
	"github.com/rampartsec/rampart/internal/deviceapi"
	"github.com/rampartsec/rampart/internal/failure"
	"github.com/rampartsec/rampart/internal/rollout"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// testClock is a controllable clock shared by a store and its test.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// eachWithClock runs fn once per database kind with a store on a controllable clock.
func eachWithClock(t *testing.T, fn func(t *testing.T, s *store.Store, clk *testClock)) {
	t.Helper()
	for _, kind := range storetest.Kinds {
		t.Run(kind, func(t *testing.T) {
			clk := &testClock{now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
			fn(t, storetest.OpenWithClock(t, kind, clk.Now), clk)
		})
	}
}

// fleetFixture is a tenant with a product whose "Field Test" group holds devices on 1.0.
type fleetFixture struct {
	tenant  store.Tenant
	product store.Product
	group   store.Group
	devices []string
}

func deviceID(tenant string, i int) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s/%d", tenant, i)))
	return hex.EncodeToString(sum[:])
}

// addDevices claims n devices into the group on the given release, as the claim verb will, with
// their first coverage event.
func addDevices(t *testing.T, s *store.Store, f *fleetFixture, n int, release string) []string {
	t.Helper()
	ctx := context.Background()
	var ids []string
	err := storetest.InTx(ctx, s, func(tx *sql.Tx) error {
		for i := range n {
			id := deviceID(f.tenant.ID, len(f.devices)+i)
			now := s.Now().UnixMicro()
			if _, err := tx.ExecContext(ctx, `INSERT INTO devices (id, tenant_id, product_id, group_id, state, attestation,
				current_release, target_release, created_at, updated_at) VALUES ($1, $2, $3, $4, 'claimed', '', $5, '', $6, $6)`,
				id, f.tenant.ID, f.product.ID, f.group.ID, release, now); err != nil {
				return err
			}
			if err := s.AppendCoverageEvent(ctx, tx, f.tenant.ID, f.product.ID, f.group.ID, id, release); err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	f.devices = append(f.devices, ids...)
	return ids
}

// addRelease records a release of the fixture's product in the given state, as the release
// service does once its images are signed.
func addRelease(t *testing.T, s *store.Store, f *fleetFixture, version, state string) {
	t.Helper()
	if _, err := storetest.DB(s).ExecContext(context.Background(), `INSERT INTO releases (id, tenant_id, product_id, version, state,
		targets_version, revoked_reason, created_at) VALUES ($1, $2, $3, $4, $5, 1, '', $6)`,
		store.NewID("rel"), f.tenant.ID, f.product.ID, version, state, s.Now().UnixMicro()); err != nil {
		t.Fatal(err)
	}
}

func newFleet(t *testing.T, s *store.Store, name string, n int) *fleetFixture {
	t.Helper()
	ctx := context.Background()
	tn := newTenant(t, s, name)
	p, groups, err := s.CreateProduct(ctx, actor, tn.ID, "thermostat", "")
	if err != nil {
		t.Fatal(err)
	}
	f := &fleetFixture{tenant: tn, product: p, group: groups[1]}
	addDevices(t, s, f, n, "1.0")
	for _, v := range []string{"1.0", "1.1", "1.2"} {
		addRelease(t, s, f, v, "signed")
	}
	addRelease(t, s, f, "0.9-draft", "draft")
	addRelease(t, s, f, "0.8", "revoked")
	return f
}

func plan(t *testing.T, phases, soak string) rollout.Plan {
	t.Helper()
	p, err := rollout.ParsePlan(phases, soak)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func auditActions(t *testing.T, s *store.Store, tenantID, prefix string) []string {
	t.Helper()
	recs, _, err := s.ListAudit(context.Background(), tenantID, store.AuditFilter{}, store.Page{Limit: store.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		if strings.HasPrefix(r.Action, prefix) {
			out = append(out, r.Action)
		}
	}
	return out
}

func TestCreateDeployment(t *testing.T) {
	eachWithClock(t, func(t *testing.T, s *store.Store, clk *testClock) {
		ctx := context.Background()
		f := newFleet(t, s, "acme", 20)
		spec := store.DeploymentSpec{Product: "thermostat", Group: "Field Test", Release: "1.1", Plan: plan(t, "10,50,100", "1h"), Criteria: rollout.DefaultCriteria()}
		d, err := s.CreateDeployment(ctx, actor, f.tenant.ID, spec)
		if err != nil {
			t.Fatal(err)
		}
		if d.Seq != 1 || d.PreviousRelease != "1.0" || d.State != rollout.StateActive || d.GroupName != "Field Test" || d.ProductName != "thermostat" {
			t.Errorf("created %+v", d)
		}
		got, err := s.DeploymentByID(ctx, f.tenant.ID, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(got, d); diff != "" {
			t.Errorf("read back (-got +want):\n%s", diff)
		}
		bad := []struct {
			name string
			mod  func(*store.DeploymentSpec)
			want error
		}{
			{"second open deployment in the group", func(*store.DeploymentSpec) {}, store.ErrConflict},
			{"unknown group", func(s *store.DeploymentSpec) { s.Group = "Nope" }, store.ErrNotFound},
			{"unknown product", func(s *store.DeploymentSpec) { s.Product = "toaster" }, store.ErrNotFound},
			{"bad plan", func(s *store.DeploymentSpec) { s.Group, s.Plan = "Production", rollout.Plan{} }, store.ErrInvalid},
			{"bad criteria", func(s *store.DeploymentSpec) { s.Group, s.Criteria = "Production", rollout.Criteria{} }, store.ErrInvalid},
			{"empty release", func(s *store.DeploymentSpec) { s.Group, s.Release = "Production", "" }, store.ErrInvalid},
			{"release with spaces", func(s *store.DeploymentSpec) { s.Group, s.Release = "Production", "1 1" }, store.ErrInvalid},
			{"unknown release", func(s *store.DeploymentSpec) { s.Group, s.Release = "Production", "7.7" }, store.ErrNotFound},
			{"draft release", func(s *store.DeploymentSpec) { s.Group, s.Release = "Production", "0.9-draft" }, store.ErrConflict},
			{"revoked release", func(s *store.DeploymentSpec) { s.Group, s.Release = "Production", "0.8" }, store.ErrConflict},
		}
		for _, b := range bad {
			sp := spec
			b.mod(&sp)
			if _, err := s.CreateDeployment(ctx, actor, f.tenant.ID, sp); !errors.Is(err, b.want) {
				t.Errorf("%s: %v, want %v", b.name, err, b.want)
			}
		}
		// Another tenant sees nothing and cannot deploy into this tenant's group.
		other := newTenant(t, s, "globex")
		if _, err := s.DeploymentByID(ctx, other.ID, d.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("other tenant reads the deployment: %v", err)
		}
		if _, err := s.CreateDeployment(ctx, actor, other.ID, spec); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("other tenant deploys to the group: %v", err)
		}
		if _, err := s.PauseDeployment(ctx, actor, other.ID, d.ID, ""); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("other tenant pauses the deployment: %v", err)
		}
		if diff := cmp.Diff(auditActions(t, s, f.tenant.ID, "deployment."), []string{"deployment.create"}); diff != "" {
			t.Errorf("failed creations left audit records (-got +want):\n%s", diff)
		}
		// Sequence numbers grow per tenant.
		sp := spec
		sp.Group = "Production"
		d2, err := s.CreateDeployment(ctx, actor, f.tenant.ID, sp)
		if err != nil || d2.Seq != 2 {
			t.Fatalf("second deployment: seq %d, %v", d2.Seq, err)
		}
		list, _, err := s.ListDeployments(ctx, f.tenant.ID, store.DeploymentFilter{Group: "Production"}, store.Page{})
		if err != nil || len(list) != 1 || list[0].ID != d2.ID {
			t.Errorf("ListDeployments by group = %v, %v", list, err)
		}
		if list, _, _ := s.ListDeployments(ctx, other.ID, store.DeploymentFilter{}, store.Page{}); len(list) != 0 {
			t.Errorf("other tenant lists %d deployments", len(list))
		}
	})
}

func TestDeploymentOperatorTransitions(t *testing.T) {
	eachWithClock(t, func(t *testing.T, s *store.Store, clk *testClock) {
		ctx := context.Background()
		f := newFleet(t, s, "acme", 5)
		d, err := s.CreateDeployment(ctx, actor, f.tenant.ID, store.DeploymentSpec{Product: "thermostat", Group: "Field Test", Release: "1.1",
			Plan: rollout.DefaultPlan(), Criteria: rollout.DefaultCriteria()})
		if err != nil {
			t.Fatal(err)
		}
		steps := []struct {
			name  string
			op    func(context.Context, store.Actor, string, string, string) (store.Deployment, error)
			want  rollout.State
			isErr error
		}{
			{"resume active", s.ResumeDeployment, rollout.StateActive, store.ErrConflict},
			{"pause", s.PauseDeployment, rollout.StatePaused, nil},
			{"pause again", s.PauseDeployment, rollout.StatePaused, store.ErrConflict},
			{"resume", s.ResumeDeployment, rollout.StateActive, nil},
			{"abort", s.AbortDeployment, rollout.StateAborted, nil},
			{"abort again", s.AbortDeployment, rollout.StateAborted, store.ErrConflict},
		}
		for _, st := range steps {
			clk.Advance(time.Minute)
			got, err := st.op(ctx, actor, f.tenant.ID, d.ID, "because "+st.name)
			if !errors.Is(err, st.isErr) {
				t.Fatalf("%s: %v, want %v", st.name, err, st.isErr)
			}
			cur, _ := s.DeploymentByID(ctx, f.tenant.ID, d.ID)
			if cur.State != st.want {
				t.Fatalf("%s: state %s, want %s", st.name, cur.State, st.want)
			}
			if err == nil && got.Reason != "because "+st.name {
				t.Errorf("%s: reason %q", st.name, got.Reason)
			}
		}
		if _, err := s.PauseDeployment(ctx, actor, f.tenant.ID, "dep_nope", ""); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("unknown deployment: %v", err)
		}
		want := []string{"deployment.create", "deployment.pause", "deployment.resume", "deployment.abort"}
		if diff := cmp.Diff(auditActions(t, s, f.tenant.ID, "deployment."), want); diff != "" {
			t.Errorf("audit (-got +want):\n%s", diff)
		}
		// After the abort the group is free for a new deployment (a rollback is one).
		if _, err := s.CreateDeployment(ctx, actor, f.tenant.ID, store.DeploymentSpec{Product: "thermostat", Group: "Field Test", Release: "1.0",
			Plan: rollout.DefaultPlan(), Criteria: rollout.DefaultCriteria()}); err != nil {
			t.Errorf("rollback deployment: %v", err)
		}
		if _, err := s.VerifyAudit(ctx, f.tenant.ID); err != nil {
			t.Errorf("audit chain: %v", err)
		}
	})
}

// installOffered makes every device that the deployment offers the release report it.
func installOffered(t *testing.T, s *store.Store, f *fleetFixture, release string) int {
	t.Helper()
	n := 0
	for _, id := range f.devices {
		off, err := s.OfferForDevice(context.Background(), f.tenant.ID, id)
		if err != nil {
			t.Fatal(err)
		}
		if off.Offered {
			if err := s.RecordDeviceRelease(context.Background(), f.tenant.ID, id, release); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	return n
}

func TestStepDeploymentThroughPhases(t *testing.T) {
	eachWithClock(t, func(t *testing.T, s *store.Store, clk *testClock) {
		ctx := context.Background()
		f := newFleet(t, s, "acme", 60)
		start := clk.Now()
		d, err := s.CreateDeployment(ctx, actor, f.tenant.ID, store.DeploymentSpec{Product: "thermostat", Group: "Field Test", Release: "1.1",
			Plan: plan(t, "10,50,100", "1h"), Criteria: rollout.DefaultCriteria()})
		if err != nil {
			t.Fatal(err)
		}
		var phasesSeen []int
		var late []string
		for round := 0; round < 20; round++ {
			installOffered(t, s, f, "1.1")
			clk.Advance(30 * time.Minute)
			st, err := s.StepDeployment(ctx, f.tenant.ID, d.ID)
			if err != nil {
				t.Fatal(err)
			}
			if st.Deployment.State != rollout.StateActive {
				if st.Deployment.State != rollout.StateCompleted {
					t.Fatalf("state %s: %s", st.Deployment.State, st.Deployment.Reason)
				}
				break
			}
			if len(st.Events) > 0 {
				phasesSeen = append(phasesSeen, st.Deployment.Phase)
				if st.Deployment.Phase == 1 && late == nil {
					late = addDevices(t, s, f, 10, "1.0") // joiners after phase 2 opened
				}
			}
		}
		final, err := s.DeploymentStatus(ctx, f.tenant.ID, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if final.Deployment.State != rollout.StateCompleted {
			t.Fatalf("deployment %s after 20 rounds (phases %v)", final.Deployment.State, phasesSeen)
		}
		if diff := cmp.Diff(phasesSeen, []int{1, 2}); diff != "" {
			t.Errorf("phases opened (-got +want):\n%s", diff)
		}
		if final.Tally.Installed != 70 || final.Tally.Devices != 70 {
			t.Errorf("tally %+v, want all 70 devices installed, late joiners included", final.Tally)
		}
		for _, id := range late {
			dev, err := s.DeviceByID(ctx, f.tenant.ID, id)
			if err != nil || dev.CurrentRelease != "1.1" {
				t.Errorf("late joiner %s runs %q (%v)", id[:8], dev.CurrentRelease, err)
			}
		}
		want := []string{"deployment.create", "deployment.advance", "deployment.advance", "deployment.complete"}
		if diff := cmp.Diff(auditActions(t, s, f.tenant.ID, "deployment."), want); diff != "" {
			t.Errorf("audit (-got +want):\n%s", diff)
		}
		// Coverage of 1.1 reached 100 %, and the history reads back.
		rep, err := s.Coverage(ctx, f.tenant.ID, "thermostat", "Field Test")
		if err != nil {
			t.Fatal(err)
		}
		// The product's newest release is 1.2 (signed, never deployed): nobody runs it yet.
		if rep.Now.Devices != 70 || rep.Now.Newest != "1.2" || rep.Now.NewestShare != 0 ||
			!cmp.Equal(rep.Now.PerRelease, []coverage.ReleaseCount{{Release: "1.1", Devices: 70, Share: 1}}) {
			t.Errorf("coverage now %+v", rep.Now)
		}
		var order []string
		for _, r := range rep.Releases {
			order = append(order, r.Release)
		}
		// Newest first: the signed and revoked releases in creation order; drafts are left out.
		if diff := cmp.Diff(order, []string{"1.2", "1.1", "1.0", "0.8"}); diff != "" || !rep.Releases[1].Since.Equal(start) {
			t.Fatalf("releases (-got +want):\n%s\nsince %v", diff, rep.Releases[1].Since)
		}
		rep.Releases = rep.Releases[1:]
		for _, m := range rep.Releases[0].Milestones {
			if !m.Reached || m.After <= 0 {
				t.Errorf("milestone %v not reached after the start: %+v", m.Threshold, m)
			}
		}
		// 100 % needs the last phase, which opens after two soaks of an hour.
		if ms := rep.Releases[0].Milestones; ms[0].At.After(ms[3].At) || ms[3].After < 2*time.Hour {
			t.Errorf("50 %% at %v, 100 %% at %v (%v after the start)", ms[0].At, ms[3].At, ms[3].After)
		}
	})
}

func TestStepDeploymentPausesOnInstallFailures(t *testing.T) {
	eachWithClock(t, func(t *testing.T, s *store.Store, clk *testClock) {
		ctx := context.Background()
		f := newFleet(t, s, "acme", 40)
		d, err := s.CreateDeployment(ctx, actor, f.tenant.ID, store.DeploymentSpec{Product: "thermostat", Group: "Field Test", Release: "1.1",
			Emergency: true, Criteria: rollout.DefaultCriteria()})
		if err != nil {
			t.Fatal(err)
		}
		if d.Plan.String() != "100" {
			t.Errorf("emergency plan %s", d.Plan)
		}
		for i, id := range f.devices {
			var err error
			if i%4 == 0 {
				err = s.RecordInstallFailure(ctx, f.tenant.ID, id, "1.1", "slot B write failed: no space left")
			} else {
				err = s.RecordDeviceRelease(ctx, f.tenant.ID, id, "1.1")
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := s.RecordInstallFailure(ctx, f.tenant.ID, f.devices[1], "9.9", ""); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("failure for a release not being deployed: %v", err)
		}
		clk.Advance(time.Minute)
		st, err := s.StepDeployment(ctx, f.tenant.ID, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if st.Deployment.State != rollout.StatePaused || len(st.Decision.Findings) != 1 || st.Decision.Findings[0].Criterion != rollout.CriterionInstallFailures {
			t.Fatalf("state %s decision %+v", st.Deployment.State, st.Decision)
		}
		if st.Tally.Failed != 10 || st.Tally.Installed != 30 {
			t.Errorf("tally %+v", st.Tally)
		}
		recs, _, err := s.ListAudit(ctx, f.tenant.ID, store.AuditFilter{Action: "deployment.pause"}, store.Page{})
		if err != nil || len(recs) != 1 {
			t.Fatalf("pause audit %v %v", recs, err)
		}
		if !strings.Contains(recs[0].Details, "install failures 10 of 40") || recs[0].Actor != string(store.System) {
			t.Errorf("pause audit record %+v", recs[0])
		}
	})
}

func crashReport(id, sig string, at time.Time) deviceapi.CrashReport {
	return deviceapi.CrashReport{ID: id, Program: "/usr/bin/sensord", Component: "sensord", Version: "1.1", Signal: 11,
		Frames: []string{sig, "poll_loop", "main"}, Time: at}
}

func TestFailureReports(t *testing.T) {
	eachWithClock(t, func(t *testing.T, s *store.Store, clk *testClock) {
		ctx := context.Background()
		a := newFleet(t, s, "acme", 3)
		b := newFleet(t, s, "globex", 3)
		at := clk.Now().Add(-time.Minute)
		in, err := s.AddFailureReports(ctx, a.tenant.ID, a.devices[0], []deviceapi.CrashReport{
			crashReport("r1", "sensor_read", at), crashReport("r2", "sensor_read", at), crashReport("r3", "sensor_write", at)})
		if err != nil {
			t.Fatal(err)
		}
		if in.Accepted != 3 || len(in.NewGroups) != 2 {
			t.Fatalf("ingest %+v", in)
		}
		// The same batch again (the agent restarted before the acknowledgement).
		in, err = s.AddFailureReports(ctx, a.tenant.ID, a.devices[0], []deviceapi.CrashReport{crashReport("r1", "sensor_read", at)})
		if err != nil || in.Duplicates != 1 || in.Accepted != 0 {
			t.Fatalf("resent batch: %+v, %v", in, err)
		}
		// The same signature from another device joins the group.
		if _, err := s.AddFailureReports(ctx, a.tenant.ID, a.devices[1], []deviceapi.CrashReport{crashReport("r1", "sensor_read", at)}); err != nil {
			t.Fatal(err)
		}
		// Tenant isolation: B's device cannot report into A, and its own report lands in B only.
		if _, err := s.AddFailureReports(ctx, a.tenant.ID, b.devices[0], []deviceapi.CrashReport{crashReport("x", "sensor_read", at)}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("foreign device accepted: %v", err)
		}
		if _, err := s.AddFailureReports(ctx, a.tenant.ID, "00ff", []deviceapi.CrashReport{crashReport("x", "sensor_read", at)}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("unknown device accepted: %v", err)
		}
		if _, err := s.AddFailureReports(ctx, b.tenant.ID, b.devices[0], []deviceapi.CrashReport{crashReport("r1", "sensor_read", at)}); err != nil {
			t.Fatal(err)
		}
		bad := crashReport("bad", "x", at)
		bad.Program = ""
		if _, err := s.AddFailureReports(ctx, a.tenant.ID, a.devices[0], []deviceapi.CrashReport{crashReport("ok", "y", at), bad}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("invalid report accepted: %v", err)
		}
		groups, _, err := s.ListFailureGroups(ctx, a.tenant.ID, store.FailureFilter{Product: "thermostat"}, store.Page{})
		if err != nil || len(groups) != 2 {
			t.Fatalf("groups of A: %d, %v (the rejected batch must add nothing)", len(groups), err)
		}
		bGroups, _, _ := s.ListFailureGroups(ctx, b.tenant.ID, store.FailureFilter{}, store.Page{})
		if len(bGroups) != 1 || bGroups[0].Count != 1 {
			t.Fatalf("groups of B: %+v", bGroups)
		}
		if _, err := s.FailureGroupByID(ctx, b.tenant.ID, groups[0].ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("B reads A's group: %v", err)
		}
		var readGroup store.FailureGroup
		for _, g := range groups {
			if g.Fault.Frames[0] == "sensor_read" {
				readGroup = g
			}
		}
		det, err := s.FailureGroupByID(ctx, a.tenant.ID, readGroup.ID)
		if err != nil {
			t.Fatal(err)
		}
		if det.Count != 3 || det.Devices != 2 || det.FirstRelease != "1.0" || !det.NewIn("1.0") || det.Sample.Program != "/usr/bin/sensord" {
			t.Errorf("group detail %+v", det)
		}
		if diff := cmp.Diff(det.Counts, []store.FailureCount{{Release: "1.0", Phase: 0, Reports: 3}}); diff != "" {
			t.Errorf("counts (-got +want):\n%s", diff)
		}
		// Resolve, then the crash comes back on a new release: regressed.
		if _, err := s.ResolveFailureGroup(ctx, actor, a.tenant.ID, readGroup.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ResolveFailureGroup(ctx, actor, a.tenant.ID, readGroup.ID); !errors.Is(err, store.ErrConflict) {
			t.Errorf("second resolve: %v", err)
		}
		clk.Advance(time.Hour)
		if err := s.RecordDeviceRelease(ctx, a.tenant.ID, a.devices[2], "1.2"); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Minute)
		in, err = s.AddFailureReports(ctx, a.tenant.ID, a.devices[2], []deviceapi.CrashReport{crashReport("r9", "sensor_read", clk.Now())})
		if err != nil || len(in.Regressed) != 1 || in.Regressed[0] != readGroup.ID {
			t.Fatalf("regression ingest %+v, %v", in, err)
		}
		det, _ = s.FailureGroupByID(ctx, a.tenant.ID, readGroup.ID)
		if det.Status != failure.GroupOpen || det.RegressedIn != "1.2" {
			t.Errorf("after regression: %+v", det.Group)
		}
		onNew, _, _ := s.ListFailureGroups(ctx, a.tenant.ID, store.FailureFilter{Release: "1.2"}, store.Page{})
		if len(onNew) != 1 || onNew[0].ID != readGroup.ID {
			t.Errorf("groups on 1.2: %+v", onNew)
		}
		want := []string{"failure_group.create", "failure_group.create", "failure_group.resolve", "failure_group.regress"}
		if diff := cmp.Diff(auditActions(t, s, a.tenant.ID, "failure_group."), want); diff != "" {
			t.Errorf("audit (-got +want):\n%s", diff)
		}
	})
}

func TestCrashesPauseDeploymentBeforeNextPhase(t *testing.T) {
	eachWithClock(t, func(t *testing.T, s *store.Store, clk *testClock) {
		ctx := context.Background()
		f := newFleet(t, s, "acme", 200)
		// A crash the old release already has is known, not new.
		if _, err := s.AddFailureReports(ctx, f.tenant.ID, f.devices[0], []deviceapi.CrashReport{crashReport("old", "known_bug", clk.Now())}); err != nil {
			t.Fatal(err)
		}
		d, err := s.CreateDeployment(ctx, actor, f.tenant.ID, store.DeploymentSpec{Product: "thermostat", Group: "Field Test", Release: "1.1",
			Plan: plan(t, "10,50,100", "1h"), Criteria: rollout.DefaultCriteria()})
		if err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Minute)
		n := installOffered(t, s, f, "1.1")
		clk.Advance(10 * time.Minute)
		crashed := 0
		for _, id := range f.devices {
			dev, _ := s.DeviceByID(ctx, f.tenant.ID, id)
			if dev.CurrentRelease != "1.1" || crashed == 5 {
				continue
			}
			if _, err := s.AddFailureReports(ctx, f.tenant.ID, id, []deviceapi.CrashReport{crashReport("c1", "new_bug", clk.Now()), crashReport("c2", "known_bug", clk.Now())}); err != nil {
				t.Fatal(err)
			}
			crashed++
		}
		if crashed < 5 {
			t.Fatalf("only %d of %d offered devices to crash", crashed, n)
		}
		st, err := s.StepDeployment(ctx, f.tenant.ID, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if st.Deployment.State != rollout.StatePaused || st.Deployment.Phase != 0 {
			t.Fatalf("state %s phase %d, want paused in phase 1; decision %+v", st.Deployment.State, st.Deployment.Phase, st.Decision)
		}
		var crits []rollout.Criterion
		for _, fd := range st.Decision.Findings {
			crits = append(crits, fd.Criterion)
			if fd.Criterion == rollout.CriterionNewSignature && fd.Sample != 5 {
				t.Errorf("new signature on %d devices, want 5", fd.Sample)
			}
		}
		if !cmp.Equal(crits, []rollout.Criterion{rollout.CriterionNewSignature}) {
			t.Errorf("criteria crossed %v, want the new signature only (the known one must not count)", crits)
		}
		// The crash group shows its counts per release and phase.
		groups, _, _ := s.ListFailureGroups(ctx, f.tenant.ID, store.FailureFilter{Release: "1.1"}, store.Page{})
		for _, g := range groups {
			det, err := s.FailureGroupByID(ctx, f.tenant.ID, g.ID)
			if err != nil {
				t.Fatal(err)
			}
			if g.Fault.Frames[0] == "new_bug" {
				want := []store.FailureCount{{Release: "1.1", DeploymentID: d.ID, Phase: 1, Reports: 5}}
				if diff := cmp.Diff(det.Counts, want); diff != "" || !det.NewIn("1.1") {
					t.Errorf("new_bug counts (-got +want):\n%s", diff)
				}
			}
		}
		// Nothing was offered beyond the first phase while paused.
		off, err := s.OfferForDevice(ctx, f.tenant.ID, f.devices[len(f.devices)-1])
		if err != nil || off.Offered {
			t.Errorf("paused deployment offers: %+v %v", off, err)
		}
	})
}

func TestConcurrentDeployments(t *testing.T) {
	eachWithClock(t, func(t *testing.T, s *store.Store, clk *testClock) {
		ctx := context.Background()
		f := newFleet(t, s, "acme", 3)
		if _, err := s.CreateGroup(ctx, actor, f.tenant.ID, "thermostat", "Canary", ""); err != nil {
			t.Fatal(err)
		}
		groups := []string{"Development", "Field Test", "Production", "Canary", "Field Test", "Field Test"}
		var wg sync.WaitGroup
		var mu sync.Mutex
		seqs := map[int64]bool{}
		conflicts := 0
		for _, g := range groups {
			wg.Go(func() {
				d, err := s.CreateDeployment(ctx, actor, f.tenant.ID, store.DeploymentSpec{Product: "thermostat", Group: g, Release: "1.1",
					Plan: rollout.DefaultPlan(), Criteria: rollout.DefaultCriteria()})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case errors.Is(err, store.ErrConflict):
					conflicts++
				case err != nil:
					t.Errorf("create in %s: %v", g, err)
				default:
					seqs[d.Seq] = true
				}
			})
		}
		wg.Wait()
		if conflicts != 2 || len(seqs) != 4 || !seqs[1] || !seqs[4] {
			t.Errorf("seqs %v, %d conflicts; want 1..4 and two conflicts in Field Test", seqs, conflicts)
		}
		if _, err := s.VerifyAudit(ctx, f.tenant.ID); err != nil {
			t.Errorf("audit chain: %v", err)
		}
	})
}

func TestClaimJoinsCoverage(t *testing.T) {
	eachWithClock(t, func(t *testing.T, s *store.Store, clk *testClock) {
		ctx := context.Background()
		f := newFleet(t, s, "acme", 3)
		id := deviceID("enrolled", 1)
		if _, err := storetest.DB(s).ExecContext(ctx, `INSERT INTO devices (id, state, attestation, current_release, target_release, created_at, updated_at)
			VALUES ($1, $2, '', '', '', 1, 1)`, id, store.DeviceEnrolled); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Minute)
		if _, err := s.ClaimDevice(ctx, actor, f.tenant.ID, id, "thermostat", "Field Test"); err != nil {
			t.Fatal(err)
		}
		rep, err := s.Coverage(ctx, f.tenant.ID, "thermostat", "Field Test")
		if err != nil {
			t.Fatal(err)
		}
		want := []coverage.ReleaseCount{{Release: "1.0", Devices: 3, Share: 0.75}, {Release: store.UnknownRelease, Devices: 1, Share: 0.25}}
		if diff := cmp.Diff(rep.Now.PerRelease, want); diff != "" || rep.Now.Devices != 4 {
			t.Errorf("coverage after a claim (-got +want):\n%s", diff)
		}
	})
}

// TestOfferCache shows that a group's cached deployment never hides a change made through the
// store, and that a change written by another replica (straight to the database here) is seen
// once store.OfferTTL has passed.
func TestOfferCache(t *testing.T) {
	eachWithClock(t, func(t *testing.T, s *store.Store, clk *testClock) {
		ctx := context.Background()
		f := newFleet(t, s, "acme", 4)
		id := f.devices[0]
		if _, err := s.OfferForDevice(ctx, f.tenant.ID, id); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("before any deployment: %v, want ErrNotFound", err)
		}
		d, err := s.CreateDeployment(ctx, actor, f.tenant.ID, store.DeploymentSpec{Product: "thermostat", Group: "Field Test", Release: "1.1",
			Plan: plan(t, "100", "1h"), Criteria: rollout.DefaultCriteria()})
		if err != nil {
			t.Fatal(err)
		}
		offered := func() bool {
			t.Helper()
			off, err := s.OfferForDevice(ctx, f.tenant.ID, id)
			if err != nil {
				t.Fatal(err)
			}
			return off.Offered
		}
		if !offered() {
			t.Fatal("the new deployment is not offered")
		}
		if _, err := s.PauseDeployment(ctx, actor, f.tenant.ID, d.ID, "hold"); err != nil {
			t.Fatal(err)
		}
		if offered() {
			t.Fatal("a paused deployment is still offered: the cache hid the pause")
		}
		if _, err := s.ResumeDeployment(ctx, actor, f.tenant.ID, d.ID, "go"); err != nil {
			t.Fatal(err)
		}
		if !offered() {
			t.Fatal("the resumed deployment is not offered")
		}
		// Another replica pauses it: this store learns it within the TTL.
		if _, err := storetest.DB(s).ExecContext(ctx, `UPDATE deployments SET state = 'paused' WHERE id = $1`, d.ID); err != nil {
			t.Fatal(err)
		}
		clk.Advance(store.OfferTTL)
		if offered() {
			t.Fatal("a deployment paused by another replica is still offered after the TTL")
		}
		// A tenant never sees another tenant's deployment through the cache.
		other := newFleet(t, s, "globex", 1)
		if _, err := s.OfferForGroup(ctx, other.tenant.ID, d.GroupID, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("another tenant asking for this group's offer: %v, want ErrNotFound", err)
		}
		if _, err := s.OfferForDevice(ctx, f.tenant.ID, id); err != nil {
			t.Errorf("the owning tenant lost its group's deployment after another tenant asked: %v", err)
		}
	})
}

// TestMoveDevice moves a claimed device between groups: its coverage and its deployment follow
// it, moving it where it is changes nothing, and bad moves are refused without a write.
func TestMoveDevice(t *testing.T) {
	eachWithClock(t, func(t *testing.T, s *store.Store, clk *testClock) {
		ctx := context.Background()
		f := newFleet(t, s, "acme", 3)
		other := newFleet(t, s, "globex", 1)
		id := f.devices[0]
		clk.Advance(time.Minute)
		d, err := s.MoveDevice(ctx, actor, f.tenant.ID, id, "Production")
		if err != nil {
			t.Fatal(err)
		}
		if d.GroupName != "Production" || d.ProductName != "thermostat" {
			t.Errorf("moved device %+v", d)
		}
		clk.Advance(time.Second) // the move's two coverage events are a microsecond apart
		for group, want := range map[string]int{"Field Test": 2, "Production": 1} {
			rep, err := s.Coverage(ctx, f.tenant.ID, "thermostat", group)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Now.Devices != want || rep.Now.PerRelease[0].Release != "1.0" {
				t.Errorf("coverage of %s after the move: %+v, want %d devices on 1.0", group, rep.Now, want)
			}
		}
		if _, err := s.CreateDeployment(ctx, actor, f.tenant.ID, store.DeploymentSpec{Product: "thermostat", Group: "Production", Release: "1.1",
			Plan: plan(t, "100", "1h"), Criteria: rollout.DefaultCriteria()}); err != nil {
			t.Fatal(err)
		}
		if off, err := s.OfferForDevice(ctx, f.tenant.ID, id); err != nil || !off.Offered {
			t.Errorf("the new group's deployment to the moved device: %+v, %v", off, err)
		}
		if _, err := s.OfferForDevice(ctx, f.tenant.ID, f.devices[1]); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a device left in Field Test: %v, want no deployment", err)
		}

		before := auditActions(t, s, f.tenant.ID, "device.")
		if _, err := s.MoveDevice(ctx, actor, f.tenant.ID, id, "Production"); err != nil {
			t.Errorf("moving a device to its own group: %v", err)
		}
		for _, bad := range []struct{ tenant, device, group string }{
			{f.tenant.ID, id, "Nowhere"},
			{f.tenant.ID, deviceID("acme", 99), "Production"},
			{other.tenant.ID, id, "Production"},
		} {
			if _, err := s.MoveDevice(ctx, actor, bad.tenant, bad.device, bad.group); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("move %+v: %v, want ErrNotFound", bad, err)
			}
		}
		if diff := cmp.Diff(auditActions(t, s, f.tenant.ID, "device."), before); diff != "" {
			t.Errorf("a move that changed nothing was audited (-got +want):\n%s", diff)
		}
		if got := before; len(got) != 1 || got[0] != "device.move" {
			t.Errorf("device audit records %v, want one device.move", got)
		}
	})
}

// TestListenDeployments runs two stores on one PostgreSQL schema, as two replicas: each hears
// the deployments the other writes (create, pause, resume) at commit and not its own, and drops
// its cached offer when it hears one, without waiting for OfferTTL. SQLite has nothing to hear.
func TestListenDeployments(t *testing.T) {
	ctx := context.Background()
	t.Run("sqlite", func(t *testing.T) {
		s := storetest.Open(t, "sqlite")
		done := make(chan struct{})
		go func() {
			s.ListenDeployments(ctx, store.DeploymentListener{Changed: func(store.DeploymentChange) { t.Error("SQLite heard a change") }})
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("ListenDeployments on SQLite did not return")
		}
	})
	t.Run("postgres", func(t *testing.T) {
		url := storetest.PostgresURL(t)
		open := func() *store.Store {
			s, err := store.Open(ctx, store.Config{Database: url})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}
		a, b := open(), open()
		heard := map[*store.Store]chan store.DeploymentChange{a: make(chan store.DeploymentChange, 10), b: make(chan store.DeploymentChange, 10)}
		lctx, cancel := context.WithCancel(ctx)
		var stopped sync.WaitGroup
		t.Cleanup(func() { cancel(); stopped.Wait() })
		for s, ch := range heard {
			listening := make(chan struct{}, 1)
			stopped.Go(func() {
				s.ListenDeployments(lctx, store.DeploymentListener{
					Changed:   func(c store.DeploymentChange) { ch <- c },
					Listening: func() { listening <- struct{}{} },
					Lost:      func(err error) { t.Errorf("listener lost its connection: %v", err) },
				})
			})
			select {
			case <-listening:
			case <-time.After(10 * time.Second):
				t.Fatal("the listener did not listen within 10 s")
			}
		}
		expect := func(s *store.Store, want store.DeploymentChange) {
			t.Helper()
			select {
			case c := <-heard[s]:
				if c != want {
					t.Errorf("heard %+v, want %+v", c, want)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("did not hear %+v within 10 s", want)
			}
		}
		silent := func(s *store.Store) {
			t.Helper()
			select {
			case c := <-heard[s]:
				t.Errorf("heard its own write %+v", c)
			case <-time.After(300 * time.Millisecond):
			}
		}

		f := newFleet(t, a, "acme", 2)
		// b has cached that nothing governs the group.
		if _, err := b.OfferForDevice(ctx, f.tenant.ID, f.devices[0]); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("before any deployment: %v, want ErrNotFound", err)
		}
		d, err := a.CreateDeployment(ctx, actor, f.tenant.ID, store.DeploymentSpec{Product: "thermostat", Group: "Field Test", Release: "1.1",
			Plan: plan(t, "100", "1h"), Criteria: rollout.DefaultCriteria()})
		if err != nil {
			t.Fatal(err)
		}
		change := store.DeploymentChange{TenantID: f.tenant.ID, DeploymentID: d.ID}
		expect(b, change)
		silent(a)
		if off, err := b.OfferForDevice(ctx, f.tenant.ID, f.devices[0]); err != nil || !off.Offered {
			t.Errorf("b right after hearing the deployment: %+v, %v; want it offered (the cache dropped)", off, err)
		}
		if _, err := b.PauseDeployment(ctx, actor, f.tenant.ID, d.ID, "hold"); err != nil {
			t.Fatal(err)
		}
		expect(a, change)
		silent(b)
		if _, err := a.ResumeDeployment(ctx, actor, f.tenant.ID, d.ID, "go"); err != nil {
			t.Fatal(err)
		}
		expect(b, change)
		// A write refused before it commits tells nobody.
		if _, err := a.PauseDeployment(ctx, actor, f.tenant.ID, "dep_missing", "hold"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("pausing a missing deployment: %v, want ErrNotFound", err)
		}
		silent(b)
	})
}

// TestGroupDeviceIDs lists a group's devices for a deployment's wake-up, and nothing of a group
// asked for under another tenant.
func TestGroupDeviceIDs(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := newFleet(t, s, "acme", 3)
		other := newFleet(t, s, "globex", 2)
		ids, err := s.GroupDeviceIDs(ctx, f.tenant.ID, f.group.ID)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(ids)
		want := slices.Sorted(slices.Values(f.devices))
		if !slices.Equal(ids, want) {
			t.Errorf("group devices %v, want %v", ids, want)
		}
		if ids, err := s.GroupDeviceIDs(ctx, other.tenant.ID, f.group.ID); err != nil || len(ids) != 0 {
			t.Errorf("another tenant asking for the group: %v, %v; want none", ids, err)
		}
	})
}

// TestCoveragePreinstalledHasNoMilestones: a version the devices ran before Rampart managed them
// (no release names it) never spread; it must not read as reaching 100 % in 0 s.
func TestCoveragePreinstalledHasNoMilestones(t *testing.T) {
	eachWithClock(t, func(t *testing.T, s *store.Store, clk *testClock) {
		ctx := context.Background()
		f := newFleet(t, s, "acme", 0)
		addDevices(t, s, f, 3, "factory-7")
		clk.Advance(time.Minute)
		rep, err := s.Coverage(ctx, f.tenant.ID, "thermostat", "Field Test")
		if err != nil {
			t.Fatal(err)
		}
		seen := false
		for _, r := range rep.Releases {
			switch r.Release {
			case "factory-7":
				seen = true
				if !r.Preinstalled || len(r.Milestones) != 0 {
					t.Errorf("factory-7: preinstalled %v, milestones %+v; want preinstalled and none", r.Preinstalled, r.Milestones)
				}
			default:
				if r.Preinstalled || len(r.Milestones) != 4 {
					t.Errorf("release %s: preinstalled %v, %d milestones", r.Release, r.Preinstalled, len(r.Milestones))
				}
			}
		}
		if !seen {
			t.Fatalf("factory-7 missing from %+v", rep.Releases)
		}
	})
}

// TestDeploymentPhaseSharesRoundUp: a 20 % phase of 30 devices offers the release to exactly 6
// of them (the share rounded up to a whole device), not to however many hashes fall below 0.2.
func TestDeploymentPhaseSharesRoundUp(t *testing.T) {
	eachWithClock(t, func(t *testing.T, s *store.Store, clk *testClock) {
		ctx := context.Background()
		f := newFleet(t, s, "acme", 30)
		for _, tc := range []struct {
			phases string
			want   []int
		}{{"20,100", []int{6, 24}}, {"10,50,100", []int{3, 12, 15}}} {
			d, err := s.CreateDeployment(ctx, actor, f.tenant.ID, store.DeploymentSpec{Product: "thermostat", Group: f.group.Name, Release: "1.1",
				Plan: plan(t, tc.phases, "1h"), Criteria: rollout.DefaultCriteria()})
			if err != nil {
				t.Fatal(err)
			}
			st, err := s.DeploymentStatus(ctx, f.tenant.ID, d.ID)
			if err != nil {
				t.Fatal(err)
			}
			var got []int
			for _, p := range st.Tally.PerPhase {
				got = append(got, p.Devices)
			}
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("%s: devices per phase (-got +want):\n%s", tc.phases, diff)
			}
			offered := 0
			for _, id := range f.devices {
				if st.Deployment.Offers(id) {
					offered++
				}
			}
			if offered != tc.want[0] {
				t.Errorf("%s: phase 1 offers the release to %d devices, want %d", tc.phases, offered, tc.want[0])
			}
			if _, err := s.AbortDeployment(ctx, actor, f.tenant.ID, d.ID, "next case"); err != nil {
				t.Fatal(err)
			}
		}
	})
}
