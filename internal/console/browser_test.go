package console_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/browsertest"
	"github.com/rampartsec/rampart/internal/cli"
	"github.com/rampartsec/rampart/internal/cli/clitest"
	"github.com/rampartsec/rampart/internal/server"
	"github.com/rampartsec/rampart/internal/sim"
	"github.com/rampartsec/rampart/internal/testenv"
)

// ShotsEnv names a folder that TestBrowserWalk fills with a picture of each main page as it
// walks (the pictures of doc/console.md: see that file for the command).
const shotsEnv = "RAMPART_CONSOLE_SHOTS"

// browserDevices is the simulated fleet's size: enough for a phase of half the group.
const browserDevices = 6

// TestBrowserWalk drives the console and the researcher portal in a real headless Chromium,
// against a real server whose devices are simulated agents running in this process: an
// operator signs in with a token, finds a device by filter and opens it, creates a deployment
// and watches its counts change on the page, without reloading it, while the devices install,
// then pauses it; a researcher signs in at /research/login and submits a report; the operator
// scores it with the CVSS calculator, triages and awards it and links the fix; the researcher
// then sees the award and the share of the fleet that runs the fix. A failed step saves a
// screenshot and the page's text, and says where.
func TestBrowserWalk(t *testing.T) {
	if browsertest.Path() == "" {
		testenv.Missing(t, "Chromium", "install Debian's chromium package (apt-get install chromium), or set RAMPART_CHROMIUM to a Chromium binary")
	}
	ctx := context.Background()
	shots := os.Getenv(shotsEnv)
	if shots != "" {
		if err := os.MkdirAll(shots, 0o755); err != nil {
			t.Fatal(err)
		}
	}

	// The server, set up as doc/updates.md leaves it: product lamp, offline keys, two signed
	// releases, and a research program whose scope is lamp.
	w := clitest.StartFleet(t, cli.Root, func(c *server.Config) { c.LiveEvery = 100 * time.Millisecond })
	for i, v := range []string{"1.0.0", "1.1.0"} {
		r := rand.New(rand.NewPCG(uint64(i+1), 1))
		img := make([]byte, 16<<10)
		for j := range img {
			img[j] = byte(r.Uint32())
		}
		w.Release(t, v, img)
	}
	rules := strings.ReplaceAll(openRules(t), "edge-gateway", "lamp")
	if _, err := w.API.CreateProgram(ctx, client.CreateProgramRequest{Name: "edge-challenge", Rules: rules}); err != nil {
		t.Fatal(err)
	}
	anon, err := client.New(w.URL, client.WithCAFile(w.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	applied, err := anon.Apply(ctx, client.ApplyRequest{Tenant: "default", Program: "edge-challenge", Name: "Ada", Email: "ada@example.org",
		Country: "GB", Experience: "embedded exploitation"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.API.AcceptApplication(ctx, "edge-challenge", applied.Application.ID, "welcome"); err != nil {
		t.Fatal(err)
	}

	// The fleet: simulated agents enrolled, claimed into lamp/Production and running 1.0.0.
	fleet := w.Sim(t, sim.Config{Devices: browserDevices, Interval: time.Second, WaitTimeout: time.Second, Seed: 16})
	w.Deploy(t, "1.0.0")
	if err := fleet.Start(ctx); err != nil {
		t.Fatal(err)
	}
	stop := clitest.RunSim(t, fleet)
	ids := fleet.DeviceIDs()
	for i, id := range ids {
		testenv.WaitFor(t, fmt.Sprintf("device %d on 1.0.0", i+1), func() bool {
			d, err := w.API.GetDevice(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			return d.CurrentRelease == "1.0.0"
		})
	}
	stop() // until the deployment's page is open
	if dep, err := w.API.GetDeployment(ctx, w.Deployment); err != nil {
		t.Fatal(err)
	} else if dep.State == "active" || dep.State == "paused" {
		if _, err := w.API.ActOnDeployment(ctx, w.Deployment, "abort", client.DeploymentActionRequest{Reason: "1.0.0 is on every device"}); err != nil {
			t.Fatal(err)
		}
	}

	// The browser trusts the server's certificate by its key, as a user who added its CA would.
	op := browsertest.New(t, browsertest.Options{TrustCerts: serverCerts(t, w.URL, w.Roots), Width: 1280, Height: 800})
	// Pictures are of the window at 1280x800.
	size := func(b *browsertest.Browser) {
		if shots != "" {
			b.Run("size the window for pictures", chromedp.EmulateViewport(1280, 800))
		}
	}
	size(op)
	shot := func(b *browsertest.Browser, name string) {
		t.Helper()
		if shots == "" {
			return
		}
		if err := b.ShotPNG(filepath.Join(shots, name+".png")); err != nil {
			t.Fatalf("picture %s: %v", name, err)
		}
	}
	text := func(b *browsertest.Browser) string {
		t.Helper()
		return browsertest.Value(b, "read the page's text", chromedp.Evaluate[string](`document.body.innerText`))
	}
	// loaded waits until the page at path has loaded, after a click that navigates.
	loaded := func(b *browsertest.Browser, what, pathPrefix string) {
		t.Helper()
		b.Run(what, browsertest.Until(fmt.Sprintf(`location.pathname.startsWith(%q) && document.readyState === "complete"`, pathPrefix)))
	}

	// Sign in with a token.
	op.Run("open the sign-in form", chromedp.Navigate(w.URL+"/login"), chromedp.WaitVisible(chromedp.CSS("#token")))
	shot(op, "login")
	op.Run("sign in with the token",
		chromedp.SendKeys(chromedp.CSS("#token"), w.Admin),
		chromedp.Click(chromedp.CSS(`form[action="/login"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS("form.who")))
	if got := op.Location(); got != w.URL+"/" {
		t.Errorf("after signing in the browser is at %s, want the overview", got)
	}

	// Find a device by filter and open it.
	want := ids[2]
	op.Run("open the device list", chromedp.Navigate(w.URL+"/devices"), chromedp.WaitVisible(chromedp.CSS("#f-q")))
	if n := browsertest.Value(op, "count the devices", chromedp.Evaluate[int](`document.querySelectorAll("main tbody a[href^='/devices/']").length`)); n != browserDevices {
		t.Errorf("the unfiltered list shows %d devices, want %d", n, browserDevices)
	}
	shot(op, "devices")
	op.Run("filter by product and ID",
		chromedp.SetValue(chromedp.CSS("#f-product"), "lamp"),
		chromedp.SendKeys(chromedp.CSS("#f-q"), want[:12]),
		chromedp.Click(chromedp.CSS("form.filters button[type=submit]")),
		browsertest.Until(fmt.Sprintf(`location.search.includes("q=%s") && document.readyState === "complete"`, want[:12])))
	links := browsertest.Value(op, "read the filtered list", chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll("main tbody a[href^='/devices/']"), a => a.getAttribute("href"))`))
	if len(links) != 1 || links[0] != "/devices/"+want {
		t.Fatalf("the filtered list links %v, want only /devices/%s", links, want)
	}
	if loc := op.Location(); !strings.Contains(loc, "product=lamp") {
		t.Errorf("the filtered list's address %s does not keep the product filter", loc)
	}
	op.Run("open the device", chromedp.Click(chromedp.CSS(`main tbody a[href="/devices/`+want+`"]`)))
	loaded(op, "the device page", "/devices/"+want)
	op.Run("the device's identity", chromedp.WaitVisible(chromedp.CSS("#id-h")))
	if page := text(op); !strings.Contains(page, want) || !strings.Contains(page, "1.0.0") || !strings.Contains(page, "lamp") {
		t.Errorf("the device page lacks its ID, product or release:\n%s", page)
	}
	shot(op, "device")

	// The researcher, in a browser of their own, submits a report.
	rs := op.Isolated()
	size(rs)
	rs.Run("open the portal's sign-in form", chromedp.Navigate(w.URL+"/research/login"), chromedp.WaitVisible(chromedp.CSS("#token")))
	rs.Run("sign in as the researcher",
		chromedp.SendKeys(chromedp.CSS("#token"), applied.Token),
		chromedp.Click(chromedp.CSS(`form[action="/research/login"] button[type=submit]`)),
		browsertest.Until(`location.pathname === "/research/" && document.readyState === "complete"`))
	const (
		title       = "Delta images applied before their hash is checked"
		researcherV = "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H"
	)
	rs.Run("open the program", chromedp.Navigate(w.URL+"/research/programs/edge-challenge"), chromedp.WaitVisible(chromedp.CSS("#title")))
	rs.Run("fill in the report",
		chromedp.SendKeys(chromedp.CSS("#title"), title),
		chromedp.SendKeys(chromedp.CSS("#description"), "A crafted delta is applied to the inactive slot before its hash is verified."),
		chromedp.SetValue(chromedp.CSS("#scenario"), "remote-code-execution"),
		chromedp.SetValue(chromedp.CSS("#product"), "lamp"),
		chromedp.Click(chromedp.CSS(`input[name=components][value="update-agent"]`)),
		chromedp.SendKeys(chromedp.CSS("#releases"), "1.0.0"),
		chromedp.SendKeys(chromedp.CSS("#cvss31"), researcherV))
	shot(rs, "portal-submit")
	rs.Run("submit the report", chromedp.Click(chromedp.CSS(`form[action$="/reports"] button[type=submit]`)))
	loaded(rs, "the report's page", "/research/reports/")
	number, err := strconv.ParseInt(strings.TrimPrefix(browsertest.Value(rs, "read the path", chromedp.Evaluate[string](`location.pathname`)), "/research/reports/"), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	if page := text(rs); !strings.Contains(page, title) || !strings.Contains(page, researcherV) || !strings.Contains(page, "8.1") {
		t.Errorf("the researcher's report page lacks the title or the vector and its score:\n%s", page)
	}

	// The operator creates a deployment of 1.1.0 to half the group, then a soak.
	op.Run("open the new deployment form", chromedp.Navigate(w.URL+"/deployments/new"), chromedp.WaitVisible(chromedp.CSS("#n-release")))
	op.Run("fill in the deployment",
		chromedp.SetValue(chromedp.CSS("#n-group"), "lamp/Production"),
		chromedp.SendKeys(chromedp.CSS("#n-release"), "1.1.0"),
		chromedp.SendKeys(chromedp.CSS("#n-phases"), "50,100"),
		chromedp.SendKeys(chromedp.CSS("#n-soak"), "1h"))
	shot(op, "deployment-new")
	op.Run("create the deployment", chromedp.Click(chromedp.CSS(`form[action="/deployments"] button[type=submit]`)))
	loaded(op, "the deployment's page", "/deployments/dep")
	depID := strings.TrimPrefix(browsertest.Value(op, "read the path", chromedp.Evaluate[string](`location.pathname`)), "/deployments/")
	installed := `document.querySelector('[data-field="progress.installed"]').textContent`
	op.Run("wait for the live updates", browsertest.Until(`document.querySelector("[data-live-status]").textContent.startsWith("Updated")`))
	if got := browsertest.Value(op, "read the installed count", chromedp.Evaluate[string](installed)); got != "0" {
		t.Fatalf("before the devices check in the page counts %q installed, want 0", got)
	}
	// A mark that a reload would wipe: the counts must change in this same page.
	op.Run("mark the page", browsertest.Eval(`window.rampartSamePage = true`))
	stop = clitest.RunSim(t, fleet)
	defer stop()
	op.RunWithin(3*time.Minute, "watch the devices install", browsertest.Until(installed+` !== "0"`))
	if same := browsertest.Value(op, "read the mark", chromedp.Evaluate[bool](`window.rampartSamePage === true`)); !same {
		t.Error("the page was reloaded to show the progress")
	}
	// The phase's devices all install; the count follows to the phase's size.
	dep, err := w.API.GetDeployment(ctx, depID)
	if err != nil {
		t.Fatal(err)
	}
	phase := dep.Phases[0].Devices
	if phase < 1 || phase >= browserDevices {
		t.Fatalf("phase 1 holds %d of %d devices", phase, browserDevices)
	}
	op.RunWithin(3*time.Minute, "watch the phase complete", browsertest.Until(fmt.Sprintf(`%s === "%d"`, installed, phase)))
	if same := browsertest.Value(op, "read the mark", chromedp.Evaluate[bool](`window.rampartSamePage === true`)); !same {
		t.Error("the page was reloaded to show the progress")
	}
	shot(op, "deployment")

	// Pause it from the page.
	op.Run("pause the deployment",
		chromedp.SendKeys(chromedp.CSS("#a-reason"), "checking the crash rate first"),
		chromedp.Click(chromedp.CSS(`form[action$="/pause"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`form[action$="/resume"]`)))
	if got := browsertest.Value(op, "read the state", chromedp.Evaluate[string](`document.querySelector('[data-field="state"]').textContent`)); got != "paused" {
		t.Errorf("the page shows the state %q after pausing, want paused", got)
	}
	if dep, err := w.API.GetDeployment(ctx, depID); err != nil || dep.State != "paused" || !strings.Contains(dep.Reason, "checking the crash rate first") {
		t.Errorf("after pausing in the page the API shows %q (%q), %v", dep.State, dep.Reason, err)
	}

	// Score, triage, award and link the fix of the researcher's report (linking the fix resolves it).
	rep := fmt.Sprintf("/reports/%d", number)
	op.Run("open the report queue", chromedp.Navigate(w.URL+"/reports"), chromedp.WaitVisible(chromedp.CSS(`a[href="`+rep+`"]`)))
	shot(op, "reports")
	op.Run("open the report", chromedp.Click(chromedp.CSS(`main a[href="`+rep+`"]`)))
	loaded(op, "the report's page", rep)
	op.Run("the calculator", chromedp.WaitVisible(chromedp.CSS("#cvss-h")))
	if page := text(op); !strings.Contains(page, researcherV) {
		t.Errorf("the report page does not show the researcher's vector %s:\n%s", researcherV, page)
	}
	const teamV = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
	op.Run("choose the metrics", browsertest.Eval(`(() => {
		const v = {AV: "N", AC: "L", PR: "N", UI: "N", S: "U", C: "H", I: "H", A: "H"};
		for (const [k, x] of Object.entries(v)) {
			const s = document.querySelector('select[data-metric="' + k + '"]');
			s.value = x;
			s.dispatchEvent(new Event("change"));
		}
	})()`))
	if got := browsertest.Value(op, "read the vector", chromedp.Value(chromedp.CSS("#r-vector"))); got != teamV {
		t.Errorf("the calculator built %q, want %q", got, teamV)
	}
	op.Run("score the vector",
		chromedp.Click(chromedp.CSS(`form.cvss button[type=submit]`)),
		browsertest.Until(`document.body.innerText.includes("scores 9.8")`))
	if page := text(op); !strings.Contains(page, teamV) || !strings.Contains(page, "critical") {
		t.Errorf("the score lacks its vector or severity:\n%s", page)
	}
	if shots != "" {
		op.Run("scroll to the calculator", browsertest.Eval(`document.getElementById("cvss-h").scrollIntoView()`))
		shot(op, "report-cvss")
	}
	if got := browsertest.Value(op, "read the chosen severity", chromedp.Value(chromedp.CSS("#t-sev"))); got != "critical" {
		t.Errorf("the triage form's severity is %q after scoring, want the score's critical", got)
	}
	if got := browsertest.Value(op, "read the team's vector to save", chromedp.Value(chromedp.CSS("#t-cvss"))); got != teamV {
		t.Errorf("the triage form would save the vector %q, want the scored %q", got, teamV)
	}
	op.Run("triage",
		chromedp.SetValue(chromedp.CSS("#t-state"), "triaged"),
		chromedp.SendKeys(chromedp.CSS("#t-impact"), "remote-code-execution"),
		chromedp.SendKeys(chromedp.CSS("#t-quality"), "high"),
		chromedp.Click(chromedp.CSS(`form[action$="/triage"] button[type=submit]`)),
		browsertest.Until(`document.querySelector("p.ok") !== null && document.querySelector(".s-triaged") !== null`))
	if got := browsertest.Value(op, "read the team's saved score", chromedp.Text(chromedp.CSS("#team-cvss"))); got != teamV+" = 9.8 (critical)" {
		t.Errorf("after the triage the report shows the team's CVSS %q, want %s = 9.8 (critical)", got, teamV)
	}
	preview := browsertest.Value(op, "read the award's explanation", chromedp.Text(chromedp.CSS("#award-h + p")))
	if !strings.Contains(preview, "48000 USD") && !strings.Contains(preview, "48,000") {
		t.Errorf("the award preview says %q, want the rules' 48,000 USD", preview)
	}
	op.Run("award", chromedp.Click(chromedp.CSS(`form[action$="/award"] button[type=submit]`)),
		browsertest.Until(`Array.from(document.querySelectorAll("caption")).some(c => c.textContent === "Award ledger")`))
	op.Run("link the fix",
		chromedp.SendKeys(chromedp.CSS("#f-fixed"), "1.1.0"),
		chromedp.Click(chromedp.CSS(`form[action$="/fix"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS("#fix-h")))
	shot(op, "report")
	if r, err := w.API.GetReport(ctx, number); err != nil || r.State != "resolved" || r.Severity != "critical" || r.Award == nil || r.Fix == nil ||
		r.TeamCVSS == nil || r.TeamCVSS.Vector != teamV || r.CVSS31 == nil || r.CVSS31.Vector != researcherV {
		t.Errorf("after the page's forms the API shows %+v, %v", r, err)
	}

	// The researcher sees the award and how much of the fleet runs the fix.
	rs.Run("reload the report", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#fix-coverage")))
	api, err := client.New(w.URL, client.WithToken(applied.Token), client.WithCAFile(w.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	rr, err := api.ResearcherReport(ctx, number)
	if err != nil || rr.Fix == nil {
		t.Fatalf("the researcher API's report: %+v %v", rr, err)
	}
	if rr.Report.TeamCVSS != nil {
		t.Errorf("the researcher API shows the team's own score %+v", rr.Report.TeamCVSS)
	}
	cov := browsertest.Value(rs, "read the coverage", chromedp.Text(chromedp.CSS("#fix-coverage")))
	if want := fmt.Sprintf("%.1f %%", rr.Fix.CoveragePercent); cov != want || rr.Fix.CoveragePercent <= 0 {
		t.Errorf("the portal shows %q of the fleet on the fix; the API says %s", cov, want)
	}
	if got := browsertest.Value(rs, "read the fix", chromedp.Text(chromedp.CSS("#fix-release"))); got != "1.1.0" {
		t.Errorf("the portal names the fix %q", got)
	}
	if got := browsertest.Value(rs, "read the award", chromedp.Text(chromedp.CSS("#award-amount"))); !strings.Contains(got, "48") {
		t.Errorf("the portal shows the award %q", got)
	}
	page := text(rs)
	for _, id := range ids {
		if strings.Contains(page, id[:12]) {
			t.Errorf("the researcher's page shows device %s", id)
		}
	}
	shot(rs, "portal-report")

	// The pages only pictured: the overview and the coverage chart with the fleet as it is now.
	if shots != "" {
		op.Run("open the coverage chart", chromedp.Navigate(w.URL+"/coverage?product=lamp&release=1.1.0"), chromedp.WaitVisible(chromedp.CSS("main h1")))
		shot(op, "coverage")
		op.Run("open the overview", chromedp.Navigate(w.URL+"/"), chromedp.WaitVisible(chromedp.CSS("main h1")))
		shot(op, "overview")
	}
}

// serverCerts are the certificates the server at base presents, read over TLS with the
// server's CA: Chromium matches the keys of the chain a server sends, which need not hold the
// CA itself.
func serverCerts(t *testing.T, base string, roots *x509.CertPool) []*x509.Certificate {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tls.Dial("tcp", u.Host, &tls.Config{RootCAs: roots, ServerName: u.Hostname()})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates
}
