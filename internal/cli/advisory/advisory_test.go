package advisory_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gocsaf/csaf/v3/csaf"
	csafutil "github.com/gocsaf/csaf/v3/util"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/advisory"
	"github.com/rampartsec/rampart/internal/cli/clitest"
	"github.com/rampartsec/rampart/internal/cli/image"
	"github.com/rampartsec/rampart/internal/cli/product"
	"github.com/rampartsec/rampart/internal/cli/program"
	"github.com/rampartsec/rampart/internal/cli/release"
	"github.com/rampartsec/rampart/internal/cli/report"
	"github.com/rampartsec/rampart/internal/cli/research"
)

func TestAdvisoryExport(t *testing.T) {
	srv := clitest.Start(t, "")
	root := clitest.Nouns(program.Command, research.Command, report.Command, advisory.Command, product.Command, image.Command, release.Command)
	c := clitest.New(t, root, srv, srv.Admin)
	c.OK("program", "create", "edge-challenge", "--rules", "../../../doc/examples/program.yaml")
	// The releases the fix names (drafts: link-fix needs them to exist).
	c.OK("product", "create", "edge-gateway")
	for _, v := range []string{"26.07.1", "26.08.0"} {
		img := filepath.Join(t.TempDir(), "update-agent.img")
		os.WriteFile(img, []byte("update agent "+v), 0o644)
		id := strings.TrimSpace(c.OK("image", "add", img, "--component", "update-agent", "--version", v))
		c.OK("release", "create", "--product", "edge-gateway", "--version", v, "--image", id)
	}
	var res client.ApplyResponse
	if err := json.Unmarshal([]byte(clitest.New(t, root, srv, "").OK("-o", "json", "research", "apply", "--tenant", "default",
		"--program", "edge-challenge", "--name", "Ada", "--email", "ada@example.org", "--country", "GB", "--experience", "x")), &res); err != nil {
		t.Fatal(err)
	}
	c.OK("program", "accept", "edge-challenge", res.Application.ID)
	dir := t.TempDir()
	file := filepath.Join(dir, "r.json")
	os.WriteFile(file, []byte(`{"title":"Rollback accepted","description":"The agent installs an older release.","scenario":"update-bypass",
		"product":"edge-gateway","components":["update-agent"],"cvss31":"CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H"}`), 0o644)
	clitest.New(t, root, srv, res.Token).OK("research", "submit", "--program", "edge-challenge", "--file", file)

	c.Fails("no fix release", "advisory", "export", "--report", "1")
	c.OK("report", "triage", "1", "--state", "triaged")
	c.OK("report", "link-fix", "1", "--fixed", "26.08.0", "--affected", "26.07.1")

	// The publisher's namespace defaults to the server's https address.
	out := filepath.Join(dir, "csaf.json")
	c.OK("advisory", "export", "--report", "1", "--format", "csaf", "--out", out)
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if problems, err := csaf.ValidateCSAF(doc); err != nil || len(problems) > 0 {
		t.Errorf("CSAF: %v %v", problems, err)
	}
	if !strings.Contains(string(data), srv.URL) || !strings.Contains(string(data), `"known_affected"`) {
		t.Errorf("CSAF lacks the namespace or product status:\n%s", data)
	}
	// Into a folder, each document takes the name its tracking ID gives (CSAF 2.0 section 5.1).
	c.OK("advisory", "export", "--report", "1", "--format", "csaf", "--out", dir)
	c.OK("advisory", "export", "--report", "1", "--format", "openvex", "--out", dir+string(filepath.Separator))
	for _, name := range []string{"rampart-edge-challenge-1.json", "rampart-edge-challenge-1.openvex.json"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("export into a folder: %v", err)
		}
	}
	if !csafutil.ConformingFileName("rampart-edge-challenge-1.json") {
		t.Error("gocsaf does not find the exported name conforming")
	}
	vex := c.OK("advisory", "export", "--report", "1", "--format", "openvex", "--publisher", "Example Devices")
	for _, want := range []string{`"author": "Example Devices"`, "pkg:generic/example-devices/edge-gateway@26.07.1", `"status": "affected"`} {
		if !strings.Contains(vex, want) {
			t.Errorf("OpenVEX lacks %q:\n%s", want, vex)
		}
	}
	c.Fails("not csaf or openvex", "advisory", "export", "--report", "1", "--format", "spdx")
	c.Fails("must be an absolute https URL", "advisory", "export", "--report", "1", "--namespace", "ftp://x")
	c.Fails("required flag(s) \"report\" not set", "advisory", "export")
}
