package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/failure"
	"github.com/rampartsec/rampart/internal/rollout"
	"github.com/rampartsec/rampart/internal/store"
)

// rolloutSeed is tenant A's deployment and failure group, for the isolation probes.
type rolloutSeed struct {
	deployment, group string
}

// seedRollout deploys the signed 1.0.0 of product to its Production group and stores a crash
// report from device devID.
func (h *harness) seedRollout(t testing.TB, tenantID, product, devID string) rolloutSeed {
	t.Helper()
	ctx := context.Background()
	d, err := h.store.CreateDeployment(ctx, store.System, tenantID, store.DeploymentSpec{Product: product, Group: "Production",
		Release: "1.0.0", Plan: rollout.DefaultPlan(), Criteria: rollout.DefaultCriteria()})
	if err != nil {
		t.Fatal(err)
	}
	in, err := h.store.AddFailureReports(ctx, tenantID, devID, []failure.Report{crashReport("r1", "sensor_read")})
	if err != nil || len(in.NewGroups) != 1 {
		t.Fatalf("AddFailureReports = %+v, %v", in, err)
	}
	return rolloutSeed{deployment: d.ID, group: in.NewGroups[0]}
}

func crashReport(id, frame string) failure.Report {
	return failure.Report{ID: id, Program: "/usr/bin/sensord", Version: "1.0.0", Signal: 11,
		Frames: []string{frame + "+0x1a", "poll_loop+0x40", "main"}, Time: time.Now().UTC().Add(-time.Minute).Truncate(time.Second)}
}

func rolloutIsolationCases(s rolloutSeed, product string) map[string]isolationCase {
	dep := "/api/v1/deployments/" + s.deployment
	return map[string]isolationCase{
		"GET /api/v1/deployments":                 {"GET", "/api/v1/deployments", "", 0},
		"POST /api/v1/deployments":                {"POST", "/api/v1/deployments", `{"product":"` + product + `","group":"Production","release":"1.0.0"}`, http.StatusNotFound},
		"GET /api/v1/deployments/{id}":            {"GET", dep, "", http.StatusNotFound},
		"POST /api/v1/deployments/{id}/pause":     {"POST", dep + "/pause", `{"reason":"x"}`, http.StatusNotFound},
		"POST /api/v1/deployments/{id}/resume":    {"POST", dep + "/resume", `{}`, http.StatusNotFound},
		"POST /api/v1/deployments/{id}/abort":     {"POST", dep + "/abort", `{}`, http.StatusNotFound},
		"GET /api/v1/failures":                    {"GET", "/api/v1/failures", "", 0},
		"GET /api/v1/failures/{id}":               {"GET", "/api/v1/failures/" + s.group, "", http.StatusNotFound},
		"POST /api/v1/failures/{id}/resolve":      {"POST", "/api/v1/failures/" + s.group + "/resolve", "", http.StatusNotFound},
		"GET /api/v1/products/{product}/coverage": {"GET", "/api/v1/products/" + product + "/coverage", "", http.StatusNotFound},
	}
}

// TestDeploymentAPI creates, shows, lists, pauses, resumes and aborts a deployment, and checks
// that creation wakes exactly the waiting devices whose phase is open.
func TestDeploymentAPI(t *testing.T) {
	eachDB(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		c := h.client(h.admin)
		var devs []fleetDevice
		for range 6 {
			devs = append(devs, h.newDevice("default"))
		}
		k := h.keysInit(h.admin)
		h.signedRelease(h.admin, k, "lamp", "1.0.0", []byte("rootfs 1.0.0"))
		h.signedRelease(h.admin, k, "lamp", "1.1.0", []byte("rootfs 1.1.0"))

		// Every device waits under its group's tag; the deployment must wake the ones in phase 1.
		tenantID := devs[0].tenantID(h)
		tag := WakeTag(tenantID, "lamp", "Production")
		woken := make(chan string, len(devs))
		for _, d := range devs {
			go func() {
				if h.api.Wake().Wait(ctx, d.id, tag) == nil {
					woken <- d.id
				}
			}()
		}
		for h.api.Wake().Waiting() < len(devs) {
			time.Sleep(5 * time.Millisecond)
		}

		d, err := c.CreateDeployment(ctx, client.CreateDeploymentRequest{Product: "lamp", Group: "Production", Release: "1.1.0", Phases: []float64{50, 100}, Soak: "2h"})
		if err != nil {
			t.Fatal(err)
		}
		if d.State != "active" || d.Phase != 1 || len(d.Phases) != 2 || d.Phases[0].MinSoak != "2h0m0s" || d.PreviousRelease != "1.0.0" || d.Tally == nil || d.Tally.Devices != 6 {
			t.Fatalf("created deployment: %+v", d)
		}
		var wantWoken []string
		for _, dev := range devs {
			if rollout.Position(d.ID, dev.id) < 0.5 {
				wantWoken = append(wantWoken, dev.id)
			}
		}
		var gotWoken []string
		for range wantWoken {
			select {
			case id := <-woken:
				gotWoken = append(gotWoken, id)
			case <-time.After(10 * time.Second):
				t.Fatalf("woke %d devices, want %d", len(gotWoken), len(wantWoken))
			}
		}
		if got := h.api.Wake().Waiting(); got != len(devs)-len(wantWoken) {
			t.Errorf("devices still waiting = %d, want %d (phase 2 must not be woken)", got, len(devs)-len(wantWoken))
		}
		h.api.Wake().WakeTagged(tag, nil) // release the rest

		bySeq, err := c.GetDeployment(ctx, fmt.Sprint(d.Seq))
		if err != nil || bySeq.ID != d.ID {
			t.Fatalf("GetDeployment by sequence number = %+v, %v", bySeq, err)
		}
		l, err := c.ListDeployments(ctx, client.DeploymentFilter{Product: "lamp", State: "active"}, client.ListOptions{})
		if err != nil || len(l.Items) != 1 || l.Items[0].ID != d.ID {
			t.Fatalf("ListDeployments = %+v, %v", l, err)
		}
		if _, err := c.ResumeDeployment(ctx, d.ID, ""); !client.IsStatus(err, http.StatusConflict) || !strings.Contains(err.Error(), "not paused") {
			t.Errorf("resume of an active deployment: %v, want 409 not paused", err)
		}
		p, err := c.PauseDeployment(ctx, d.ID, "checking telemetry")
		if err != nil || p.State != "paused" || p.Reason != "checking telemetry" {
			t.Fatalf("pause = %+v, %v", p, err)
		}
		if _, err := c.ResumeDeployment(ctx, d.ID, "telemetry fine"); err != nil {
			t.Fatal(err)
		}
		a, err := c.AbortDeployment(ctx, d.ID, "")
		if err != nil || a.State != "aborted" || a.Reason != "aborted by operator" {
			t.Fatalf("abort = %+v, %v", a, err)
		}
		if _, err := c.AbortDeployment(ctx, d.ID, ""); !client.IsStatus(err, http.StatusConflict) {
			t.Errorf("second abort: %v, want 409", err)
		}
		recs, err := c.ListAudit(ctx, "", client.ListOptions{Limit: 500})
		if err != nil {
			t.Fatal(err)
		}
		var actions []string
		for _, r := range recs.Items {
			if strings.HasPrefix(r.Action, "deployment.") {
				actions = append(actions, r.Action)
			}
		}
		if diff := cmp.Diff(actions, []string{"deployment.create", "deployment.pause", "deployment.resume", "deployment.abort"}); diff != "" {
			t.Errorf("audited deployment actions (-got +want):\n%s", diff)
		}
		// Emergency: one phase of 100 %.
		e, err := c.CreateDeployment(ctx, client.CreateDeploymentRequest{Product: "lamp", Group: "Production", Release: "1.1.0", Emergency: true})
		if err != nil || !e.Emergency || len(e.Phases) != 1 || e.Phases[0].Percent != 100 || e.Tally.Offered != 6 {
			t.Fatalf("emergency deployment = %+v, %v", e, err)
		}
	})
}

// TestDeploymentBadInput checks that each refusal is a clear 4xx and writes nothing.
func TestDeploymentBadInput(t *testing.T) {
	eachDB(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		h.newDevice("default")
		k := h.keysInit(h.admin)
		h.signedRelease(h.admin, k, "lamp", "1.0.0", []byte("rootfs 1.0.0"))
		h.signedRelease(h.admin, k, "lamp", "1.1.0", []byte("rootfs 1.1.0"))
		c := h.client(h.admin)
		if _, err := c.RevokeRelease(ctx, "lamp", "1.0.0", client.RevokeReleaseRequest{Reason: "CVE-2026-1"}); err != nil {
			t.Fatal(err)
		}
		im, err := c.AddImage(ctx, strings.NewReader("draft"), 5, "rootfs", "1.2.0", 1)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.CreateRelease(ctx, "lamp", client.CreateReleaseRequest{Version: "1.2.0", Images: []string{im.ID}}); err != nil {
			t.Fatal(err)
		}
		open, err := c.CreateDeployment(ctx, client.CreateDeploymentRequest{Product: "lamp", Group: "Field Test", Release: "1.1.0"})
		if err != nil {
			t.Fatal(err)
		}
		reader := h.token(h.admin, "reader").Secret
		const js = "application/json"
		body := func(extra string) string {
			return `{"product":"lamp","group":"Production","release":"1.1.0"` + extra + `}`
		}
		tests := []struct {
			name, method, path, tok, body string
			status                        int
			msg                           string
		}{
			{"missing release", "POST", "/api/v1/deployments", h.admin, `{"product":"lamp","group":"Production"}`, 400, "release are required"},
			{"unknown field", "POST", "/api/v1/deployments", h.admin, body(`,"colour":"red"`), 400, `unknown field "colour"`},
			{"last phase not 100", "POST", "/api/v1/deployments", h.admin, body(`,"phases":[10,50]`), 400, "must cover 100%"},
			{"shrinking phases", "POST", "/api/v1/deployments", h.admin, body(`,"phases":[50,10,100]`), 400, "does not grow"},
			{"phase over 100", "POST", "/api/v1/deployments", h.admin, body(`,"phases":[10,150]`), 400, "is not in (0, 100]"},
			{"bad soak", "POST", "/api/v1/deployments", h.admin, body(`,"soak":"soon"`), 400, "not a duration"},
			{"long soak", "POST", "/api/v1/deployments", h.admin, body(`,"soak":"90d"`), 400, "not between"},
			{"emergency with phases", "POST", "/api/v1/deployments", h.admin, body(`,"emergency":true,"phases":[10,100]`), 400, "give no phases"},
			{"unknown product", "POST", "/api/v1/deployments", h.admin, `{"product":"toaster","group":"Production","release":"1.1.0"}`, 404, "not found"},
			{"unknown release", "POST", "/api/v1/deployments", h.admin, `{"product":"lamp","group":"Production","release":"9.9.9"}`, 404, "release lamp 9.9.9 not found"},
			{"unknown group", "POST", "/api/v1/deployments", h.admin, `{"product":"lamp","group":"Nowhere","release":"1.1.0"}`, 404, "group Nowhere of product lamp not found"},
			{"revoked release", "POST", "/api/v1/deployments", h.admin, `{"product":"lamp","group":"Production","release":"1.0.0"}`, 409, "is revoked (CVE-2026-1)"},
			{"draft release", "POST", "/api/v1/deployments", h.admin, `{"product":"lamp","group":"Production","release":"1.2.0"}`, 409, "not signed yet"},
			{"group busy", "POST", "/api/v1/deployments", h.admin, `{"product":"lamp","group":"Field Test","release":"1.1.0"}`, 409, "already has an active or paused deployment"},
			{"reader creates", "POST", "/api/v1/deployments", reader, body(""), 403, "operator role"},
			{"unknown deployment", "GET", "/api/v1/deployments/dep_nothing", h.admin, "", 404, "not found"},
			{"unknown sequence", "GET", "/api/v1/deployments/99", h.admin, "", 404, "deployment 99 not found"},
			{"bad state filter", "GET", "/api/v1/deployments?state=running", h.admin, "", 400, "state must be"},
			{"multi-line reason", "POST", "/api/v1/deployments/" + open.ID + "/pause", h.admin, `{"reason":"a\nb"}`, 400, "one line"},
			{"resume active", "POST", "/api/v1/deployments/" + open.ID + "/resume", h.admin, `{}`, 409, "not paused"},
			{"reader pauses", "POST", "/api/v1/deployments/" + open.ID + "/pause", reader, `{}`, 403, "operator role"},
			{"unknown failure group", "GET", "/api/v1/failures/flg_nothing", h.admin, "", 404, "not found"},
			{"bad failure status", "GET", "/api/v1/failures?status=closed", h.admin, "", 400, "status must be"},
			{"failures of unknown product", "GET", "/api/v1/failures?product=toaster", h.admin, "", 404, "not found"},
			{"coverage of unknown product", "GET", "/api/v1/products/toaster/coverage", h.admin, "", 404, "product toaster not found"},
			{"coverage of unknown group", "GET", "/api/v1/products/lamp/coverage?group=Nowhere", h.admin, "", 404, "not found"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				before := h.rolloutSnapshot()
				ctype := ""
				if tt.body != "" {
					ctype = js
				}
				status, got := h.raw(tt.method, tt.path, tt.tok, ctype, tt.body)
				if status != tt.status {
					t.Fatalf("status = %d, want %d; body %s", status, tt.status, got)
				}
				var eb client.ErrorBody
				if err := json.Unmarshal([]byte(got), &eb); err != nil || !strings.Contains(eb.Error.Message, tt.msg) {
					t.Errorf("error = %s, want a message with %q", got, tt.msg)
				}
				if diff := cmp.Diff(h.rolloutSnapshot(), before); diff != "" {
					t.Errorf("a refused request changed the database (-after +before):\n%s", diff)
				}
			})
		}
	})
}

// rolloutSnapshot counts the rows a refused rollout request must not change.
func (h *harness) rolloutSnapshot() map[string]int {
	h.t.Helper()
	out := h.snapshot()
	for _, table := range []string{"deployments", "deployment_devices", "failure_groups", "failure_reports", "failure_counts", "coverage_events"} {
		var n int
		if err := h.store.DB().QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
			h.t.Fatal(err)
		}
		out[table] = n
	}
	var states string
	h.store.DB().QueryRow("SELECT COALESCE(MAX(state), '') || COUNT(*) FROM deployments WHERE state = 'active'").Scan(&states)
	out["active "+states] = 1
	return out
}

// TestDeviceFailures posts crash batches over mutual TLS and checks grouping, idempotence,
// the limits and the per-device budget, and the admin views.
func TestDeviceFailures(t *testing.T) {
	eachDB(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		dev := h.newDevice("default")
		other := h.newDevice("default")
		now := time.Now()
		normal := h.issue("default", dev, ca.ProfileNormal, now)
		updateOnly := h.issue("default", other, ca.ProfileUpdateOnly, now)
		batch := func(reports ...failure.Report) string {
			b, _ := json.Marshal(failure.Batch{Reports: reports})
			return string(b)
		}
		ingest := func(status int, body string) client.FailureIngest {
			t.Helper()
			var in client.FailureIngest
			if status != http.StatusOK || json.Unmarshal([]byte(body), &in) != nil {
				t.Fatalf("POST failures = %d %s", status, body)
			}
			return in
		}
		in := ingest(h.devicePostText("/device/v1/failures", &normal, batch(crashReport("a", "sensor_read"), crashReport("b", "sensor_read"))))
		if diff := cmp.Diff(in, client.FailureIngest{Accepted: 2, NewGroups: 1}); diff != "" {
			t.Errorf("first batch (-got +want):\n%s", diff)
		}
		// A resent batch counts once; an update-only device may report too.
		in = ingest(h.devicePostText("/device/v1/failures", &normal, batch(crashReport("a", "sensor_read"))))
		if in.Duplicates != 1 || in.Accepted != 0 {
			t.Errorf("resent batch: %+v", in)
		}
		in = ingest(h.devicePostText("/device/v1/failures", &updateOnly, batch(crashReport("c", "sensor_read"), crashReport("d", "parse_frame"))))
		if in.Accepted != 2 || in.NewGroups != 1 {
			t.Errorf("update-only batch: %+v", in)
		}

		before := h.rolloutSnapshot()
		long := crashReport("e", "x")
		long.Frames = make([]string, failure.MaxFrames+1)
		for i := range long.Frames {
			long.Frames[i] = "f"
		}
		huge := `{"reports":[` + strings.Repeat(" ", failure.MaxBatchBytes) + `]}`
		for _, tc := range []struct {
			name, body string
			cert       bool
			status     int
			msg        string
		}{
			{"unknown field", `{"reports":[{"id":"x","program":"p","version":"1","time":"2026-01-01T00:00:00Z","colour":1}]}`, true, 400, "unknown field"},
			{"empty batch", `{"reports":[]}`, true, 400, "no reports"},
			{"too many frames", batch(long), true, 413, "129 frames, at most 128"},
			{"trailing data", batch(crashReport("f", "y")) + "{}", true, 400, "after the JSON value"},
			{"too large", huge, true, 413, "at most 1048576 bytes"},
			{"no certificate", batch(crashReport("g", "y")), false, 401, "certificate"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				cert := &normal
				if !tc.cert {
					cert = nil
				}
				status, body := h.devicePostText("/device/v1/failures", cert, tc.body)
				if status != tc.status || !strings.Contains(body, tc.msg) {
					t.Errorf("= %d %s, want %d mentioning %q", status, body, tc.status, tc.msg)
				}
			})
		}
		if diff := cmp.Diff(h.rolloutSnapshot(), before); diff != "" {
			t.Errorf("refused batches changed the database (-after +before):\n%s", diff)
		}

		// The budget: a full batch beyond it is refused with 429 and stores nothing.
		h.api.reportLimit = ReportLimit(3600) // one report a second, bursts of 200
		var full []failure.Report
		for i := range failure.MaxBatchReports {
			full = append(full, crashReport(fmt.Sprintf("bulk-%d", i), "bulk"))
		}
		for i := range 2 {
			var again []failure.Report
			for _, r := range full {
				r.ID = fmt.Sprintf("%s-%d", r.ID, i)
				again = append(again, r)
			}
			ingest(h.devicePostText("/device/v1/failures", &normal, batch(again...)))
		}
		before = h.rolloutSnapshot()
		if status, body := h.devicePostText("/device/v1/failures", &normal, batch(crashReport("over", "bulk"))); status != http.StatusTooManyRequests || !strings.Contains(body, "budget") {
			t.Errorf("over budget = %d %s, want 429", status, body)
		}
		if diff := cmp.Diff(h.rolloutSnapshot(), before); diff != "" {
			t.Errorf("a batch over budget changed the database (-after +before):\n%s", diff)
		}

		c := h.client(h.admin)
		l, err := c.ListFailureGroups(ctx, client.FailureFilter{Product: "lamp", Release: "1.0.0"}, client.ListOptions{})
		if err != nil || len(l.Items) != 3 {
			t.Fatalf("ListFailureGroups = %+v, %v", l, err)
		}
		var sensor client.FailureGroup
		for _, g := range l.Items {
			if len(g.Frames) > 0 && g.Frames[0] == "sensor_read" {
				sensor = g
			}
		}
		if sensor.Reports != 3 || sensor.NewIn != "1.0.0" || sensor.Program != "sensord" || sensor.FaultType != "SIGSEGV" {
			t.Fatalf("sensor_read group = %+v", sensor)
		}
		g, err := c.GetFailureGroup(ctx, sensor.ID)
		if err != nil || g.Devices != 2 || len(g.Counts) != 1 || g.Counts[0].Reports != 3 || len(g.Sample) == 0 {
			t.Fatalf("GetFailureGroup = %+v, %v", g, err)
		}
		if l, _ := c.ListFailureGroups(ctx, client.FailureFilter{Release: "2.0.0"}, client.ListOptions{}); len(l.Items) != 0 {
			t.Errorf("groups on 2.0.0 = %+v, want none", l.Items)
		}
		r, err := c.ResolveFailureGroup(ctx, sensor.ID)
		if err != nil || r.Status != "resolved" {
			t.Fatalf("resolve = %+v, %v", r, err)
		}
		if _, err := c.ResolveFailureGroup(ctx, sensor.ID); !client.IsStatus(err, http.StatusConflict) {
			t.Errorf("second resolve: %v, want 409", err)
		}
	})
}

// TestCoverageAPI reads a product's coverage after devices report releases.
func TestCoverageAPI(t *testing.T) {
	eachDB(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		var devs []fleetDevice
		for range 4 {
			devs = append(devs, h.newDevice("default"))
		}
		tenantID := devs[0].tenantID(h)
		k := h.keysInit(h.admin)
		h.signedRelease(h.admin, k, "lamp", "1.0.0", []byte("rootfs 1.0.0"))
		h.signedRelease(h.admin, k, "lamp", "1.1.0", []byte("rootfs 1.1.0"))
		for _, d := range devs {
			if err := h.store.RecordDeviceRelease(ctx, tenantID, d.id, "0.9.0"); err != nil {
				t.Fatal(err)
			}
		}
		c := h.client(h.admin)
		if _, err := c.CreateDeployment(ctx, client.CreateDeploymentRequest{Product: "lamp", Group: "Production", Release: "1.1.0", Emergency: true}); err != nil {
			t.Fatal(err)
		}
		for _, d := range devs[:2] {
			if err := h.store.RecordDeviceRelease(ctx, tenantID, d.id, "1.1.0"); err != nil {
				t.Fatal(err)
			}
		}
		cov, err := c.GetCoverage(ctx, "lamp", "Production")
		if err != nil {
			t.Fatal(err)
		}
		if cov.Devices != 4 || cov.Newest != "1.1.0" || cov.NewestShare != 0.5 || len(cov.Releases) != 2 || cov.Releases[0].Release != "1.1.0" {
			t.Fatalf("coverage = %+v", cov)
		}
		reached := map[float64]bool{}
		for _, m := range cov.Releases[0].Milestones {
			reached[m.Threshold] = m.Reached
		}
		if diff := cmp.Diff(reached, map[float64]bool{0.5: true, 0.9: false, 0.99: false, 1: false}); diff != "" {
			t.Errorf("1.1.0 milestones reached (-got +want):\n%s", diff)
		}
	})
}
