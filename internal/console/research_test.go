package console_test

import (
	"bytes"
	"context"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// portalProbes are the researcher portal's routes for TestConsoleTenantIsolation, sent with
// another tenant's operator session: the portal answers only a researcher's session.
func portalProbes() map[string]consoleProbe {
	return map[string]consoleProbe{
		"GET /research/login":   {"GET", "/research/login", nil, 0},
		"POST /research/login":  {"POST", "/research/login", url.Values{"token": {"rrt_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}}, http.StatusUnauthorized},
		"POST /research/logout": {"POST", "/research/logout", nil, 0},
		"GET /research/apply":   {"GET", "/research/apply", nil, 0},
		"POST /research/apply": {"POST", "/research/apply", url.Values{"tenant": {"default"}, "program": {"no-such-program"}, "name": {"M"},
			"email": {"m@x.example"}, "country": {"DE"}, "experience": {"x"}}, http.StatusNotFound},
		"GET /research/{$}":                               {"GET", "/research/", nil, http.StatusUnauthorized},
		"GET /research/programs/{program}":                {"GET", "/research/programs/edge-challenge", nil, http.StatusUnauthorized},
		"POST /research/programs/{program}/application":   {"POST", "/research/programs/edge-challenge/application", url.Values{"country": {"DE"}, "experience": {"x"}}, http.StatusUnauthorized},
		"POST /research/programs/{program}/reports":       {"POST", "/research/programs/edge-challenge/reports", url.Values{"title": {"t"}}, http.StatusUnauthorized},
		"GET /research/reports/{number}":                  {"GET", "/research/reports/1", nil, http.StatusUnauthorized},
		"POST /research/reports/{number}/comments":        {"POST", "/research/reports/1/comments", url.Values{"body": {"x"}}, http.StatusUnauthorized},
		"POST /research/reports/{number}/attachments":     {"POST", "/research/reports/1/attachments", nil, http.StatusUnauthorized},
		"GET /research/reports/{number}/attachments/{id}": {"GET", "/research/reports/1/attachments/att_x", nil, http.StatusUnauthorized},
	}
}

// portalSeed is a program with two accepted researchers and a report of Ada's with a file.
type portalSeed struct {
	ada, bob     string // researcher tokens
	report       int64
	attachmentID string
	title        string
}

func openRules(t *testing.T) string {
	t.Helper()
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
	return strings.Join(keep, "\n")
}

func seedPortal(t *testing.T, h *harness) portalSeed {
	t.Helper()
	ctx := context.Background()
	ac := h.api(h.admin)
	if _, err := ac.CreateProduct(ctx, client.CreateProductRequest{Name: "edge-gateway"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ac.CreateProgram(ctx, client.CreateProgramRequest{Name: "edge-challenge", Rules: openRules(t)}); err != nil {
		t.Fatal(err)
	}
	apply := func(name string) string {
		res, err := h.api("").Apply(ctx, client.ApplyRequest{Tenant: "default", Program: "edge-challenge", Name: name,
			Email: strings.ToLower(name) + "@example.org", Country: "GB", Experience: "embedded exploitation"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ac.AcceptApplication(ctx, "edge-challenge", res.Application.ID, "welcome"); err != nil {
			t.Fatal(err)
		}
		return res.Token
	}
	s := portalSeed{ada: apply("Ada"), bob: apply("Bob"), title: "Secret overflow of Ada"}
	rep, err := h.api(s.ada).SubmitReport(ctx, "edge-challenge", client.SubmitReportRequest{Title: s.title,
		Description: "A crafted manifest overflows a heap buffer.", Scenario: "remote-code-execution", Product: "edge-gateway",
		Components: []string{"update-agent"}, CVSS31: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"})
	if err != nil {
		t.Fatal(err)
	}
	s.report = rep.Number
	att, err := h.api(s.ada).Attach(ctx, rep.Number, "poc.py", strings.NewReader("print('ada poc')"))
	if err != nil {
		t.Fatal(err)
	}
	s.attachmentID = att.ID
	return s
}

// researcher is a browser signed in to the portal with a researcher token.
func (h *harness) researcher(tok string) *browser {
	h.t.Helper()
	b := h.browser()
	res := b.post("/research/login", url.Values{"token": {tok}})
	if res.status != http.StatusSeeOther || res.header.Get("Location") != "/research/" {
		h.t.Fatalf("portal sign-in: %d %s\n%s", res.status, res.header.Get("Location"), res.body)
	}
	return b
}

// postFiles posts a multipart form with files (name -> content) in the field "files".
func (b *browser) postFiles(path string, form url.Values, files map[string]string) response {
	b.h.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for k, vs := range form {
		for _, v := range vs {
			mw.WriteField(k, v)
		}
	}
	for name, content := range files {
		fw, _ := mw.CreateFormFile("files", name)
		fw.Write([]byte(content))
	}
	mw.Close()
	req, _ := http.NewRequest("POST", b.h.ts.URL+path, &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return b.do(req)
}

// TestPortalWalk: a researcher signs in, submits a report with a file and CVSS vectors,
// writes to the team, and follows the report through triage, award and fix to the share of the
// fleet on the fix, never seeing a device.
func TestPortalWalk(t *testing.T) {
	eachDB(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		s := seedPortal(t, h)
		ada := h.researcher(s.ada)
		home := ada.get("/research/")
		checkPageSecurity(t, home)
		for _, want := range []string{"Ada", `href="/research/programs/edge-challenge"`, "accepted", s.title} {
			if !strings.Contains(home.body, want) {
				t.Errorf("home lacks %q:\n%s", want, home.body)
			}
		}
		prog := ada.get("/research/programs/edge-challenge")
		if prog.status != 200 || !strings.Contains(prog.body, "Submit a report") || !strings.Contains(prog.body, "update-agent") {
			t.Fatalf("program page: %d\n%s", prog.status, prog.body)
		}
		checkPageSecurity(t, prog)

		// Submit with a file.
		form := url.Values{"title": {"Signature check skipped on delta images"}, "description": {"Deltas are applied before their hash is checked."},
			"scenario": {"remote-code-execution"}, "product": {"edge-gateway"}, "components": {"update-agent"}, "releases": {"26.07.1, 26.06.0"},
			"cvss31": {"CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H"}, "cvss40": {""}}
		res := ada.postFiles("/research/programs/edge-challenge/reports", form, map[string]string{"delta-poc.bin": "not a real delta"})
		if res.status != http.StatusSeeOther || !strings.HasPrefix(res.header.Get("Location"), "/research/reports/") {
			t.Fatalf("submit: %d %s\n%s", res.status, res.header.Get("Location"), res.body)
		}
		path := res.header.Get("Location")
		var number int64
		fmt.Sscanf(strings.TrimPrefix(path, "/research/reports/"), "%d", &number)
		page := ada.get(path)
		checkPageSecurity(t, page)
		for _, want := range []string{"Signature check skipped on delta images", "8.1", "CVSS:3.1/AV:N/AC:H", "26.07.1, 26.06.0", "delta-poc.bin",
			"you submitted the report", "you attached a file", "No award decided yet", "No fix linked yet"} {
			if !strings.Contains(page.body, want) {
				t.Errorf("report page lacks %q:\n%s", want, page.body)
			}
		}
		// The file comes back as a download.
		atts, err := h.api(s.ada).ResearcherAttachments(ctx, number)
		if err != nil || len(atts) != 1 {
			t.Fatalf("attachments: %v %v", atts, err)
		}
		dl := ada.get(fmt.Sprintf("%s/attachments/%s", path, atts[0].ID))
		if dl.status != 200 || dl.body != "not a real delta" || !strings.Contains(dl.header.Get("Content-Disposition"), `attachment; filename=delta-poc.bin`) ||
			dl.header.Get("Content-Type") != "application/octet-stream" {
			t.Errorf("download: %d %v %q", dl.status, dl.header, dl.body)
		}
		// A message to the team.
		if res := ada.post(path+"/comments", url.Values{"body": {"Happy to help reproduce."}}); res.status != http.StatusSeeOther {
			t.Fatalf("comment: %d %s", res.status, res.body)
		}

		// The team: triage, answer, award with the rules, sign the releases, link the fix.
		ac := h.api(h.admin)
		if _, err := ac.CommentReport(ctx, number, "Reproduced, thanks."); err != nil {
			t.Fatal(err)
		}
		if _, err := ac.TriageReport(ctx, number, client.TriageRequest{State: "triaged", Impact: "remote-code-execution", Severity: "critical", Quality: "high"}); err != nil {
			t.Fatal(err)
		}
		if _, err := ac.AwardReport(ctx, number, client.AwardRequest{}); err != nil {
			t.Fatal(err)
		}
		linkFix(t, h, number)

		page = ada.get(path)
		for _, want := range []string{"48,000 USD", "How the rules compute it", "base range for remote-code-execution/critical", "Reproduced, thanks.",
			"Happy to help reproduce.", "team: new → <strong>triaged</strong>", "the team decided the award", `id="fix-release">26.07.2</strong>`,
			`id="fix-coverage">50.0 %</span>`, "w50"} {
			if !strings.Contains(page.body, want) {
				t.Errorf("report page after the fix lacks %q:\n%s", want, page.body)
			}
		}
		for _, leak := range []string{fmt.Sprintf("%064x", 0), fmt.Sprintf("%064x", 3), "token:", "tok_"} {
			if strings.Contains(page.body, leak) {
				t.Errorf("the researcher's page holds %q", leak)
			}
		}
		// Signing out ends the session.
		if res := ada.post("/research/logout", nil); res.status != 200 || !strings.Contains(res.body, "You are signed out.") {
			t.Errorf("sign-out: %d %s", res.status, res.body)
		}
		if res := ada.get("/research/"); res.status != http.StatusSeeOther || !strings.HasPrefix(res.header.Get("Location"), "/research/login") {
			t.Errorf("after sign-out: %d %s", res.status, res.header.Get("Location"))
		}
	})
}

// linkFix makes two signed releases of edge-gateway, four devices of which two run the fix,
// and links the report's fix.
func linkFix(t *testing.T, h *harness, number int64) {
	t.Helper()
	ctx := context.Background()
	ac := h.api(h.admin)
	for _, v := range []string{"26.07.1", "26.07.2"} {
		content := "rootfs " + v
		img, err := ac.AddImage(ctx, strings.NewReader(content), int64(len(content)), "update-agent", v, 1)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ac.CreateRelease(ctx, "edge-gateway", client.CreateReleaseRequest{Version: v, Images: []string{img.ID}}); err != nil {
			t.Fatal(err)
		}
	}
	db := storetest.DB(h.srv.Store())
	var tenant, product, group string
	if err := db.QueryRow(`SELECT p.tenant_id, p.id, g.id FROM products p JOIN device_groups g ON g.product_id = p.id WHERE p.name = 'edge-gateway' AND g.name = 'Production'`).Scan(&tenant, &product, &group); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		rel := "26.07.1"
		if i < 2 {
			rel = "26.07.2"
		}
		if _, err := db.Exec(`INSERT INTO devices (id, tenant_id, product_id, group_id, state, attestation, current_release, target_release, created_at, updated_at)
			VALUES ($1, $2, $3, $4, 'claimed', '', $5, '', 1, 1)`, fmt.Sprintf("%064x", i), tenant, product, group, rel); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ac.LinkFix(ctx, number, client.LinkFixRequest{Affected: []string{"26.07.1"}, Fixed: "26.07.2"}); err != nil {
		t.Fatal(err)
	}
}

// TestPortalIsolation: Bob, another accepted researcher, is refused every page and action on
// Ada's report with the API's 404, and nothing is written; an operator's session opens no portal
// page and a researcher's no operator page.
func TestPortalIsolation(t *testing.T) {
	eachDB(t, func(t *testing.T, h *harness) {
		s := seedPortal(t, h)
		bob := h.researcher(s.bob)
		rep := fmt.Sprintf("/research/reports/%d", s.report)
		for _, p := range []consoleProbe{
			{"GET", rep, nil, http.StatusNotFound},
			{"POST", rep + "/comments", url.Values{"body": {"mine now"}}, http.StatusNotFound},
			{"POST", rep + "/attachments", nil, http.StatusNotFound},
			{"GET", rep + "/attachments/" + s.attachmentID, nil, http.StatusNotFound},
		} {
			t.Run(p.method+" "+p.path, func(t *testing.T) {
				before := h.snapshot()
				var res response
				switch {
				case p.method == "GET":
					res = bob.get(p.path)
				case strings.HasSuffix(p.path, "/attachments"):
					res = bob.postFiles(p.path, nil, map[string]string{"x.txt": "x"})
				default:
					res = bob.post(p.path, p.form)
				}
				if res.status != p.want || !strings.Contains(res.body, fmt.Sprintf("report %d not found", s.report)) || !strings.Contains(res.body, `role="alert"`) {
					t.Errorf("status %d, want %d with the API's sentence\n%s", res.status, p.want, res.body)
				}
				for _, l := range []string{s.title, "ada poc", "Ada"} {
					if strings.Contains(res.body, l) {
						t.Errorf("Bob's page holds Ada's %q", l)
					}
				}
				after := h.snapshot()
				// The researcher API audits each refusal of an authenticated researcher; nothing else is written.
				if got := after["audit_records"] - before["audit_records"]; got != 1 {
					t.Errorf("%d audit records, want the refusal's", got)
				}
				delete(after, "audit_records")
				delete(before, "audit_records")
				for k := range after {
					if after[k] != before[k] {
						t.Errorf("%s changed: %d -> %d", k, before[k], after[k])
					}
				}
			})
		}
		if home := bob.get("/research/"); strings.Contains(home.body, s.title) {
			t.Errorf("Bob's home lists Ada's report")
		}
		// Sessions do not cross: an operator on the portal, a researcher on the console.
		op := h.signedIn(h.admin)
		if res := op.get("/research/"); res.status != http.StatusUnauthorized || !strings.Contains(res.body, "the researcher portal needs a researcher token") {
			t.Errorf("operator on the portal: %d\n%s", res.status, res.body)
		}
		if res := bob.get("/"); res.status != http.StatusUnauthorized || !strings.Contains(res.body, "the operator console needs an operator") {
			t.Errorf("researcher on the console: %d\n%s", res.status, res.body)
		}
		// A revoked researcher token ends the session.
		ctx := context.Background()
		me, err := h.api(s.bob).ResearcherMe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.api(h.admin).RevokeResearcherToken(ctx, me.ID, client.RevokeResearcherTokenRequest{Reason: "leaked"}); err != nil {
			t.Fatal(err)
		}
		if res := bob.get("/research/"); res.status != http.StatusUnauthorized || !strings.Contains(res.body, "your researcher token was revoked") {
			t.Errorf("after revocation: %d\n%s", res.status, res.body)
		}
	})
}

// TestPortalBadInput: bad input is refused on the page with the sentence and writes nothing;
// a form from another site is refused.
func TestPortalBadInput(t *testing.T) {
	h := newHarness(t, "sqlite")
	s := seedPortal(t, h)
	ada := h.researcher(s.ada)
	good := url.Values{"title": {"t"}, "description": {"d"}, "scenario": {"general"}, "product": {"edge-gateway"}, "components": {"kernel"}}
	with := func(k, v string) url.Values {
		f := url.Values{}
		for kk, vv := range good {
			f[kk] = vv
		}
		f.Set(k, v)
		return f
	}
	for _, tc := range []struct {
		name   string
		form   url.Values
		files  map[string]string
		status int
		want   string
	}{
		{"malformed vector", with("cvss31", "CVSS:3.1/AV:N"), nil, 400, "invalid CVSS vector"},
		{"component out of scope", with("components", "modem"), nil, 400, "is not a component of"},
		{"empty title", with("title", ""), nil, 400, "title: required"},
		{"file with a path", good, map[string]string{"../etc/passwd": "x"}, 0, ""},
		{"empty file", good, map[string]string{"empty.txt": ""}, 400, "empty.txt: attachment is empty"},
		{"oversized file", good, map[string]string{"big.bin": strings.Repeat("x", 20<<20+1)}, 413, "big.bin: attachment is larger than the program allows"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := h.snapshot()
			res := ada.postFiles("/research/programs/edge-challenge/reports", tc.form, tc.files)
			if tc.status == 0 {
				// A browser sends only the base name; so does the portal: the file is kept as passwd.
				if res.status != http.StatusSeeOther {
					t.Errorf("status %d\n%s", res.status, res.body)
				}
				return
			}
			if res.status != tc.status || !strings.Contains(res.body, tc.want) || !strings.Contains(res.body, `role="alert"`) {
				t.Errorf("status %d, want %d with %q\n%s", res.status, tc.status, tc.want, res.body)
			}
			after := h.snapshot()
			delete(after, "audit_records")
			delete(before, "audit_records")
			for k := range after {
				if after[k] != before[k] {
					t.Errorf("%s changed: %d -> %d", k, before[k], after[k])
				}
			}
		})
	}
	before := h.snapshot()
	if res := ada.postWith(fmt.Sprintf("/research/reports/%d/comments", s.report), url.Values{"body": {"forged"}}, "cross-site", ""); res.status != http.StatusForbidden {
		t.Errorf("cross-site comment: %d", res.status)
	}
	if after := h.snapshot(); after["report_comments"] != before["report_comments"] {
		t.Errorf("a forged comment was written")
	}
}

// TestPortalApply: a new researcher applies without a token and gets one, once; applying again
// with the same address is refused with the API's sentence.
func TestPortalApply(t *testing.T) {
	h := newHarness(t, "sqlite")
	seedPortal(t, h)
	b := h.browser()
	form := url.Values{"tenant": {"default"}, "program": {"edge-challenge"}, "name": {"Grace"}, "email": {"grace@example.org"},
		"country": {"US"}, "experience": {"compilers"}}
	res := b.post("/research/apply", form)
	if res.status != http.StatusCreated || !strings.Contains(res.body, "Application sent") || !strings.Contains(res.body, "rrt_") {
		t.Fatalf("apply: %d\n%s", res.status, res.body)
	}
	i := strings.Index(res.body, "rrt_")
	tok := res.body[i : i+strings.IndexAny(res.body[i:], "<\n ")]
	grace := h.researcher(tok)
	if home := grace.get("/research/"); !strings.Contains(home.body, "applied") {
		t.Errorf("Grace's home: %s", home.body)
	}
	if res := b.post("/research/apply", form); res.status != http.StatusConflict || !strings.Contains(res.body, "already registered") {
		t.Errorf("second application: %d\n%s", res.status, res.body)
	}
}
