package report_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clitest"
	"github.com/rampartsec/rampart/internal/cli/image"
	"github.com/rampartsec/rampart/internal/cli/product"
	"github.com/rampartsec/rampart/internal/cli/program"
	"github.com/rampartsec/rampart/internal/cli/release"
	"github.com/rampartsec/rampart/internal/cli/report"
	"github.com/rampartsec/rampart/internal/cli/research"
)

// setup loads the example program, has two accepted researchers submit one report each, and
// returns the administrator's CLI.
func setup(t *testing.T) (*clitest.CLI, *clitest.CLI) {
	t.Helper()
	srv := clitest.Start(t, "")
	root := clitest.Nouns(program.Command, research.Command, report.Command, product.Command, image.Command, release.Command)
	admin := clitest.New(t, root, srv, srv.Admin)
	admin.OK("program", "create", "edge-challenge", "--rules", "../../../doc/examples/program.yaml")
	dir := t.TempDir()
	// The releases a fix names: drafts are enough, link-fix needs them to exist.
	admin.OK("product", "create", "edge-gateway")
	for _, v := range []string{"26.06.0", "26.07.1", "26.07.2"} {
		img := filepath.Join(dir, "rootfs-"+v+".img")
		os.WriteFile(img, []byte("rootfs "+v), 0o644)
		id := strings.TrimSpace(admin.OK("image", "add", img, "--component", "rootfs", "--version", v))
		admin.OK("release", "create", "--product", "edge-gateway", "--version", v, "--image", id)
	}
	var ada *clitest.CLI
	for i, name := range []string{"Ada", "Bob"} {
		var res client.ApplyResponse
		out := clitest.New(t, root, srv, "").OK("-o", "json", "research", "apply", "--tenant", "default", "--program", "edge-challenge",
			"--name", name, "--email", strings.ToLower(name)+"@example.org", "--country", "FR", "--experience", "years")
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatal(err)
		}
		admin.OK("program", "accept", "edge-challenge", res.Application.ID)
		file := filepath.Join(dir, name+".json")
		os.WriteFile(file, []byte(`{"title":"Key extraction `+name+`","description":"details","scenario":"device-key-extraction",
			"product":"edge-gateway","components":["attestation"],"cvss31":"CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H"}`), 0o644)
		r := clitest.New(t, root, srv, res.Token)
		r.OK("research", "submit", "--program", "edge-challenge", "--file", file)
		if i == 0 {
			ada = r
		}
	}
	return admin, ada
}

func TestReportVerbs(t *testing.T) {
	c, ada := setup(t)

	out := c.OK("report", "list", "--program", "edge-challenge")
	if !strings.Contains(out, "Key extraction Ada") || !strings.Contains(out, "high?") {
		t.Errorf("list:\n%s", out)
	}
	var rs []client.Report
	if err := json.Unmarshal([]byte(c.OK("report", "list", "--state", "new", "-o", "json")), &rs); err != nil || len(rs) != 2 {
		t.Fatalf("list json = %d, %v", len(rs), err)
	}
	c.Fails("not one of", "report", "list", "--state", "fixed")

	c.OK("report", "comment", "1", "Which", "firmware?")
	out = c.OK("report", "triage", "1", "--state", "needs_more_info")
	if !strings.Contains(out, "CLOSES AT") {
		t.Errorf("needs_more_info shows no deadline:\n%s", out)
	}
	ada.OK("research", "comment", "1", "26.07.1")
	c.Fails("a reason is required for new -> by_design (HTTP 400)", "report", "triage", "2", "--state", "by_design")
	c.Fails("arrived after report 1", "report", "triage", "1", "--state", "duplicate", "--duplicate-of", "2")
	out = c.OK("report", "triage", "2", "--state", "duplicate", "--duplicate-of", "1")
	if !strings.Contains(out, "duplicate of #1") {
		t.Errorf("duplicate:\n%s", out)
	}
	c.Fails("report 1 is new; triage it before an award", "report", "award", "1")
	c.Fails("report 2 is closed as a duplicate; a closed report is not awarded", "report", "award", "2")
	c.OK("report", "triage", "1", "--state", "triaged", "--impact", "elevation-of-privilege", "--severity", "high", "--quality", "low", "--cve", "CVE-2026-12345")
	out = c.OK("report", "award", "1")
	if !strings.Contains(out, "5500 USD") || !strings.Contains(out, "adds 10%: 500") {
		t.Errorf("award:\n%s", out)
	}
	c.Fails("--reason goes with --override", "report", "award", "1", "--reason", "x")
	c.Fails("must carry a reason", "report", "award", "1", "--override", "7000")
	c.OK("report", "award", "1", "--override", "7000", "--reason", "excellent write-up")
	c.Fails("would exceed the award of 7000", "report", "pay", "1", "--amount", "7001")
	c.OK("report", "pay", "1", "--amount", "7000", "--note", "wire 42")

	c.Fails("not an RFC 3339 time", "report", "link-fix", "1", "--fixed", "26.07.2", "--affected", "26.07.1", "--released-at", "yesterday")
	c.Fails("both affected and the fix", "report", "link-fix", "1", "--fixed", "26.07.1", "--affected", "26.07.1")
	c.Fails("only triaged or resolved reports get a fix", "report", "link-fix", "2", "--fixed", "26.07.2", "--affected", "26.07.1")
	c.Fails("edge-gateway has no release 26.09.0", "report", "link-fix", "1", "--fixed", "26.09.0", "--affected", "26.07.1")
	c.Fails("no release 25.01.0; create it with rampart release create first (HTTP 404)", "report", "link-fix", "1", "--fixed", "26.07.2", "--affected", "26.07.1,25.01.0", "--revoke-affected")
	out = c.OK("report", "link-fix", "1", "--fixed", "26.07.2", "--affected", "26.07.1,26.06.0", "--released-at", "2026-11-01T00:00:00Z")
	for _, want := range []string{"resolved", "FIXED IN", "26.07.2", "26.06.0, 26.07.1", "0 of 0 devices"} {
		if !strings.Contains(out, want) {
			t.Errorf("link-fix lacks %q:\n%s", want, out)
		}
	}
	out = c.OK("report", "link-fix", "1", "--fixed", "26.07.2", "--affected", "26.07.1,26.06.0", "--revoke-affected")
	if !strings.Contains(out, "26.06.0, 26.07.1 (revoked: 26.06.0, 26.07.1)") {
		t.Errorf("link-fix --revoke-affected does not show the revoked releases:\n%s", out)
	}
	out = c.OK("report", "show", "1")
	for _, want := range []string{"7000 USD (override of 5500: excellent write-up)", "PAID", "CVE-2026-12345", "Which firmware?", "researcher: 26.07.1", "TIME TO TRIAGE"} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
	c.Fails("report 9 not found (HTTP 404)", "report", "show", "9")
	c.Fails("positive whole number", "report", "show", "first")
}
