package deptest

import (
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/testenv"
)

const module = "github.com/rampartsec/rampart/"

// anyone lets every package import a package.
const anyone = "*"

// A rule holds one package comment's claim. Paths are relative to the module; an entry ending
// in "/" stands for the packages under that folder, the folder's own package included.
type rule struct {
	pkg string
	// sentence is the claim, as the package comment words it (whitespace aside).
	sentence string
	// importers are the packages that may import pkg outside _test.go files; empty means none,
	// anyone means anyone. Test files may import anything.
	importers []string
	// imports, when set, are the only packages outside the standard library that pkg may import.
	imports []string
	// notAgent: rampart-agent must never link pkg.
	notAgent bool
}

var rules = []rule{
	{pkg: "bench/rollout", sentence: "nothing imports it.", importers: []string{}},
	{pkg: "build/package", sentence: "Nothing imports it.", importers: []string{}},
	{pkg: "client", sentence: "other programs may import it too", importers: []string{anyone}},
	{pkg: "internal/advisory", sentence: "It depends only on internal/program, internal/public and github.com/openvex/go-vex. The admin API, the CLI and the demo may import it.",
		importers: []string{"internal/api", "internal/cli/", "internal/demo"}, imports: []string{"internal/program", "internal/public", "github.com/openvex/go-vex/"}},
	{pkg: "internal/agent/attest", sentence: "It is imported by the agent only", importers: []string{"internal/agent/"}},
	{pkg: "internal/agent/attest/tpmsim", sentence: "tests import it whenever cgo is on, and rampart-agent links it only when built with -tags simulator",
		importers: []string{"internal/agent/"}, notAgent: true},
	{pkg: "internal/agent/command", sentence: "It is imported by cmd/rampart-agent only.", importers: []string{"cmd/rampart-agent"}},
	{pkg: "internal/agent/crash", sentence: "Only the agent imports it.", importers: []string{"internal/agent/"}},
	{pkg: "internal/agent/devclient", sentence: "It is imported by the agent only and links no database, web or server code.",
		importers: []string{"internal/agent/"}, imports: []string{"internal/deviceapi", "internal/public", "internal/watchdog"}},
	{pkg: "internal/agent/durable", sentence: "The agent's packages import it", importers: []string{"internal/agent/"}},
	{pkg: "internal/agent/identity", sentence: "It is imported by the agent only", importers: []string{"internal/agent/"}},
	{pkg: "internal/agent/rauc", sentence: "It is imported by the agent only", importers: []string{"internal/agent/"}},
	{pkg: "internal/agent/module", sentence: "It is imported by the agent only", importers: []string{"internal/agent/"}},
	{pkg: "internal/agent/update/updatetest", sentence: "Only tests import it.", importers: []string{}},
	{pkg: "internal/agent/update", sentence: "It is imported by the agent's packages and by the fleet simulator (internal/sim), which runs real agents",
		importers: []string{"internal/agent/", "internal/sim"}},
	{pkg: "internal/api", sentence: "Only the server and the web console (internal/console, which calls the routes in process as the signed-in caller) import it.",
		importers: []string{"internal/server", "internal/console"}, notAgent: true},
	{pkg: "internal/attest", sentence: "It is imported by the server only.", importers: []string{"internal/api"}, notAgent: true},
	{pkg: "internal/audit", sentence: "The store and the API import it.", importers: []string{"internal/store", "internal/api"}},
	{pkg: "internal/browsertest", sentence: "Only tests import it.", importers: []string{}},
	{pkg: "internal/ca", sentence: "Only server-side packages import it (the API, the verifier in internal/attest, the keeper, the server and its CLI verb, for the trust-domain suffix) and the benchmark seeder (bench/seed); the agent never links it.",
		importers: []string{"internal/api", "internal/attest", "internal/ca/keeper", "internal/server", "internal/cli/server", "bench/seed"}, notAgent: true},
	{pkg: "internal/ca/keeper", sentence: "The server, the API and the benchmark seeder (bench/seed) import it.",
		importers: []string{"internal/server", "internal/api", "bench/seed"}, notAgent: true},
	{pkg: "internal/certpool", sentence: "for whatever connects to the server over TLS: the public client, the agent, the CLI's simulator, the demo, the load generator and tests. It uses the standard library only, so the agent may link it.",
		importers: []string{"client", "internal/agent/", "internal/cli/sim", "internal/demo", "bench/loadgen", "internal/cli/clitest"}, imports: []string{}},
	{pkg: "internal/backup", sentence: "The CLI's backup and restore verbs import it, and the server reads the mark a restore leaves (RestoredFile).", importers: []string{"internal/cli/backup", "internal/server"}, notAgent: true},
	{pkg: "internal/cli", sentence: "cmd/rampart imports it.", importers: []string{"cmd/rampart"}},
	{pkg: "internal/cli/backup", sentence: "Only internal/cli imports it.", importers: []string{"internal/cli"}},
	{pkg: "internal/cli/clienv", sentence: "Only the packages under internal/cli import it.", importers: []string{"internal/cli/"}},
	{pkg: "internal/cli/clitest", sentence: "Only tests import it", importers: []string{}},
	{pkg: "internal/cli/demo", sentence: "Only internal/cli imports it.", importers: []string{"internal/cli"}},
	{pkg: "internal/cli/sim", sentence: "Only internal/cli imports it.", importers: []string{"internal/cli"}},
	{pkg: "internal/console", sentence: "Only the server imports it.", importers: []string{"internal/server"}, notAgent: true},
	{pkg: "internal/coverage", sentence: "The store and the demo import it.", importers: []string{"internal/store", "internal/demo"}},
	{pkg: "internal/delta", sentence: "It imports only the standard library and klauspost/compress, so both the server and the device agent (rampart-agent) may import it.",
		importers: []string{anyone}, imports: []string{"github.com/klauspost/compress/"}},
	{pkg: "internal/demo", sentence: "Only the CLI's demo verb imports it.", importers: []string{"internal/cli/demo"}},
	{pkg: "internal/deptest", sentence: "Nothing imports it.", importers: []string{}},
	{pkg: "internal/deviceapi", sentence: "Both ends import it: the agent (internal/agent/...) builds requests and reads answers, the server (internal/api, internal/attest, internal/release, internal/tuf, internal/failure) decodes requests and writes answers. Compare Tailscale's tailcfg. It imports only the standard library, go-tuf's metadata types and internal/public",
		importers: []string{"internal/agent/", "internal/api", "internal/attest", "internal/release", "internal/tuf", "internal/failure", "internal/store", "internal/sim"},
		imports:   []string{"internal/public", "github.com/theupdateframework/go-tuf/v2/metadata"}},
	{pkg: "internal/failure", sentence: "The server's device API and storage import it; the device agent does not.",
		importers: []string{"internal/api", "internal/store"}, notAgent: true},
	{pkg: "internal/jsonerr", sentence: "Any package may import it; it imports only the standard library.", importers: []string{anyone}, imports: []string{}},
	{pkg: "internal/program", sentence: "Of Rampart's packages it may depend on internal/public only. The store, the admin and researcher APIs, the researcher portal (internal/console), the CLI and the advisory package may import it.",
		importers: []string{"internal/store", "internal/api", "internal/console", "internal/cli/", "internal/advisory"}, imports: []string{"internal/public", "github.com/", "golang.org/", "go.yaml.in/"}},
	{pkg: "internal/public", sentence: "Any package may import it; it imports only the standard library.", importers: []string{anyone}, imports: []string{}},
	{pkg: "internal/ratelimit", sentence: "The API imports it.", importers: []string{"internal/api"}},
	{pkg: "internal/release", sentence: "The API and the server import it; the agent never does.", importers: []string{"internal/api", "internal/server"}, notAgent: true},
	{pkg: "internal/rollout", sentence: "The store, the API, the server's tasks and the fixtures of tests and benchmarks (clitest, bench/seed) import it; the device agent must not.",
		importers: []string{"internal/store", "internal/api", "internal/tasks", "internal/cli/clitest", "bench/seed"}, notAgent: true},
	{pkg: "internal/server", sentence: "Only cmd/rampart (through the CLI's server verb), the demo and tests import it.",
		importers: []string{"internal/cli/server", "internal/demo", "internal/cli/clitest"}, notAgent: true},
	{pkg: "internal/sim", sentence: "`rampart sim` and `rampart demo` verbs, benchmarks and the tests' fixture clitest import it.", importers: []string{"internal/cli/sim", "internal/demo", "bench/", "internal/cli/clitest"}},
	{pkg: "internal/sso", sentence: "The console, the server and its CLI verb (for the --oidc-* flags) import it.", importers: []string{"internal/console", "internal/server", "internal/cli/server"}, notAgent: true},
	{pkg: "internal/sso/ssotest", sentence: "Only tests import it.", importers: []string{}},
	{pkg: "internal/store", sentence: "Only server-side packages import it (the API, the verifier in internal/attest, the CA keeper, the release service, the web console's sessions, the server and its tasks, the backup of a data folder), besides the fixtures of tests and benchmarks (storetest, clitest, bench/seed); the agent never links it.",
		importers: []string{"internal/api", "internal/attest", "internal/ca/keeper", "internal/release", "internal/console", "internal/server", "internal/tasks", "internal/backup", "internal/store/storetest", "internal/cli/clitest", "bench/seed"}, notAgent: true},
	{pkg: "internal/store/storetest", sentence: "Only tests import it.", importers: []string{}},
	{pkg: "internal/store/internal/testhook", sentence: "Only internal/store and internal/store/storetest import it",
		importers: []string{"internal/store", "internal/store/storetest"}},
	{pkg: "internal/tasks", sentence: "Only internal/server and internal/api (which wakes a group's devices when an operator creates or resumes a deployment) import it",
		importers: []string{"internal/server", "internal/api"}, notAgent: true},
	{pkg: "internal/raucbundle", sentence: "The CLI (`rampart image add --type rauc-bundle`) and the agent's RAUC installer import it; it imports only the standard library.",
		importers: []string{"internal/cli/", "internal/agent/"}, imports: []string{}},
	{pkg: "internal/testenv", sentence: "Only tests import it.", importers: []string{"internal/store/storetest", "internal/cli/clitest", "internal/browsertest"}},
	{pkg: "internal/token", sentence: "The API, the web console (sign-in), the server (the first admin token), the CLI's research verbs and the console's OIDC sign-in (internal/sso) import it.",
		importers: []string{"internal/api", "internal/console", "internal/server", "internal/cli/research", "internal/sso"}},
	{pkg: "internal/tuf", sentence: "The server and the admin CLI import it; the device agent must not",
		importers: []string{"internal/release", "internal/server", "internal/api", "internal/cli/", "internal/agent/update/updatetest"}, notAgent: true},
	{pkg: "internal/watchdog", sentence: "It imports only the standard library, so the public client (client), the agent's device-API client (internal/agent/devclient) and its updater (internal/agent/update) may import it.",
		importers: []string{"client", "internal/agent/devclient", "internal/agent/update"}, imports: []string{}},
	{pkg: "internal/wake", sentence: "The server makes the hub; the API's device routes (which hold the long-poll) and internal/tasks (which wakes a deployment's devices) import it too.",
		importers: []string{"internal/server", "internal/api", "internal/tasks"}, notAgent: true},
}

// claim finds a sentence about who may import a package or what it may import.
var claim = regexp.MustCompile(`(?i)\b(imports? it|imported by|import it|may import|links it|never links|imports only|depends only|depends on no|may depend)\b`)

type pkgInfo struct {
	dir     string
	imports []string
}

func goTool(t *testing.T) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		testenv.Missing(t, "the go command", "install Go and put it on PATH")
	}
	return gobin
}

// list returns the module's packages by path relative to the module, with their non-test
// imports, for the given build tags.
func list(t *testing.T, tags string) map[string]pkgInfo {
	t.Helper()
	cmd := exec.Command(goTool(t), "list", "-e", "-tags", tags, "-f", "{{.ImportPath}}|{{.Dir}}|{{join .Imports \",\"}}", module+"...")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs := map[string]pkgInfo{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.SplitN(line, "|", 3)
		if len(f) != 3 || !strings.HasPrefix(f[0], module) {
			continue
		}
		var imports []string
		if f[2] != "" {
			imports = strings.Split(f[2], ",")
		}
		pkgs[strings.TrimPrefix(f[0], module)] = pkgInfo{dir: f[1], imports: imports}
	}
	if len(pkgs) < 20 {
		t.Fatalf("go list found %d packages; the check would prove nothing", len(pkgs))
	}
	return pkgs
}

// matches reports whether pkg is one of the paths (an entry ending in "/" covers a folder).
func matches(pkg string, paths []string) bool {
	for _, p := range paths {
		if p == anyone || p == pkg || strings.HasSuffix(p, "/") && (pkg == strings.TrimSuffix(p, "/") || strings.HasPrefix(pkg, p)) {
			return true
		}
	}
	return false
}

// packageDoc returns the package comment of the Go files in dir, whitespace collapsed.
func packageDoc(t *testing.T, dir string) string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	var docs []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.PackageClauseOnly|parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		if af.Doc != nil {
			docs = append(docs, af.Doc.Text())
		}
	}
	return strings.Join(strings.Fields(strings.Join(docs, " ")), " ")
}

// TestImportSentences checks every rule against the packages that import each package and the
// packages it imports, and that the package comment still says what the rule holds.
func TestImportSentences(t *testing.T) {
	def, sim := list(t, ""), list(t, "simulator")
	importers := map[string][]string{}
	for _, pkgs := range []map[string]pkgInfo{def, sim} {
		for p, info := range pkgs {
			for _, imp := range info.imports {
				if rel, ok := strings.CutPrefix(imp, module); ok && !slices.Contains(importers[rel], p) {
					importers[rel] = append(importers[rel], p)
				}
			}
		}
	}
	agent, err := exec.Command(goTool(t), "list", "-deps", module+"cmd/rampart-agent").Output()
	if err != nil {
		t.Fatalf("go list -deps rampart-agent: %v", err)
	}
	agentDeps := strings.Fields(string(agent))

	for _, r := range rules {
		t.Run(r.pkg, func(t *testing.T) {
			info, ok := def[r.pkg]
			if !ok {
				info, ok = sim[r.pkg]
			}
			if !ok {
				t.Fatalf("no package %s", r.pkg)
			}
			if doc := packageDoc(t, info.dir); !strings.Contains(doc, r.sentence) {
				t.Errorf("the package comment no longer says %q; change the rule with it:\n%s", r.sentence, doc)
			}
			for _, by := range importers[r.pkg] {
				if !matches(by, r.importers) {
					t.Errorf("%s imports %s, which its package comment does not allow: %q (if the import is right, say so in the comment and in this rule)", by, r.pkg, r.sentence)
				}
			}
			if r.imports != nil {
				for _, imp := range info.imports {
					first, _, _ := strings.Cut(imp, "/")
					if !strings.Contains(first, ".") {
						continue // the standard library
					}
					if !matches(strings.TrimPrefix(imp, module), r.imports) && !matches(imp, r.imports) {
						t.Errorf("%s imports %s, which its package comment does not allow: %q", r.pkg, imp, r.sentence)
					}
				}
			}
			if r.notAgent && slices.Contains(agentDeps, module+r.pkg) {
				t.Errorf("rampart-agent links %s, which its package comment forbids: %q", r.pkg, r.sentence)
			}
		})
	}
}

// TestEveryClaimHasARule fails when a package comment says who may import the package, or what
// it may import, and no rule above holds the sentence.
func TestEveryClaimHasARule(t *testing.T) {
	ruled := map[string]bool{}
	for _, r := range rules {
		ruled[r.pkg] = true
	}
	for p, info := range list(t, "simulator") {
		if ruled[p] || info.dir == "" {
			continue
		}
		if doc := packageDoc(t, info.dir); claim.MatchString(doc) {
			t.Errorf("package %s's comment makes a claim about imports that no rule in deptest_test.go holds: %q", p, claim.FindString(doc))
		}
	}
}
