package api

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rampartsec/rampart/internal/advisory"
	"github.com/rampartsec/rampart/internal/deviceapi"
	"github.com/rampartsec/rampart/internal/program"
	pub "github.com/rampartsec/rampart/internal/public"
	"github.com/rampartsec/rampart/internal/release"
	"github.com/rampartsec/rampart/internal/rollout"
	"github.com/rampartsec/rampart/internal/store"
)

// docCodes reads the table of error codes under "## Errors" in doc/api.md: code → status.
func docCodes(t *testing.T) map[string]int {
	t.Helper()
	b, err := os.ReadFile("../../doc/api.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Errors\n")
	if !ok {
		t.Fatal("doc/api.md has no ## Errors section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	row := regexp.MustCompile("^\\| (\\d{3}) \\| `([a-z_]+)` \\|")
	out := map[string]int{}
	for _, line := range strings.Split(section, "\n") {
		m := row.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		status, _ := strconv.Atoi(m[1])
		if _, dup := out[m[2]]; dup {
			t.Errorf("doc/api.md lists %s twice", m[2])
		}
		out[m[2]] = status
	}
	return out
}

// declaredCodes reads the Code* constants of errors.go: code → constant name.
func declaredCodes(t *testing.T) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "errors.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if !strings.HasPrefix(n.Name, "Code") || i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					t.Fatalf("%s is not a string literal", n.Name)
				}
				v, _ := strconv.Unquote(lit.Value)
				out[v] = n.Name
			}
		}
	}
	return out
}

// TestErrorCodesDocumented holds doc/api.md's table of error codes, the Code constants and
// codeStatus together, both ways: a code added to one and not the others fails here.
func TestErrorCodesDocumented(t *testing.T) {
	declared := declaredCodes(t)
	if len(declared) == 0 {
		t.Fatal("no Code constants found in errors.go")
	}
	want := map[string]int{}
	for code := range declared {
		status, ok := codeStatus[code]
		if !ok {
			t.Errorf("code %s has no status in codeStatus", code)
		}
		want[code] = status
	}
	for code := range codeStatus {
		if _, ok := declared[code]; !ok {
			t.Errorf("codeStatus has %s, which is not a Code constant", code)
		}
	}
	if diff := cmp.Diff(docCodes(t), want); diff != "" {
		t.Errorf("doc/api.md's table of error codes differs from the constants in errors.go (-doc +code):\n%s", diff)
	}
}

// TestErrorCodesAreConstants fails when a handler emits a code that is not one of the constants:
// every Code field and every newError code in the package must name a Code constant.
func TestErrorCodesAreConstants(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		check := func(e ast.Expr) {
			checked++
			id, ok := e.(*ast.Ident)
			if ok && name == "errors.go" && id.Name == "code" {
				return // the helpers that pass a constant on
			}
			if !ok || !strings.HasPrefix(id.Name, "Code") {
				t.Errorf("%s: an error code that is not a Code constant", fset.Position(e.Pos()))
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CompositeLit:
				if id, ok := n.Type.(*ast.Ident); ok && id.Name == "Error" {
					for _, el := range n.Elts {
						if kv, ok := el.(*ast.KeyValueExpr); ok && kv.Key.(*ast.Ident).Name == "Code" {
							check(kv.Value)
						}
					}
				}
			case *ast.CallExpr:
				if id, ok := n.Fun.(*ast.Ident); ok && (id.Name == "newError" || id.Name == "coded") && len(n.Args) > 1 {
					check(n.Args[1])
				}
			}
			return true
		})
	}
	if checked < 10 {
		t.Fatalf("found only %d error codes to check; the test no longer sees them", checked)
	}
}

// TestKindsMapToCodes checks that every pub.Kind has a code and a status, and that a domain
// error is answered with its sentence and never with its cause.
func TestKindsMapToCodes(t *testing.T) {
	for k := pub.Internal; k <= pub.Unavailable; k++ {
		code, ok := kindCode[k]
		if !ok {
			t.Errorf("kind %v has no code", k)
		} else if _, ok := codeStatus[code]; !ok {
			t.Errorf("kind %v maps to %s, which has no status", k, code)
		}
	}
	cause := errors.New("secret detail")
	for _, tt := range []struct {
		err     error
		status  int
		code    string
		message string
	}{
		{fmt.Errorf("store.X: %w", pub.Wrap(cause, pub.Conflict, "product lamp already exists")), 409, CodeConflict, "product lamp already exists"},
		{pub.Errorf(pub.TooLarge, "attachment is larger than the program allows"), 413, CodeTooLarge, "attachment is larger than the program allows"},
		{pub.Wrap(cause, pub.Internal, "reading the key"), 500, CodeInternal, "internal error"},
		{cause, 500, CodeInternal, "internal error"},
		{fmt.Errorf("api: %w", badRequest("limit")), 400, CodeBadRequest, "limit"},
	} {
		e := asError(tt.err)
		if e.Status != tt.status || e.Code != tt.code || e.Message != tt.message {
			t.Errorf("asError(%v) = %d %s %q, want %d %s %q", tt.err, e.Status, e.Code, e.Message, tt.status, tt.code, tt.message)
		}
	}
	if e := coded(pub.Errorf(pub.Conflict, "deployment is not paused"), CodeWrongState); e.Code != CodeWrongState || e.Status != 409 {
		t.Errorf("coded = %d %s, want 409 wrong_state", e.Status, e.Code)
	}
	if e := coded(cause, CodeWrongState); e.Code != CodeInternal {
		t.Errorf("coded(plain error) = %s, want internal", e.Code)
	}
}

// TestDomainSentences pins, byte for byte, the answer to refusals made by the real domain
// functions: the sentence is the value the domain package made, with the status its kind maps to.
func TestDomainSentences(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	answer := func(_ any, err error) error { return err }
	_, _, paused := rollout.Deployment{ID: "dep_1", State: rollout.StateCompleted}.Pause("ops", "", now)
	raceErr := fmt.Errorf("store.AddComment: %w", fmt.Errorf("%w: %w", store.ErrConflict, errors.New("UNIQUE constraint failed: report_comments.report_id, report_comments.seq")))
	for _, tt := range []struct {
		name   string
		got    error
		status int
		code   string
		msg    string
	}{
		{"plan", deploymentError(answer(rollout.ParsePlan("10,50", "")), "d"), 400, CodeBadRequest,
			"invalid phase plan: the last phase must cover 100% of the group, not 50%"},
		{"criteria", deploymentError(answer(rollout.DefaultCriteria().WithSettings(map[string]string{"on_failure": "explode"})), "d"), 400, CodeBadRequest,
			`invalid abort criteria: on_failure "explode": is not pause or abort`},
		{"deployment state", deploymentError(paused, "d"), 409, CodeWrongState, "deployment is not active (state completed)"},
		{"install report", releaseError(release.ValidateInstall(release.InstallReport{State: "hacked"}), "install status"), 400, CodeBadRequest,
			`refused: state "hacked"`},
		{"crash batch", asError(answer(deviceapi.DecodeCrashBatch(strings.NewReader(`{"reports":[]}`)))), 400, CodeBadRequest,
			"malformed crash report: batch holds no reports"},
		{"evidence", wireError(answer(deviceapi.DecodeEvidence(strings.NewReader("{"))), "evidence"), 400, CodeBadRequest,
			"invalid evidence: malformed message: unexpected EOF"},
		{"state name", asError(answer(program.ParseState("fixed"))), 400, CodeBadRequest,
			`"fixed" is not one of new, triaged, needs_more_info, resolved, duplicate, by_design, informative, not_applicable, spam`},
		{"transition", programError(program.CheckTransition(program.StateNew, program.StateResolved, ""), "report 1"), 409, CodeConflict,
			"transition not allowed: new -> resolved (allowed: triaged, needs_more_info, duplicate, by_design, informative, not_applicable, spam)"},
		{"reason", programError(program.CheckTransition(program.StateNew, program.StateByDesign, ""), "report 1"), 400, CodeBadRequest,
			"a reason is required for new -> by_design"},
		{"contact", programError(program.ValidateContact("", "x"), "invitation"), 400, CodeBadRequest,
			"name: required\nemail: \"x\" is not a plain e-mail address"},
		{"comment", programError(program.ValidateComment(" "), "comment"), 400, CodeBadRequest, "comment is empty"},
		{"advisory", programError(answer(advisory.Export("pdf", advisory.Input{})), "advisory"), 400, CodeBadRequest,
			`advisory input is invalid: format "pdf" is not csaf or openvex`},
		{"concurrent row", programError(raceErr, "report 3"), 409, CodeConflict, "report 3 changed concurrently; retry"},
	} {
		e := asError(tt.got)
		if e.Status != tt.status || e.Code != tt.code || e.Message != tt.msg {
			t.Errorf("%s: answer = %d %s %q, want %d %s %q", tt.name, e.Status, e.Code, e.Message, tt.status, tt.code, tt.msg)
		}
	}
}
