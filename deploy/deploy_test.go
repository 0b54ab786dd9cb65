// Package deploy_test checks the deployment examples in deploy/: the Kubernetes manifests with
// kubeconform against Kubernetes' JSON schemas, and the Prometheus alerting rules with promtool
// (their unit tests included). The Grafana dashboard is checked against the metrics the server
// exports in internal/server (TestDeployUsesExportedMetrics).
package deploy_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/testenv"
)

// kubeconformVersion is the kubeconform whose module's test data holds the Kubernetes schema
// definitions the manifests are checked against (no schema is fetched at test time).
const kubeconformVersion = "v0.8.0"

// definitionsFile is, in that module, the cached _definitions.json of Kubernetes' OpenAPI
// (openapi2jsonschema's output for Kubernetes 1.31: 707 definitions).
const definitionsFile = "fixtures/cache/6dc6142c64b944d783a3e783526114da8e747a14a11d8b32dd1f12e2d89a8330"

var manifests = []string{"kubernetes/secrets.example.yaml", "kubernetes/postgres.yaml", "kubernetes/rampart.yaml"}

func tool(t *testing.T, name, how string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if gopath, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		p := filepath.Join(strings.TrimSpace(string(gopath)), "bin", name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	testenv.Missing(t, name, how)
	return ""
}

// schemas writes, into a temporary folder, a schema per kind the manifests use, each a
// reference into the definitions, made strict the way openapi2jsonschema --strict does: an
// object accepts no property its definition does not name, so a misspelt field is an error.
func schemas(t *testing.T) string {
	t.Helper()
	modcache, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(strings.TrimSpace(string(modcache)), "github.com/yannh/kubeconform@"+kubeconformVersion, definitionsFile)
	data, err := os.ReadFile(src)
	if err != nil {
		testenv.Missing(t, "kubeconform's test data (Kubernetes schema definitions)", "go mod download github.com/yannh/kubeconform@"+kubeconformVersion)
	}
	var defs struct {
		Definitions map[string]map[string]any `json:"definitions"`
	}
	if err := json.Unmarshal(data, &defs); err != nil {
		t.Fatal(err)
	}
	for _, d := range defs.Definitions {
		if _, ok := d["properties"]; ok {
			if _, set := d["additionalProperties"]; !set {
				d["additionalProperties"] = false
			}
		}
	}
	dir := t.TempDir()
	out, err := json.Marshal(defs)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "_definitions.json"), out, 0o644); err != nil {
		t.Fatal(err)
	}
	// kubeconform's file names: KIND-GROUP-VERSION.json, KIND-VERSION.json for the core group.
	for _, k := range []struct{ file, def string }{
		{"namespace-v1", "io.k8s.api.core.v1.Namespace"},
		{"secret-v1", "io.k8s.api.core.v1.Secret"},
		{"service-v1", "io.k8s.api.core.v1.Service"},
		{"deployment-apps-v1", "io.k8s.api.apps.v1.Deployment"},
		{"statefulset-apps-v1", "io.k8s.api.apps.v1.StatefulSet"},
		{"poddisruptionbudget-policy-v1", "io.k8s.api.policy.v1.PodDisruptionBudget"},
	} {
		if defs.Definitions[k.def] == nil {
			t.Fatalf("the definitions have no %s", k.def)
		}
		ref := `{"$ref": "_definitions.json#/definitions/` + k.def + `"}`
		if err := os.WriteFile(filepath.Join(dir, k.file+".json"), []byte(ref), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

var summary = regexp.MustCompile(`Summary: (\d+) resources found in (\d+) files - Valid: (\d+), Invalid: (\d+), Errors: (\d+), Skipped: (\d+)`)

// TestKubernetesManifests validates every manifest of deploy/kubernetes with kubeconform, and
// checks that the same schemas refuse a manifest with a misspelt field.
func TestKubernetesManifests(t *testing.T) {
	kc := tool(t, "kubeconform", "go install github.com/yannh/kubeconform/cmd/kubeconform@"+kubeconformVersion)
	dir := schemas(t)
	location := filepath.Join(dir, "{{ .ResourceKind }}{{ .KindSuffix }}.json")
	out, err := exec.Command(kc, append([]string{"-strict", "-summary", "-schema-location", location}, manifests...)...).CombinedOutput()
	t.Logf("kubeconform:\n%s", out)
	if err != nil {
		t.Fatalf("kubeconform: %v", err)
	}
	m := summary.FindStringSubmatch(string(out))
	if m == nil || m[1] != "9" || m[3] != "9" {
		t.Errorf("kubeconform checked %v, want 9 resources, all valid", m)
	}

	// A misspelt probe must not pass: the schemas are strict and do reach into the pod spec.
	data, err := os.ReadFile("kubernetes/rampart.yaml")
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte(strings.Replace(string(data), "readinessProbe:", "readinesProbe:", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(kc, "-strict", "-schema-location", location, bad).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "readinesProbe") {
		t.Errorf("kubeconform accepted a misspelt readinessProbe: %v\n%s", err, out)
	}
}

// TestPrometheusRules checks the alerting rules and runs their unit tests with promtool.
func TestPrometheusRules(t *testing.T) {
	promtool := tool(t, "promtool", "install Debian's prometheus (it has promtool)")
	out, err := exec.Command(promtool, "check", "rules", "prometheus/rampart-rules.yml").CombinedOutput()
	if err != nil || !regexp.MustCompile(`SUCCESS: \d+ rules found`).Match(out) {
		t.Errorf("promtool check rules: %v\n%s", err, out)
	}
	out, err = exec.Command(promtool, "test", "rules", "prometheus/rampart-rules.test.yml").CombinedOutput()
	if err != nil {
		t.Errorf("promtool test rules: %v\n%s", err, out)
	}
}
