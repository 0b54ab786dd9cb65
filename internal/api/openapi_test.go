package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestOpenAPILint holds the served document to the rules of redocly's recommended lint that it
// once failed (`redocly lint` reported no servers, two public operations without security and 80
// operations without a 4xx response), plus the structural ones they rest on: every operation
// declares security (an empty list for the public ones, on purpose), documents its client errors
// in the one envelope, has a unique operationId, and every $ref resolves.
func TestOpenAPILint(t *testing.T) {
	h := newHarness(t, "sqlite")
	status, body := h.raw("GET", "/api/v1/openapi.json", "", "", "")
	if status != http.StatusOK {
		t.Fatalf("openapi.json status %d", status)
	}
	var d map[string]any
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		t.Fatal(err)
	}
	// no-empty-servers, no-server-trailing-slash.
	servers, _ := d["servers"].([]any)
	if len(servers) == 0 {
		t.Error("no servers")
	}
	for _, s := range servers {
		u, _ := s.(map[string]any)["url"].(string)
		if u == "" || (u != "/" && strings.HasSuffix(u, "/")) {
			t.Errorf("server url %q", u)
		}
	}
	// Every $ref resolves inside the document.
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok && resolve(d, ref) == nil {
				t.Errorf("$ref %s does not resolve", ref)
			}
			for _, e := range v {
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(d)

	public := map[string]bool{}
	for _, rt := range h.api.routes {
		if rt.access.public {
			public[rt.method+" "+rt.path] = true
		}
	}
	if !public["GET /api/v1/openapi.json"] || !public["POST /research/v1/applications"] {
		t.Fatalf("the public routes changed: %v", public)
	}
	ids := map[string]string{}
	ops := 0
	for path, item := range d["paths"].(map[string]any) {
		for method, o := range item.(map[string]any) {
			ops++
			name := strings.ToUpper(method) + " " + path
			op := o.(map[string]any)
			// security-defined: declared on every operation; public ones say so with [].
			sec, ok := op["security"].([]any)
			switch {
			case !ok:
				t.Errorf("%s: no security", name)
			case public[name] && len(sec) != 0:
				t.Errorf("%s is public but declares security %v", name, sec)
			case !public[name] && len(sec) == 0:
				t.Errorf("%s needs a token but declares no security", name)
			}
			// operation-operationId-unique.
			id, _ := op["operationId"].(string)
			if other, dup := ids[id]; dup || id == "" {
				t.Errorf("%s: operationId %q empty or also on %s", name, id, other)
			}
			ids[id] = name
			// operation-4xx-response, each in the error envelope.
			var fours []string
			for code, r := range op["responses"].(map[string]any) {
				if !strings.HasPrefix(code, "4") {
					continue
				}
				fours = append(fours, code)
				resp := resolve(d, r.(map[string]any)["$ref"].(string))
				schema := resp.(map[string]any)["content"].(map[string]any)["application/json"].(map[string]any)["schema"].(map[string]any)
				if schema["$ref"] != "#/components/schemas/Error" {
					t.Errorf("%s: %s is not the error envelope", name, code)
				}
			}
			if len(fours) == 0 {
				t.Errorf("%s: no 4xx response", name)
			}
			if !strings.Contains(strings.Join(fours, " "), "400") {
				t.Errorf("%s: 400 undocumented (every route checks its path and query)", name)
			}
		}
	}
	if ops != len(h.api.routes) {
		t.Errorf("%d operations for %d routes", ops, len(h.api.routes))
	}
}

// resolve follows a local JSON pointer (#/a/b) in d, or returns nil.
func resolve(d map[string]any, ref string) any {
	p, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil
	}
	var cur any = d
	for _, part := range strings.Split(p, "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		if cur, ok = m[part]; !ok {
			return nil
		}
	}
	return cur
}
