package console_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/deviceapi"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// seeded is tenant A's ("default") data: what its pages show and what other tenants' probes
// aim at.
type seeded struct {
	tokenID      string
	product      string
	deviceID     string
	deploymentID string
	failureID    string
	report       int64
	leaks        []string
}

const (
	seedProduct = "secret-thermostat"
	seedRelease = "9.0"
)

// seedTenant gives tenant "default" a product, a signed release, a device running it that
// installed it and crashed, an active deployment and a failure group.
func seedTenant(t *testing.T, h *harness) *seeded {
	t.Helper()
	ctx := context.Background()
	st := h.srv.Store()
	tok := h.token(h.admin, "reader")
	ac := h.api(h.admin)
	if _, err := ac.CreateProduct(ctx, client.CreateProductRequest{Name: seedProduct}); err != nil {
		t.Fatal(err)
	}
	tn, _ := st.TenantByName(ctx, "default")
	prod, _ := st.ProductByName(ctx, tn.ID, seedProduct)
	grp, _ := st.GroupByName(ctx, tn.ID, seedProduct, "Production")
	a := &seeded{tokenID: tok.ID, product: seedProduct, deviceID: strings.Repeat("ab", 32)}
	now := h.clock.Now()
	db := storetest.DB(st)
	if _, err := db.Exec(`INSERT INTO devices (id, tenant_id, product_id, group_id, state, attestation, current_release, target_release, last_seen_at, created_at, updated_at)
		VALUES ($1, $2, $3, $4, 'claimed', 'affirming', '', '', $5, $5, $5)`, a.deviceID, tn.ID, prod.ID, grp.ID, now.UnixMicro()); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO releases (id, tenant_id, product_id, version, state, targets_version, revoked_reason, created_at, signed_at)
		VALUES ($1, $2, $3, $4, 'signed', 1, '', 1, 2)`, store.NewID("rel"), tn.ID, prod.ID, seedRelease); err != nil {
		t.Fatal(err)
	}
	if err := st.AddInstallReport(ctx, tn.ID, a.deviceID, store.InstallReport{State: "committed", Release: seedRelease, Reason: "secret-install-reason", At: now}, false, true); err != nil {
		t.Fatal(err)
	}
	dep, err := ac.CreateDeployment(ctx, client.CreateDeploymentRequest{Product: seedProduct, Group: "Production", Release: seedRelease, Phases: "50,100", Soak: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	a.deploymentID = dep.ID
	h.clock.Add(time.Second)
	if err := st.RecordDeviceRelease(ctx, tn.ID, a.deviceID, seedRelease); err != nil {
		t.Fatal(err)
	}
	in, err := st.AddFailureReports(ctx, tn.ID, a.deviceID, []deviceapi.CrashReport{{ID: "r1", Program: "secretd", Version: seedRelease, Signal: 11,
		Frames: []string{"secret_fn"}, Time: now.Add(-time.Minute)}})
	if err != nil || len(in.NewGroups) != 1 {
		t.Fatalf("seed failure: %+v %v", in, err)
	}
	a.failureID = in.NewGroups[0]
	a.report = seedReport(t, h)
	a.leaks = []string{tok.ID, tn.ID, prod.ID, grp.ID, a.deviceID, a.deploymentID, a.failureID, "secret_fn", "secret-install-reason", seedReportTitle}
	return a
}

const seedReportTitle = "Secret overflow in the manifest parser"

// seedReport gives tenant "default" the example program (doc/examples/program.yaml, open now)
// and a report by an accepted researcher, and returns its number.
func seedReport(t *testing.T, h *harness) int64 {
	t.Helper()
	ctx := context.Background()
	ac := h.api(h.admin)
	if _, err := ac.CreateProduct(ctx, client.CreateProductRequest{Name: "edge-gateway"}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("../../doc/examples/program.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var keep []string
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(l, "starts:") && !strings.HasPrefix(l, "ends:") {
			keep = append(keep, l)
		}
	}
	if _, err := ac.CreateProgram(ctx, client.CreateProgramRequest{Name: "edge-challenge", Rules: strings.Join(keep, "\n")}); err != nil {
		t.Fatal(err)
	}
	res, err := h.api("").Apply(ctx, client.ApplyRequest{Tenant: "default", Program: "edge-challenge", Name: "Ada", Email: "ada@example.org",
		Country: "GB", Experience: "exploit development"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ac.AcceptApplication(ctx, "edge-challenge", res.Application.ID, "welcome"); err != nil {
		t.Fatal(err)
	}
	rep, err := h.api(res.Token).SubmitReport(ctx, "edge-challenge", client.SubmitReportRequest{Title: seedReportTitle,
		Description: "A crafted manifest overflows a heap buffer.", Scenario: "remote-code-execution", Product: "edge-gateway",
		Components: []string{"update-agent"}, Releases: []string{"26.07.1"}, CVSS31: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"})
	if err != nil {
		t.Fatal(err)
	}
	return rep.Number
}

// probes are the page probes of tenant A's data by tenant B's administrator.
func (a *seeded) probes() map[string]consoleProbe {
	rel := "/releases/" + a.product + "/" + seedRelease
	dep := "/deployments/" + a.deploymentID
	rep := fmt.Sprintf("/reports/%d", a.report)
	return map[string]consoleProbe{
		"GET /devices":                              {"GET", "/devices", nil, 0},
		"GET /devices/{id}":                         {"GET", "/devices/" + a.deviceID, nil, http.StatusNotFound},
		"GET /releases":                             {"GET", "/releases?product=" + a.product, nil, http.StatusNotFound},
		"GET /releases/{product}/{version}":         {"GET", rel, nil, http.StatusNotFound},
		"POST /releases/{product}/{version}/revoke": {"POST", rel + "/revoke", url.Values{"reason": {"mine now"}}, http.StatusNotFound},
		"GET /deployments":                          {"GET", "/deployments", nil, 0},
		"GET /deployments/new":                      {"GET", "/deployments/new", nil, 0},
		"POST /deployments":                         {"POST", "/deployments", url.Values{"group": {a.product + "/Production"}, "release": {seedRelease}}, http.StatusNotFound},
		"GET /deployments/{id}":                     {"GET", dep, nil, http.StatusNotFound},
		"GET /deployments/{id}/events":              {"GET", dep + "/events", nil, http.StatusNotFound},
		"POST /deployments/{id}/{action}":           {"POST", dep + "/abort", url.Values{"reason": {"mine now"}}, http.StatusNotFound},
		"GET /coverage":                             {"GET", "/coverage?product=" + a.product, nil, http.StatusNotFound},
		"GET /crashes":                              {"GET", "/crashes", nil, 0},
		"GET /crashes/{id}":                         {"GET", "/crashes/" + a.failureID, nil, http.StatusNotFound},
		"POST /crashes/{id}/resolve":                {"POST", "/crashes/" + a.failureID + "/resolve", nil, http.StatusNotFound},
		"GET /audit":                                {"GET", "/audit", nil, 0},
		"GET /audit/verify":                         {"GET", "/audit/verify", nil, 0},
		"GET /reports":                              {"GET", "/reports", nil, 0},
		"GET /reports/{number}":                     {"GET", rep, nil, http.StatusNotFound},
		"POST /reports/{number}/triage":             {"POST", rep + "/triage", url.Values{"state": {"spam"}}, http.StatusNotFound},
		"POST /reports/{number}/comments":           {"POST", rep + "/comments", url.Values{"body": {"mine"}}, http.StatusNotFound},
		"POST /reports/{number}/award":              {"POST", rep + "/award", nil, http.StatusNotFound},
		"POST /reports/{number}/fix":                {"POST", rep + "/fix", url.Values{"fixed": {seedRelease}, "affected": {"26.07.1"}}, http.StatusNotFound},
		"POST /reports/{number}/advisory":           {"POST", rep + "/advisory", url.Values{"format": {"csaf"}, "namespace": {"https://evil.example"}}, http.StatusNotFound},
		"GET /programs":                             {"GET", "/programs", nil, 0},
		"GET /programs/{program}":                   {"GET", "/programs/edge-challenge", nil, http.StatusNotFound},
	}
}

// writes are the state-changing routes aimed at tenant A's data, for a reader of A.
func (a *seeded) writes() map[string]consoleProbe {
	dep := "/deployments/" + a.deploymentID
	rep := fmt.Sprintf("/reports/%d", a.report)
	return map[string]consoleProbe{
		"POST /reports/{number}/triage":             {"POST", rep + "/triage", url.Values{"state": {"spam"}}, http.StatusForbidden},
		"POST /reports/{number}/comments":           {"POST", rep + "/comments", url.Values{"body": {"x"}}, http.StatusForbidden},
		"POST /reports/{number}/award":              {"POST", rep + "/award", nil, http.StatusForbidden},
		"POST /reports/{number}/fix":                {"POST", rep + "/fix", url.Values{"fixed": {seedRelease}, "affected": {"26.07.1"}}, http.StatusForbidden},
		"POST /reports/{number}/advisory":           {"POST", rep + "/advisory", url.Values{"format": {"csaf"}, "namespace": {"https://x.example"}}, http.StatusForbidden},
		"POST /releases/{product}/{version}/revoke": {"POST", "/releases/" + a.product + "/" + seedRelease + "/revoke", url.Values{"reason": {"x"}}, http.StatusForbidden},
		"POST /deployments":                         {"POST", "/deployments", url.Values{"group": {a.product + "/Production"}, "release": {seedRelease}}, http.StatusForbidden},
		"POST /deployments/{id}/{action}":           {"POST", dep + "/pause", url.Values{"reason": {"x"}}, http.StatusForbidden},
		"POST /crashes/{id}/resolve":                {"POST", "/crashes/" + a.failureID + "/resolve", nil, http.StatusForbidden},
	}
}
