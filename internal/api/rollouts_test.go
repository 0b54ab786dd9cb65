package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/deviceapi"
	"github.com/rampartsec/rampart/internal/rollout"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// rolloutSeed is tenant A's rollout data that tenant B must never reach.
type rolloutSeed struct {
	deploymentID, groupID, signature string
}

func (s rolloutSeed) leaks() []string { return []string{s.deploymentID, s.groupID, s.signature} }

// signedReleaseRow records a signed release of a product as the release service leaves it, without images.
func (h *harness) signedReleaseRow(t *testing.T, tenantID, productID, version string) {
	t.Helper()
	if _, err := storetest.DB(h.store).Exec(`INSERT INTO releases (id, tenant_id, product_id, version, state, targets_version, revoked_reason, created_at)
		VALUES ($1, $2, $3, $4, 'signed', 1, '', 1)`, store.NewID("rel"), tenantID, productID, version); err != nil {
		t.Fatal(err)
	}
}

// seedRollout gives tenant A a deployment of a signed release and a failure group from its device.
func (h *harness) seedRollout(t *testing.T, tenantID, productID, devID string) rolloutSeed {
	t.Helper()
	ctx := context.Background()
	h.signedReleaseRow(t, tenantID, productID, "9.0")
	d, err := h.store.CreateDeployment(ctx, "system", tenantID, store.DeploymentSpec{Product: "secret-thermostat", Group: "Production",
		Release: "9.0", Plan: mustPlanT(t), Criteria: defaultCriteria()})
	if err != nil {
		t.Fatal(err)
	}
	in, err := h.store.AddFailureReports(ctx, tenantID, devID, []deviceapi.CrashReport{{ID: "r1", Program: "secretd", Version: "9.0", Signal: 11,
		Frames: []string{"secret_fn"}, Time: time.Now()}})
	if err != nil || len(in.NewGroups) != 1 {
		t.Fatalf("seed failure: %+v %v", in, err)
	}
	g, err := h.store.FailureGroupByID(ctx, tenantID, in.NewGroups[0])
	if err != nil {
		t.Fatal(err)
	}
	return rolloutSeed{deploymentID: d.ID, groupID: g.ID, signature: g.Signature}
}

func rolloutIsolationCases(s rolloutSeed) map[string]isolationCase {
	dep := "/api/v1/deployments/" + s.deploymentID
	return map[string]isolationCase{
		"POST /api/v1/deployments":               {"POST", "/api/v1/deployments", `{"product":"secret-thermostat","group":"Production","release":"9.0"}`, http.StatusNotFound},
		"GET /api/v1/deployments":                {"GET", "/api/v1/deployments", "", 0},
		"GET /api/v1/deployments/{id}":           {"GET", dep, "", http.StatusNotFound},
		"POST /api/v1/deployments/{id}/{action}": {"POST", dep + "/abort", `{"reason":"mine now"}`, http.StatusNotFound},
		"GET /api/v1/failures":                   {"GET", "/api/v1/failures", "", 0},
		"GET /api/v1/failures/{id}":              {"GET", "/api/v1/failures/" + s.groupID, "", http.StatusNotFound},
		"POST /api/v1/failures/{id}/resolve":     {"POST", "/api/v1/failures/" + s.groupID + "/resolve", `{}`, http.StatusNotFound},
		"GET /api/v1/coverage":                   {"GET", "/api/v1/coverage?product=secret-thermostat", "", http.StatusNotFound},
	}
}

func TestDeploymentsFailuresAndCoverage(t *testing.T) {
	eachDB(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		c := h.client(h.admin)
		dev := h.newDevice("default")
		tn, _ := h.store.TenantByName(ctx, "default")
		p, _ := h.store.ProductByName(ctx, tn.ID, "lamp")
		h.signedReleaseRow(t, tn.ID, p.ID, "2.0.0")
		bad := []struct {
			req    client.CreateDeploymentRequest
			status int
			msg    string
		}{
			{client.CreateDeploymentRequest{Product: "lamp", Group: "Production"}, http.StatusBadRequest, "product, group and release are required"},
			{client.CreateDeploymentRequest{Product: "lamp", Group: "Production", Release: "2.0.0", Phases: "10,50"}, http.StatusBadRequest, "invalid phase plan: the last phase must cover 100% of the group, not 50%"},
			{client.CreateDeploymentRequest{Product: "lamp", Group: "Production", Release: "2.0.0", Soak: "forever"}, http.StatusBadRequest, `invalid phase plan: soak "forever" is not a duration`},
			{client.CreateDeploymentRequest{Product: "lamp", Group: "Production", Release: "2.0.0", Phases: "100", Emergency: true}, http.StatusBadRequest, "an emergency deployment goes to every device at once: give no phases or soak"},
			{client.CreateDeploymentRequest{Product: "lamp", Group: "Production", Release: "2.0.0", Criteria: map[string]string{"max_failures": "5%"}},
				http.StatusBadRequest, `invalid abort criteria: unknown setting "max_failures" (known: max_install_failures, min_sample, report_deadline, max_timeouts, max_crash_ratio, max_new_signature_devices, on_failure)`},
			{client.CreateDeploymentRequest{Product: "lamp", Group: "Production", Release: "2.0.0", Criteria: map[string]string{"max_timeouts": "2"}},
				http.StatusBadRequest, `invalid abort criteria: max_timeouts "2": is not a share between 0% and 100% (such as 5% or 0.05)`},
			{client.CreateDeploymentRequest{Product: "lamp", Group: "Nope", Release: "2.0.0"}, http.StatusNotFound, "group Nope of product lamp not found"},
			{client.CreateDeploymentRequest{Product: "lamp", Group: "Production", Release: "3.0.0"}, http.StatusNotFound, "release 3.0.0 of product lamp not found"},
		}
		for _, b := range bad {
			body, _ := json.Marshal(b.req)
			status, out := h.raw("POST", "/api/v1/deployments", h.admin, "application/json", string(body))
			var eb client.ErrorBody
			json.Unmarshal([]byte(out), &eb) // an answer that is not the envelope leaves the message empty
			if status != b.status || eb.Error.Message != b.msg {
				t.Errorf("create %+v = %d %s, want %d %q", b.req, status, out, b.status, b.msg)
			}
		}
		d, err := c.CreateDeployment(ctx, client.CreateDeploymentRequest{Product: "lamp", Group: "Production", Release: "2.0.0", Phases: "50,100", Soak: "1h"})
		if err != nil {
			t.Fatal(err)
		}
		if d.Seq != 1 || d.State != "active" || d.Phase != 1 || len(d.Phases) != 2 || d.Phases[0].Percent != 50 || d.Phases[0].OpenedAt == nil || d.PreviousRelease != "1.0.0" {
			t.Errorf("created %+v", d)
		}
		if _, err := c.CreateDeployment(ctx, client.CreateDeploymentRequest{Product: "lamp", Group: "Production", Release: "2.0.0"}); err == nil || !strings.Contains(err.Error(), "abort it first") {
			t.Errorf("second deployment in the group: %v", err)
		}
		// The device installs and reports a crash.
		if err := h.store.RecordDeviceRelease(ctx, tn.ID, dev.id, "2.0.0"); err != nil {
			t.Fatal(err)
		}
		if _, err := h.store.AddFailureReports(ctx, tn.ID, dev.id, []deviceapi.CrashReport{{ID: "c1", Program: "/usr/bin/lampd", Version: "2.0.0",
			Signal: 11, Frames: []string{"led_set+0x1a", "main"}, Time: time.Now()}}); err != nil {
			t.Fatal(err)
		}
		got, err := c.GetDeployment(ctx, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Progress == nil || got.Progress.Devices != 1 || got.Progress.Installed+got.Progress.Pending != got.Progress.Offered {
			t.Errorf("progress %+v", got.Progress)
		}
		for _, step := range []struct{ action, want string }{{"pause", "paused"}, {"resume", "active"}, {"abort", "aborted"}} {
			out, err := c.ActOnDeployment(ctx, d.ID, step.action, client.DeploymentActionRequest{Reason: "operator " + step.action})
			if err != nil || out.State != step.want || out.Reason != "operator "+step.action {
				t.Fatalf("%s: %+v %v", step.action, out, err)
			}
		}
		if _, err := c.ActOnDeployment(ctx, d.ID, "resume", client.DeploymentActionRequest{}); err == nil || !strings.Contains(err.Error(), "deployment is not paused") {
			t.Errorf("resume an aborted deployment: %v", err)
		}
		if status, out := h.raw("POST", "/api/v1/deployments/"+d.ID+"/explode", h.admin, "application/json", `{}`); status != http.StatusNotFound || !strings.Contains(out, "use pause, resume or abort") {
			t.Errorf("unknown action = %d %s", status, out)
		}
		list, err := c.ListDeployments(ctx, client.DeploymentFilter{State: "aborted"}, client.ListOptions{})
		if err != nil || len(list.Items) != 1 {
			t.Errorf("aborted deployments %+v %v", list, err)
		}
		// The crash group appears with its counts, and can be resolved.
		groups, err := c.ListFailureGroups(ctx, client.FailureFilter{Product: "lamp", Release: "2.0.0"}, client.ListOptions{})
		if err != nil || len(groups.Items) != 1 || groups.Items[0].Frames[0] != "led_set" || groups.Items[0].NewInRelease != "2.0.0" {
			t.Fatalf("failure groups %+v %v", groups, err)
		}
		det, err := c.GetFailureGroup(ctx, groups.Items[0].ID)
		if err != nil || det.Devices != 1 || len(det.Counts) != 1 || det.Counts[0].Phase == 0 || det.Counts[0].Reports != 1 {
			t.Errorf("failure group detail %+v %v", det, err)
		}
		if g, err := c.ResolveFailureGroup(ctx, det.ID); err != nil || g.Status != "resolved" {
			t.Errorf("resolve: %+v %v", g, err)
		}
		// Coverage: the one device runs 2.0.0.
		cov, err := c.GetCoverage(ctx, "lamp", "Production")
		if err != nil {
			t.Fatal(err)
		}
		if cov.Devices != 1 || cov.Newest != "2.0.0" || cov.NewestShare != 1 || len(cov.Releases) == 0 || !cov.Releases[0].Milestones[3].Reached {
			t.Errorf("coverage %+v", cov)
		}
		if status, _ := h.raw("GET", "/api/v1/coverage", h.admin, "", ""); status != http.StatusBadRequest {
			t.Errorf("coverage without a product = %d", status)
		}
	})
}

func mustPlanT(t *testing.T) rollout.Plan {
	t.Helper()
	p, err := rollout.ParsePlan("50,100", "1h")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func defaultCriteria() rollout.Criteria { return rollout.DefaultCriteria() }

// TestInterruptedInstallIsNotAFailure: an install that a power cut (or another local or network
// interruption) stopped is reported as interrupted; it is recorded, and not counted against the
// deployment's release as a failure.
func TestInterruptedInstallIsNotAFailure(t *testing.T) {
	eachDB(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		c := h.client(h.admin)
		dev := h.newDevice("default")
		cert := h.issue("default", dev, ca.ProfileNormal, time.Now())
		tn, _ := h.store.TenantByName(ctx, "default")
		p, _ := h.store.ProductByName(ctx, tn.ID, "lamp")
		h.signedReleaseRow(t, tn.ID, p.ID, "2.0.0")
		d, err := c.CreateDeployment(ctx, client.CreateDeploymentRequest{Product: "lamp", Group: "Production", Release: "2.0.0", Emergency: true})
		if err != nil {
			t.Fatal(err)
		}
		progress := func() *client.DeploymentProgress {
			t.Helper()
			got, err := c.GetDeployment(ctx, d.ID)
			if err != nil || got.Progress == nil {
				t.Fatalf("deployment %+v %v", got, err)
			}
			return got.Progress
		}
		if status, body := h.devicePostText("/device/v1/install-status", &cert,
			`{"state":"interrupted","release":"2.0.0","reason":"update.Install: write slot b: input/output error"}`); status != http.StatusOK {
			t.Fatalf("interrupted report: %d %s", status, body)
		}
		if pr := progress(); pr.Failed != 0 || pr.Interrupted != 1 {
			t.Errorf("after an interrupted install: failed %d, interrupted %d; want 0 and 1", pr.Failed, pr.Interrupted)
		}
		dv, err := c.GetDevice(ctx, dev.id)
		if err != nil || dv.Install == nil || dv.Install.State != "interrupted" {
			t.Errorf("device show: %+v %v", dv, err)
		}
		// A reboot that came back on the old slot is rolled back, and counts as a failure.
		if status, body := h.devicePostText("/device/v1/install-status", &cert,
			`{"state":"rolled_back","release":"2.0.0","reason":"after the reboot: the device booted slot A, not the installed rootfs.1 (B)"}`); status != http.StatusOK {
			t.Fatalf("rolled back report: %d %s", status, body)
		}
		if pr := progress(); pr.Failed != 1 {
			t.Errorf("after a rollback: failed %d, want 1", pr.Failed)
		}
		if dv, err := c.GetDevice(ctx, dev.id); err != nil || dv.Install == nil || dv.Install.State != "rolled_back" || !strings.Contains(dv.Install.Reason, "booted slot A") {
			t.Errorf("device show after a rollback: %+v %v", dv.Install, err)
		}
		// A real failure still counts.
		if status, body := h.devicePostText("/device/v1/install-status", &cert,
			`{"state":"failed","release":"2.0.0","reason":"health check failed"}`); status != http.StatusOK {
			t.Fatalf("failed report: %d %s", status, body)
		}
		if pr := progress(); pr.Failed != 1 {
			t.Errorf("after a failed install: failed %d, want 1", pr.Failed)
		}
	})
}
