package research_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clitest"
	"github.com/rampartsec/rampart/internal/cli/program"
	"github.com/rampartsec/rampart/internal/cli/research"
)

func TestResearchVerbs(t *testing.T) {
	srv := clitest.Start(t, "")
	root := clitest.Nouns(program.Command, research.Command)
	admin := clitest.New(t, root, srv, srv.Admin)
	admin.OK("program", "create", "edge-challenge", "--rules", "../../../doc/examples/program.yaml")

	apply := func(name string) (string, string) {
		var res client.ApplyResponse
		out := clitest.New(t, root, srv, "").OK("-o", "json", "research", "apply", "--tenant", "default", "--program", "edge-challenge",
			"--name", name, "--email", strings.ToLower(name)+"@example.org", "--country", "DE", "--experience", "years")
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatal(err)
		}
		return res.Token, res.Application.ID
	}
	adaTok, adaApp := apply("Ada")
	bobTok, bobApp := apply("Bob")
	ada := clitest.New(t, root, srv, adaTok)
	bob := clitest.New(t, root, srv, bobTok)
	clitest.New(t, root, srv, "").Fails("already registered; apply with your researcher token (HTTP 409)", "research", "apply", "--tenant", "default", "--program", "edge-challenge",
		"--name", "Ada", "--email", "ada@example.org", "--country", "DE", "--experience", "years")

	dir := t.TempDir()
	file := filepath.Join(dir, "report.json")
	os.WriteFile(file, []byte(`{"title":"Overflow","description":"details","scenario":"update-bypass","product":"edge-gateway",
		"components":["update-agent"],"cvss40":"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"}`), 0o644)
	ada.Fails("only researchers accepted in the program may submit reports (HTTP 403)", "research", "submit", "--program", "edge-challenge", "--file", file)
	admin.OK("program", "accept", "edge-challenge", adaApp)
	admin.OK("program", "accept", "edge-challenge", bobApp)
	out := ada.OK("research", "submit", "--program", "edge-challenge", "--file", file)
	if !strings.Contains(out, "9.3 critical") {
		t.Errorf("submit:\n%s", out)
	}
	badVector := filepath.Join(dir, "bad.json")
	os.WriteFile(badVector, []byte(`{"title":"x","description":"y","scenario":"general","product":"edge-gateway","components":["kernel"],"cvss31":"CVSS:3.1/AV:N"}`), 0o644)
	ada.Fails("invalid CVSS vector", "research", "submit", "--program", "edge-challenge", "--file", badVector)
	outside := filepath.Join(dir, "outside.json")
	os.WriteFile(outside, []byte(`{"title":"x","description":"y","scenario":"steal-the-moon","product":"edge-gateway","components":["kernel"]}`), 0o644)
	ada.Fails("scenario", "research", "submit", "--program", "edge-challenge", "--file", outside)
	// A field the report does not have is refused by name, not dropped on the way.
	unknown := filepath.Join(dir, "unknown.json")
	os.WriteFile(unknown, []byte(`{"title":"x","description":"y","scenario":"general","product":"edge-gateway","severity":"critical"}`), 0o644)
	ada.FailsWith("rampart: "+unknown+`: unknown field "severity"; a report has no such field`+"\n", "research", "submit", "--program", "edge-challenge", "--file", unknown)
	notJSON := filepath.Join(dir, "broken.json")
	os.WriteFile(notJSON, []byte("{\n\"title\": \"x\",\n}"), 0o644)
	ada.FailsWith("rampart: "+notJSON+" is not valid JSON (line 3); it must be one report\n", "research", "submit", "--program", "edge-challenge", "--file", notJSON)

	poc := filepath.Join(dir, "poc.py")
	os.WriteFile(poc, []byte("print('poc')\n"), 0o644)
	if out := ada.OK("research", "attach", "1", poc); !strings.Contains(out, "poc.py") {
		t.Errorf("attach:\n%s", out)
	}
	ada.OK("research", "comment", "1", "Crash log attached.")
	out = ada.OK("research", "show", "1")
	if !strings.Contains(out, "Crash log attached.") || !strings.Contains(out, "Overflow") {
		t.Errorf("show:\n%s", out)
	}
	if out := ada.OK("research", "reports"); !strings.Contains(out, "Overflow") {
		t.Errorf("reports:\n%s", out)
	}
	// Bob sees nothing of Ada's.
	if out := bob.OK("research", "reports"); strings.Contains(out, "Overflow") {
		t.Errorf("Bob's list shows Ada's report:\n%s", out)
	}
	bob.Fails("report 1 not found (HTTP 404)", "research", "show", "1")
	bob.Fails("report 1 not found (HTTP 404)", "research", "comment", "1", "mine")
	bob.Fails("report 1 not found (HTTP 404)", "research", "attach", "1", poc)
	// An administrator's token opens nothing here.
	admin.Fails("researcher token is malformed (HTTP 401)", "research", "reports")

	// The team revokes Ada's token, found in the applications listing; Bob is unaffected.
	var apps []client.Application
	if err := json.Unmarshal([]byte(admin.OK("-o", "json", "program", "applications", "edge-challenge")), &apps); err != nil {
		t.Fatal(err)
	}
	var adaID string
	for _, a := range apps {
		if a.Name == "Ada" {
			adaID = a.Researcher
		}
	}
	if out := admin.OK("program", "applications", "edge-challenge"); !strings.Contains(out, "RESEARCHER") || !strings.Contains(out, adaID) {
		t.Errorf("applications do not show the researcher ID %s:\n%s", adaID, out)
	}
	ada.Fails("the API token is malformed (HTTP 401)", "research", "revoke-token", adaID) // a researcher cannot revoke
	out = admin.OK("research", "revoke-token", adaID, "--reason", "token leaked")
	if !strings.Contains(out, "TOKEN REVOKED") || !strings.Contains(out, "ada@example.org") {
		t.Errorf("revoke-token:\n%s", out)
	}
	admin.Fails("was already revoked on", "research", "revoke-token", adaID)
	admin.Fails("not found (HTTP 404)", "research", "revoke-token", "rsr_nobody")
	ada.Fails("researcher token was revoked (HTTP 401)", "research", "reports")
	ada.Fails("researcher token was revoked (HTTP 401)", "research", "show", "1")
	bob.OK("research", "reports")
}
