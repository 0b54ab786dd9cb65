package program_test

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

const rules = "../../../doc/examples/program.yaml"

func TestProgramVerbs(t *testing.T) {
	srv := clitest.Start(t, "")
	root := clitest.Nouns(program.Command, research.Command)
	c := clitest.New(t, root, srv, srv.Admin)

	out := c.OK("program", "create", "edge-challenge", "--rules", rules)
	for _, want := range []string{"Edge Gateway Security Research Challenge", "remote-code-execution", "+20%",
		"100000 USD for remote-code-execution or elevation-of-privilege in edge-gateway/security-processor (high+)", "20000-40000", "14d"} {
		if !strings.Contains(out, want) {
			t.Errorf("create output lacks %q:\n%s", want, out)
		}
	}
	// The program, its scenarios and its award table are three tables: the key column is as wide
	// as its longest key, not as the longest scenario ID.
	for _, want := range []string{"PROGRAM             edge-challenge\n", "bytes\n\nSCENARIO  ", "\n\nIMPACT  "} {
		if !strings.Contains(out, want) {
			t.Errorf("create output lacks %q:\n%s", want, out)
		}
	}
	if show := c.OK("program", "show", "edge-challenge"); show != out {
		t.Errorf("show differs from create:\n%s", show)
	}
	var ps []client.Program
	if err := json.Unmarshal([]byte(c.OK("program", "list", "-o", "json")), &ps); err != nil || len(ps) != 1 || ps[0].Title == "" {
		t.Fatalf("list = %+v, %v", ps, err)
	}
	c.Fails("already exists (HTTP 409)", "program", "create", "edge-challenge", "--rules", rules)
	c.Fails("does not match the rules file's name", "program", "create", "other", "--rules", rules)
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"name":"x","title":"X","colour":"red"}`), 0o644)
	c.Fails(`unknown field "colour"`, "program", "create", "x", "--rules", bad)
	// A YAML mistake names the file and its line as an editor shows it, once, on one line.
	badYAML := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(badYAML, []byte("\n\n# my rules\nname: x\ntitle: X\ncolour: red\n"), 0o644)
	_, errs, code := c.Run("program", "create", "x", "--rules", badYAML)
	if code != 1 || !strings.HasPrefix(errs, "rampart: "+badYAML+": ") || !strings.HasSuffix(errs, "yaml: line 6: field colour not found\n") ||
		strings.Count(errs, "\n") != 1 || strings.Contains(errs, "program.") {
		t.Errorf("program create with a bad YAML field: exit %d, %q", code, errs)
	}
	c.Fails("required flag(s) \"rules\" not set", "program", "create", "x")
	c.Fails("program nothing not found (HTTP 404)", "program", "show", "nothing")

	// A new researcher applies without a token; an invited one completes with theirs.
	anon := clitest.New(t, root, srv, "")
	var applied client.ApplyResponse
	if err := json.Unmarshal([]byte(anon.OK("-o", "json", "research", "apply", "--tenant", "default", "--program", "edge-challenge",
		"--name", "Ada", "--email", "ada@example.org", "--country", "GB", "--experience", "kernel exploits")), &applied); err != nil {
		t.Fatal(err)
	}
	var inv client.Invitation
	if err := json.Unmarshal([]byte(c.OK("-o", "json", "program", "invite", "edge-challenge", "--name", "Bob", "--email", "bob@example.org")), &inv); err != nil || inv.Token == "" {
		t.Fatalf("invite = %+v, %v", inv, err)
	}
	bob := clitest.New(t, root, srv, inv.Token)
	bob.OK("research", "apply", "--program", "edge-challenge", "--country", "US", "--experience", "fuzzing")
	c.Fails("not found (HTTP 404)", "program", "accept", "edge-challenge", applied.Application.ID+"x")
	c.OK("program", "accept", "edge-challenge", applied.Application.ID)
	c.Fails("the application is accepted; only an application that was applied for", "program", "reject", "edge-challenge", applied.Application.ID, "--reason", "changed mind")
	c.Fails("required flag(s) \"reason\" not set", "program", "reject", "edge-challenge", inv.Application.ID)
	c.OK("program", "reject", "edge-challenge", inv.Application.ID, "--reason", "program full")
	out = c.OK("program", "applications", "edge-challenge")
	if !strings.Contains(out, "accepted") || !strings.Contains(out, "rejected") || !strings.Contains(out, "program full") {
		t.Errorf("applications:\n%s", out)
	}
	out = c.OK("program", "report", "edge-challenge")
	for _, want := range []string{"applications                   2", "accepted researchers           1", "countries                      GB 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	var rep client.ProgramReport
	if err := json.Unmarshal([]byte(c.OK("program", "report", "edge-challenge", "-o", "json")), &rep); err != nil || rep.Applications != 2 {
		t.Errorf("report JSON = %+v, %v", rep, err)
	}
}
