package console_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// want checks that a page answered status and holds every text.
func want(t *testing.T, what string, res response, status int, texts ...string) {
	t.Helper()
	if res.status != status {
		t.Fatalf("%s: status %d, want %d; body %s", what, res.status, status, res.body)
	}
	text := html.UnescapeString(res.body)
	for _, tx := range texts {
		if !strings.Contains(res.body, tx) && !strings.Contains(text, tx) {
			t.Errorf("%s: page lacks %q", what, tx)
		}
	}
	if strings.HasPrefix(res.header.Get("Content-Type"), "text/html") {
		checkPageSecurity(t, res)
	}
}

// addDevices inserts n more devices of the seeded product with IDs that sort after A's.
func addDevices(t *testing.T, h *harness, n int, attestation string) []string {
	t.Helper()
	ctx := context.Background()
	st := h.srv.Store()
	tn, _ := st.TenantByName(ctx, "default")
	prod, _ := st.ProductByName(ctx, tn.ID, seedProduct)
	grp, _ := st.GroupByName(ctx, tn.ID, seedProduct, "Development")
	var ids []string
	for i := range n {
		id := fmt.Sprintf("cd%062x", i)
		seen := h.clock.Now().Add(-time.Duration(i+1) * 30 * time.Hour).UnixMicro()
		if _, err := storetest.DB(st).Exec(`INSERT INTO devices (id, tenant_id, product_id, group_id, state, attestation, current_release, target_release, last_seen_at, created_at, updated_at)
			VALUES ($1, $2, $3, $4, 'claimed', $5, '8.0', '', $6, 1, 1)`, id, tn.ID, prod.ID, grp.ID, attestation, seen); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

func TestDevicePages(t *testing.T) {
	eachDB(t, func(t *testing.T, h *harness) {
		a := seedTenant(t, h)
		others := addDevices(t, h, 3, "contraindicated")
		b := h.signedIn(h.admin)
		short := a.deviceID[:16]

		want(t, "overview", b.get("/"), 200, "4 devices", `href="/devices?attestation=affirming"`, "secret-thermostat / Production", "9.0")
		want(t, "all devices", b.get("/devices"), 200, short, others[0][:16])
		res := b.get("/devices?attestation=affirming")
		want(t, "affirming", res, 200, short)
		if strings.Contains(res.body, others[0][:16]) {
			t.Error("the affirming filter shows a contraindicated device")
		}
		res = b.get("/devices?update_only=true&product=" + seedProduct + "&group=Development")
		want(t, "update-only in a group", res, 200, others[0][:16], `<option selected>Development</option>`)
		if strings.Contains(res.body, short) {
			t.Error("the update-only filter shows an affirming device")
		}
		want(t, "id prefix", b.get("/devices?q=abab"), 200, short)
		want(t, "online", b.get("/devices?seen=online"), 200, short)
		want(t, "no match", b.get("/devices?release=7.7"), 200, "No device matches.")
		want(t, "bad prefix", b.get("/devices?q=XYZ"), 400, "a device ID search must be up to 64 lowercase hex digits")
		want(t, "bad sort", b.get("/devices?sort=colour"), 400, `sort "colour" is not one of id, seen, stale, release`)
		want(t, "unknown product", b.get("/devices?product=nope"), 404, "product nope not found")

		// Paging: two a page, oldest seen first, following the Next link to the end.
		var seen []string
		next := "/devices?limit=2&sort=stale"
		for range 5 {
			res := b.get(next)
			want(t, "page", res, 200)
			var onPage []string
			for _, id := range append([]string{a.deviceID}, others...) {
				if strings.Contains(res.body, `href="/devices/`+id+`"`) {
					onPage = append(onPage, id)
				}
			}
			sort.Slice(onPage, func(i, j int) bool {
				return strings.Index(res.body, onPage[i]) < strings.Index(res.body, onPage[j])
			})
			seen = append(seen, onPage...)
			i := strings.Index(res.body, `rel="next"`)
			if i < 0 {
				break
			}
			link := res.body[strings.LastIndex(res.body[:i], `href="`)+6:]
			next = "/devices" + strings.ReplaceAll(link[:strings.Index(link, `"`)], "&amp;", "&")
		}
		if diff := cmp.Diff(seen, []string{others[2], others[1], others[0], a.deviceID}); diff != "" {
			t.Errorf("pages of stale-first devices (-got +want):\n%s", diff)
		}

		res = b.get("/devices/" + a.deviceID)
		want(t, "device", res, 200, a.deviceID, "secret-thermostat / Production", "committed", "secret-install-reason", "/crashes/"+a.failureID,
			"device.install.committed", "No attestation yet.")
		want(t, "unknown device", b.get("/devices/"+strings.Repeat("ef", 32)), 404, "device "+strings.Repeat("ef", 32)+" not found")
		want(t, "bad device", b.get("/devices/xyz"), 400, `device ID "xyz" must be 64 lowercase hex digits`)
		// A reader sees the device but not its audit records, and is told why.
		r := h.signedIn(h.token(h.admin, "reader").Secret)
		want(t, "device as reader", r.get("/devices/"+a.deviceID), 200, "this endpoint needs the admin role; the token has reader")
	})
}

func TestReleaseAndCrashPages(t *testing.T) {
	eachDB(t, func(t *testing.T, h *harness) {
		a := seedTenant(t, h)
		b := h.signedIn(h.admin)
		rel := "/releases/" + seedProduct + "/" + seedRelease
		want(t, "releases", b.get("/releases?product="+seedProduct), 200, `href="`+rel+`"`, "signed", "release=9.0")
		want(t, "release", b.get(rel), 200, "targets metadata version 1", "not revoked", "Revoke release")
		want(t, "no release", b.get("/releases/"+seedProduct+"/1.2.3"), 404, "not found")
		before := h.snapshot()
		want(t, "revoke without reason", b.post(rel+"/revoke", url.Values{}), 400, "reason")
		if diff := cmp.Diff(h.snapshot(), before); diff != "" {
			t.Errorf("a refused revocation changed the database:\n%s", diff)
		}
		want(t, "revoke", b.post(rel+"/revoke", url.Values{"reason": {"CVE-2026-0001"}}), 200, "is revoked", "CVE-2026-0001")
		want(t, "revoke twice", b.post(rel+"/revoke", url.Values{"reason": {"again"}}), 409)

		want(t, "coverage", b.get("/coverage?product="+seedProduct), 200, "<svg", "Devices on secret-thermostat 9.0 or newer", "1 of 1 devices")
		want(t, "coverage of no release", b.get("/coverage?product="+seedProduct+"&release=7.0"), 404)

		want(t, "crashes", b.get("/crashes?product="+seedProduct), 200, "secretd", "secret_fn", "/crashes/"+a.failureID)
		want(t, "crash", b.get("/crashes/"+a.failureID), 200, "secret_fn", "9.0", "Mark resolved")
		want(t, "resolve", b.post("/crashes/"+a.failureID+"/resolve", nil), 200, "is resolved")
		want(t, "resolved list", b.get("/crashes?status=resolved"), 200, "/crashes/"+a.failureID)
		want(t, "bad status", b.get("/crashes?status=gone"), 400, "status must be open or resolved")

		want(t, "audit", b.get("/audit"), 200, "release.revoke", "Verify the chain")
		want(t, "audit filtered", b.get("/audit?action=session.create"), 200, "session.create")
		want(t, "audit verify", b.get("/audit/verify"), 200, "The chain is intact")
		r := h.signedIn(h.token(h.admin, "operator").Secret)
		want(t, "audit as operator", r.get("/audit"), 403, "this endpoint needs the admin role; the token has operator")

		want(t, "tokens", b.get("/tokens"), 200, a.tokenID)
		res := b.post("/tokens", url.Values{"role": {"operator"}, "description": {"ci"}})
		want(t, "token create", res, 201, "Copy its secret now", "rpt_")
		want(t, "token bad role", b.post("/tokens", url.Values{"role": {"root"}}), 400, `role "root" is not one of admin, operator, reader`)
		want(t, "token revoke", b.post("/tokens/"+a.tokenID+"/revoke", nil), 200, "was revoked")
		want(t, "token revoke twice", b.post("/tokens/"+a.tokenID+"/revoke", nil), 409, "is already revoked")
	})
}

func TestDeploymentPages(t *testing.T) {
	eachDB(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		a := seedTenant(t, h)
		b := h.signedIn(h.admin)
		dep := "/deployments/" + a.deploymentID
		want(t, "deployments", b.get("/deployments?state=active"), 200, `href="`+dep+`"`, "secret-thermostat / Production")
		want(t, "deployment", b.get(dep), 200, "Deployment 1: 9.0 to secret-thermostat / Production", `data-live="`+dep+`/events"`, "Pause", "50 %")
		want(t, "new form", b.get("/deployments/new"), 200, `value="secret-thermostat/Development"`, `name="criteria.max_install_failures"`)

		// Bad input is the API's sentence, and nothing is written.
		before := h.snapshot()
		for _, tt := range []struct {
			form   url.Values
			status int
			msg    string
		}{
			{url.Values{"group": {seedProduct + "/Development"}, "release": {seedRelease}, "phases": {"10,50"}}, 400, "the last phase must cover 100% of the group"},
			{url.Values{"group": {seedProduct + "/Development"}, "release": {seedRelease}, "criteria.max_timeouts": {"2"}}, 400, "is not a share between 0% and 100%"},
			{url.Values{"group": {seedProduct + "/Production"}, "release": {seedRelease}}, 409, "the group already has an active or paused deployment"},
			{url.Values{"group": {seedProduct + "/Development"}, "release": {"7.0"}}, 404, "release 7.0 of product secret-thermostat not found"},
			{url.Values{"group": {"junk"}, "release": {seedRelease}}, 400, "product, group and release are required"},
		} {
			want(t, "bad deployment "+tt.msg, b.post("/deployments", tt.form), tt.status, tt.msg)
		}
		if diff := cmp.Diff(h.snapshot(), before); diff != "" {
			t.Errorf("refused deployments changed the database:\n%s", diff)
		}
		res := b.post("/deployments", url.Values{"group": {seedProduct + "/Development"}, "release": {seedRelease}, "phases": {"10,100"},
			"soak": {"2h"}, "criteria.on_failure": {"abort"}})
		if res.status != http.StatusSeeOther || !strings.HasPrefix(res.header.Get("Location"), "/deployments/dep_") {
			t.Fatalf("create: status %d, Location %q; body %s", res.status, res.header.Get("Location"), res.body)
		}
		want(t, "created", b.get(res.header.Get("Location")), 200, "Deployment 2: 9.0 to secret-thermostat / Development", "10 %", "abort")

		// The live page's events: the deployment as it is, then as it changes.
		stream, cancel := b.events(t, dep+"/events")
		defer cancel()
		first := stream.next(t)
		if first.ID != a.deploymentID || first.State != "active" || first.Progress == nil || first.Progress.Installed != 1 {
			t.Fatalf("first event = %+v", first)
		}
		if _, err := h.api(h.admin).ActOnDeployment(ctx, a.deploymentID, "pause", client.DeploymentActionRequest{Reason: "looking at crashes"}); err != nil {
			t.Fatal(err)
		}
		if got := stream.next(t); got.State != "paused" || got.Reason != "looking at crashes" {
			t.Errorf("after pausing, event = %+v", got)
		}
		cancel()

		res = b.post(dep+"/resume", url.Values{"reason": {"fine"}})
		if res.status != http.StatusSeeOther {
			t.Fatalf("resume: %d %s", res.status, res.body)
		}
		want(t, "resumed", b.get(res.header.Get("Location")), 200, "The deployment is now active.")
		want(t, "resume again", b.post(dep+"/resume", nil), 409)
		want(t, "bad action", b.post(dep+"/explode", nil), 404, `no action "explode" on deployments`)
		res = b.post(dep+"/abort", url.Values{"reason": {"done"}})
		want(t, "aborted", b.get(res.header.Get("Location")), 200, "The deployment is now aborted.")
		// A final deployment's stream says so once and ends.
		stream, cancel = b.events(t, dep+"/events")
		defer cancel()
		if got := stream.next(t); got.State != "aborted" {
			t.Errorf("event of an aborted deployment = %+v", got)
		}
		if !stream.ended(t) {
			t.Error("the stream of a final deployment did not end")
		}
	})
}

// eventStream reads server-sent events.
type eventStream struct {
	sc *bufio.Scanner
}

func (b *browser) events(t *testing.T, path string) (*eventStream, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	req, _ := http.NewRequestWithContext(ctx, "GET", b.h.ts.URL+path, nil)
	res, err := b.c.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		t.Fatalf("events: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	return &eventStream{sc: bufio.NewScanner(res.Body)}, func() { cancel(); res.Body.Close() }
}

// next reads the next "deployment" event.
func (s *eventStream) next(t *testing.T) client.Deployment {
	t.Helper()
	event := ""
	for s.sc.Scan() {
		line := s.sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: ") && event == "deployment":
			var d client.Deployment
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &d); err != nil {
				t.Fatalf("event data: %v", err)
			}
			return d
		}
	}
	t.Fatalf("the stream ended without another deployment event: %v", s.sc.Err())
	return client.Deployment{}
}

// ended reports whether the stream closes with no further event.
func (s *eventStream) ended(t *testing.T) bool {
	t.Helper()
	for s.sc.Scan() {
		if strings.HasPrefix(s.sc.Text(), "event: ") {
			return false
		}
	}
	return s.sc.Err() == nil
}

func TestReportPages(t *testing.T) {
	eachDB(t, func(t *testing.T, h *harness) {
		a := seedTenant(t, h)
		b := h.signedIn(h.admin)
		rep := fmt.Sprintf("/reports/%d", a.report)
		want(t, "queue", b.get("/reports?state=new"), 200, seedReportTitle, "waiting", `href="`+rep+`"`)
		want(t, "overview clocks", b.get("/"), 200, "not scored", "Awaiting first response")
		want(t, "report", b.get(rep), 200, seedReportTitle, "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "report 1 is new; triage it before an award")
		// The calculator: metrics chosen build the vector, which the API scores.
		calc := url.Values{"m_AV": {"N"}, "m_AC": {"L"}, "m_PR": {"N"}, "m_UI": {"N"}, "m_S": {"U"}, "m_C": {"H"}, "m_I": {"H"}, "m_A": {"H"}}
		want(t, "calculator", b.get(rep+"?"+calc.Encode()), 200, "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H</code> scores <strong>9.8</strong> (critical",
			"<option selected>critical</option>")
		want(t, "bad vector", b.get(rep+"?vector=CVSS:3.1/AV:Q"), 200, `role="alert"`)
		want(t, "bad report number", b.get("/reports/abc"), 400, `report number "abc" must be a positive whole number`)

		before := h.snapshot()
		want(t, "bad impact", b.post(rep+"/triage", url.Values{"state": {"triaged"}, "impact": {"time-travel"}}), 400, `impact is not part of the program: "time-travel"`)
		want(t, "bad duplicate", b.post(rep+"/triage", url.Values{"state": {"duplicate"}, "duplicate_of": {"x"}}), 400, "must be a report number")
		want(t, "award too early", b.post(rep+"/award", nil), 409, "triage it before an award")
		want(t, "empty comment", b.post(rep+"/comments", url.Values{"body": {""}}), 400)
		if diff := cmp.Diff(h.snapshot(), before); diff != "" {
			t.Errorf("refused report changes wrote to the database:\n%s", diff)
		}
		for _, step := range []struct {
			path string
			form url.Values
			done string
		}{
			{"/comments", url.Values{"body": {"Thanks, reproducing."}}, "commented"},
			{"/triage", url.Values{"state": {"triaged"}, "impact": {"remote-code-execution"}, "severity": {"critical"}, "quality": {"high"}}, "triaged: triaged"},
		} {
			res := b.post(rep+step.path, step.form)
			if res.status != http.StatusSeeOther {
				t.Fatalf("%s: %d %s", step.path, res.status, res.body)
			}
			want(t, step.path, b.get(res.header.Get("Location")), 200, "Done: "+step.done)
		}
		res := b.get(rep)
		want(t, "award preview", res, 200, "Thanks, reproducing.", "The rules pay", "USD")
		res = b.post(rep+"/award", nil)
		if res.status != http.StatusSeeOther {
			t.Fatalf("award: %d %s", res.status, res.body)
		}
		want(t, "awarded", b.get(res.header.Get("Location")), 200, "Done: awarded", "Award ledger")
		want(t, "override without reason", b.post(rep+"/award", url.Values{"override": {"5"}}), 400)
		want(t, "bad fix", b.post(rep+"/fix", url.Values{"affected": {"26.07.1"}, "fixed": {"0.0.0"}}), 404)
		want(t, "advisory before a fix", b.post(rep+"/advisory", url.Values{"format": {"csaf"}, "namespace": {"https://example.com"}}), 409)

		// A fix: two signed releases of the report's product, then the advisory as a download.
		ctx := context.Background()
		st := h.srv.Store()
		tn, _ := st.TenantByName(ctx, "default")
		prod, _ := st.ProductByName(ctx, tn.ID, "edge-gateway")
		for i, v := range []string{"26.07.1", "26.07.2"} {
			if _, err := storetest.DB(st).Exec(`INSERT INTO releases (id, tenant_id, product_id, version, state, targets_version, revoked_reason, created_at, signed_at)
				VALUES ($1, $2, $3, $4, 'signed', 1, '', $5, $5)`, fmt.Sprintf("rel_fix%d", i), tn.ID, prod.ID, v, h.clock.Now().UnixMicro()+int64(i)); err != nil {
				t.Fatal(err)
			}
		}
		res = b.post(rep+"/fix", url.Values{"affected": {"26.07.1"}, "fixed": {"26.07.2"}})
		if res.status != http.StatusSeeOther {
			t.Fatalf("link fix: %d %s", res.status, res.body)
		}
		want(t, "fixed", b.get(res.header.Get("Location")), 200, "Done: fix linked: 26.07.2", "Fixed in")
		res = b.post(rep+"/advisory", url.Values{"format": {"csaf"}, "namespace": {"https://example.com"}})
		if res.status != http.StatusOK || !strings.HasPrefix(res.header.Get("Content-Disposition"), "attachment") || !json.Valid([]byte(res.body)) ||
			!strings.Contains(res.body, "csaf") {
			t.Errorf("advisory: %d %v %.300s", res.status, res.header, res.body)
		}
		want(t, "advisory without namespace", b.post(rep+"/advisory", url.Values{"format": {"csaf"}}), 400)

		want(t, "programs", b.get("/programs"), 200, "edge-challenge")
		want(t, "program report", b.get("/programs/edge-challenge"), 200, "Median time from submission", "first response")
		r := h.signedIn(h.token(h.admin, "operator").Secret)
		want(t, "operator awards", r.post(rep+"/award", nil), 403, "this endpoint needs the admin role; the token has operator")
	})
}
