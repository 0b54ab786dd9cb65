package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

func eachDB(t *testing.T, fn func(t *testing.T, h *harness)) {
	for _, kind := range storetest.Kinds {
		t.Run(kind, func(t *testing.T) { fn(t, newHarness(t, kind)) })
	}
}

// TestBadInput sends each class of bad input and checks the status, the one error envelope,
// a clear message, and that nothing was written.
func TestBadInput(t *testing.T) {
	eachDB(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		other := h.tenantAdmin("globex")
		if _, err := h.client(h.admin).CreateProduct(ctx, client.CreateProductRequest{Name: "thermostat"}); err != nil {
			t.Fatal(err)
		}
		reader := h.token(h.admin, "reader").Secret
		operator := h.token(h.admin, "operator").Secret
		revokedTok := h.token(h.admin, "admin")
		if _, err := h.client(h.admin).RevokeToken(ctx, revokedTok.ID); err != nil {
			t.Fatal(err)
		}
		const js = "application/json"
		tests := []struct {
			name, method, path, tok, ctype, body string
			status                               int
			code, msg                            string
		}{
			{"malformed JSON", "POST", "/api/v1/products", h.admin, js, `{"name": "x"`, 400, "bad_request", "request body is truncated JSON"},
			{"syntax error", "POST", "/api/v1/products", h.admin, js, `{"name": x}`, 400, "bad_request", "request body is not valid JSON (at byte 10)"},
			{"unknown field", "POST", "/api/v1/products", h.admin, js, `{"name": "x", "colour": "red"}`, 400, "bad_request", `unknown field "colour"`},
			{"wrong type", "POST", "/api/v1/products", h.admin, js, `{"name": 42}`, 400, "bad_request", `field "name" must be a string, not number`},
			{"not an object", "POST", "/api/v1/products", h.admin, js, `["x"]`, 400, "bad_request", "request body must be a JSON object, not array"},
			{"empty body", "POST", "/api/v1/products", h.admin, js, ``, 400, "bad_request", "request body is empty; a JSON object is required"},
			{"two objects", "POST", "/api/v1/products", h.admin, js, `{"name":"a"}{"name":"b"}`, 400, "bad_request", "request body must hold a single JSON object"},
			{"oversized body", "POST", "/api/v1/products", h.admin, js, `{"name":"a","description":"` + strings.Repeat("x", MaxBodyBytes) + `"}`, 413, "too_large", "request body is larger than 1048576 bytes"},
			{"wrong content type", "POST", "/api/v1/products", h.admin, "text/plain", `{"name":"a"}`, 415, "unsupported_media_type", "request body must be application/json"},
			{"bad name", "POST", "/api/v1/products", h.admin, js, `{"name":"../etc"}`, 400, "bad_request", `product name "../etc" must be 1-64 letters, digits, spaces, dots, dashes or underscores, starting with a letter or digit`},
			{"long description", "POST", "/api/v1/products", h.admin, js, `{"name":"a","description":"` + strings.Repeat("x", 501) + `"}`, 400, "bad_request", "description must be one line of at most 500 bytes"},
			{"duplicate product", "POST", "/api/v1/products", h.admin, js, `{"name":"thermostat"}`, 409, "conflict", "product thermostat already exists"},
			{"duplicate group", "POST", "/api/v1/products/thermostat/groups", h.admin, js, `{"name":"Production"}`, 409, "conflict", "group Production in product thermostat already exists"},
			{"duplicate tenant", "POST", "/api/v1/tenants", h.admin, js, `{"name":"globex"}`, 409, "conflict", "tenant globex already exists"},
			{"bad tenant name", "POST", "/api/v1/tenants", h.admin, js, `{"name":"Big Corp"}`, 400, "bad_request", `tenant name "Big Corp" must be 1-63 lowercase letters, digits or dashes, starting and ending with a letter or digit`},
			{"unknown role", "POST", "/api/v1/tokens", h.admin, js, `{"role":"root"}`, 400, "bad_request", `role "root" is not one of admin, operator, reader`},
			{"missing token", "GET", "/api/v1/products", "", "", "", 401, "unauthorized", "an API token is required (Authorization: Bearer <token>)"},
			{"malformed token", "GET", "/api/v1/products", "hello", "", "", 401, "unauthorized", "the API token is malformed"},
			{"unknown token", "GET", "/api/v1/products", "rpt_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "", "", 401, "unauthorized", "the API token is not valid"},
			{"revoked token", "GET", "/api/v1/products", revokedTok.Secret, "", "", 401, "unauthorized", "the API token was revoked"},
			{"reader writes", "POST", "/api/v1/products", reader, js, `{"name":"lamp"}`, 403, "forbidden", "this endpoint needs the operator role; the token has reader"},
			{"operator makes token", "POST", "/api/v1/tokens", operator, js, `{"role":"admin"}`, 403, "forbidden", "this endpoint needs the admin role; the token has operator"},
			{"tenant admin makes tenant", "POST", "/api/v1/tenants", other, js, `{"name":"initech"}`, 403, "forbidden", "this endpoint needs a service administrator's token"},
			{"tenant admin token elsewhere", "POST", "/api/v1/tokens", other, js, `{"role":"admin","tenant":"default"}`, 403, "forbidden", "only a service administrator may create tokens for another tenant"},
			{"foreign product read", "GET", "/api/v1/products/thermostat", other, "", "", 404, "not_found", "product thermostat not found"},
			{"foreign group write", "POST", "/api/v1/products/thermostat/groups", other, js, `{"name":"Canary"}`, 404, "not_found", "product thermostat not found"},
			{"foreign token revoke", "DELETE", "/api/v1/tokens/" + revokedTok.ID, other, "", "", 404, "not_found", "token " + revokedTok.ID + " not found"},
			{"revoke twice", "DELETE", "/api/v1/tokens/" + revokedTok.ID, h.admin, "", "", 409, "conflict", "token " + revokedTok.ID + " is already revoked"},
			{"bad device id", "GET", "/api/v1/devices/xyz", h.admin, "", "", 400, "bad_request", `device ID "xyz" must be 64 lowercase hex digits (the SHA-256 of the device's identity key)`},
			{"bad limit", "GET", "/api/v1/products?limit=0", h.admin, "", "", 400, "bad_request", "limit must be a whole number from 1 to 500"},
			{"huge limit", "GET", "/api/v1/products?limit=100000", h.admin, "", "", 400, "bad_request", "limit must be a whole number from 1 to 500"},
			{"bad audit cursor", "GET", "/api/v1/audit?after=abc", h.admin, "", "", 400, "bad_request", "the after cursor is not one this server issued; start from the first page"},
			{"group without product", "GET", "/api/v1/devices?group=Production", h.admin, "", "", 400, "bad_request", "group needs product: a group is named within a product"},
			{"unknown endpoint", "GET", "/api/v1/nothing", h.admin, "", "", 404, "not_found", "no such API endpoint: GET /api/v1/nothing"},
			{"wrong method", "PUT", "/api/v1/products", h.admin, js, `{}`, 405, "method_not_allowed", "PUT is not allowed on /api/v1/products; use GET or POST"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				before := h.snapshot()
				status, body := h.raw(tt.method, tt.path, tt.tok, tt.ctype, tt.body)
				if status != tt.status {
					t.Fatalf("status = %d, want %d; body %s", status, tt.status, body)
				}
				if tt.code != "" {
					var eb client.ErrorBody
					if err := json.Unmarshal([]byte(body), &eb); err != nil {
						t.Fatalf("answer is not the error envelope: %s", body)
					}
					if eb.Error.Code != tt.code || eb.Error.Message != tt.msg {
						t.Errorf("error = %+v, want code %q and the message %q", eb.Error, tt.code, tt.msg)
					}
					if strings.Contains(eb.Error.Message, "sql") || strings.Contains(eb.Error.Message, "SQLSTATE") {
						t.Errorf("message leaks an internal cause: %q", eb.Error.Message)
					}
				}
				if diff := cmp.Diff(h.snapshot(), before); diff != "" {
					t.Errorf("a refused request changed the database (-after +before):\n%s", diff)
				}
			})
		}
	})
}

// isolationCases has one probe per admin route: tenant B's admin calls it on tenant A's data.
// TestTenantIsolation fails when a route has no probe, so a new endpoint cannot skip the check.
type isolationCase struct {
	method, path, body string
	// wantStatus is the refusal; 0 means the call succeeds but must not show A's data.
	wantStatus int
}

func TestTenantIsolation(t *testing.T) {
	eachDB(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		ac := h.client(h.admin)
		p, err := ac.CreateProduct(ctx, client.CreateProductRequest{Name: "secret-thermostat"})
		if err != nil {
			t.Fatal(err)
		}
		aTok := h.token(h.admin, "reader")
		tenantA, _ := h.store.TenantByName(ctx, "default")
		prod, _ := h.store.ProductByName(ctx, tenantA.ID, p.Name)
		grp, _ := h.store.GroupByName(ctx, tenantA.ID, p.Name, "Production")
		devID := strings.Repeat("ab", 32)
		h.insertDevice(tenantA.ID, prod.ID, grp.ID, devID)

		imageID := h.updatesFor(h.admin, p.Name)

		bAdmin := h.tenantAdmin("globex")
		rel := "/api/v1/products/secret-thermostat/releases"
		cases := map[string]isolationCase{
			"GET /api/v1/openapi.json":                      {"GET", "/api/v1/openapi.json", "", 0},
			"GET /api/v1/whoami":                            {"GET", "/api/v1/whoami", "", 0},
			"GET /api/v1/tenants":                           {"GET", "/api/v1/tenants", "", http.StatusForbidden},
			"POST /api/v1/tenants":                          {"POST", "/api/v1/tenants", `{"name":"initech"}`, http.StatusForbidden},
			"GET /api/v1/tokens":                            {"GET", "/api/v1/tokens", "", 0},
			"POST /api/v1/tokens":                           {"POST", "/api/v1/tokens", `{"role":"admin","tenant":"default"}`, http.StatusForbidden},
			"DELETE /api/v1/tokens/{id}":                    {"DELETE", "/api/v1/tokens/" + aTok.ID, "", http.StatusNotFound},
			"GET /api/v1/products":                          {"GET", "/api/v1/products", "", 0},
			"POST /api/v1/products":                         {"POST", "/api/v1/products", `{"name":"b-thermostat"}`, 0},
			"GET /api/v1/products/{product}":                {"GET", "/api/v1/products/secret-thermostat", "", http.StatusNotFound},
			"GET /api/v1/products/{product}/groups":         {"GET", "/api/v1/products/secret-thermostat/groups", "", http.StatusNotFound},
			"POST /api/v1/products/{product}/groups":        {"POST", "/api/v1/products/secret-thermostat/groups", `{"name":"Canary"}`, http.StatusNotFound},
			"GET /api/v1/products/{product}/groups/{group}": {"GET", "/api/v1/products/secret-thermostat/groups/Production", "", http.StatusNotFound},
			"GET /api/v1/ca":                                {"GET", "/api/v1/ca", "", 0},
			"GET /api/v1/devices":                           {"GET", "/api/v1/devices", "", 0},
			"GET /api/v1/coverage/series":                   {"GET", "/api/v1/coverage/series?product=secret-thermostat&release=1.0.0", "", http.StatusNotFound},
			"GET /api/v1/fleet":                             {"GET", "/api/v1/fleet?product=secret-thermostat", "", http.StatusNotFound},
			"GET /api/v1/devices/{id}":                      {"GET", "/api/v1/devices/" + devID, "", http.StatusNotFound},
			"GET /api/v1/audit":                             {"GET", "/api/v1/audit", "", 0},
			"GET /api/v1/audit/verify":                      {"GET", "/api/v1/audit/verify", "", 0},

			"POST /api/v1/devices/{id}/claim":                            {"POST", "/api/v1/devices/" + devID + "/claim", `{"product":"secret-thermostat"}`, http.StatusNotFound},
			"POST /api/v1/devices/{id}/move":                             {"POST", "/api/v1/devices/" + devID + "/move", `{"group":"Production"}`, http.StatusNotFound},
			"GET /api/v1/devices/{id}/installs":                          {"GET", "/api/v1/devices/" + devID + "/installs", "", http.StatusNotFound},
			"GET /api/v1/devices/{id}/crashes":                           {"GET", "/api/v1/devices/" + devID + "/crashes", "", http.StatusNotFound},
			"GET /api/v1/devices/{id}/attestations":                      {"GET", "/api/v1/devices/" + devID + "/attestations", "", http.StatusNotFound},
			"POST /api/v1/preauthorizations":                             {"POST", "/api/v1/preauthorizations", `{"kind":"key","hash":"` + strings.Repeat("cd", 32) + `","product":"secret-thermostat"}`, http.StatusNotFound},
			"GET /api/v1/manufacturer-cas":                               {"GET", "/api/v1/manufacturer-cas", "", http.StatusNotFound},
			"PUT /api/v1/manufacturer-cas":                               {"PUT", "/api/v1/manufacturer-cas", manufacturerBody(t, h), 0},
			"GET /api/v1/products/{product}/attestation-policy":          {"GET", "/api/v1/products/secret-thermostat/attestation-policy", "", http.StatusNotFound},
			"PUT /api/v1/products/{product}/attestation-policy":          {"PUT", "/api/v1/products/secret-thermostat/attestation-policy", `{"accept_software":true}`, http.StatusNotFound},
			"GET /api/v1/tuf/online-keys":                                {"GET", "/api/v1/tuf/online-keys", "", 0},
			"POST /api/v1/tuf/init":                                      {"POST", "/api/v1/tuf/init", `{"root":{},"director_root":{}}`, http.StatusBadRequest},
			"POST /api/v1/tuf/roots":                                     {"POST", "/api/v1/tuf/roots", `{"root":{}}`, http.StatusConflict},
			"GET /api/v1/tuf/roots":                                      {"GET", "/api/v1/tuf/roots", "", http.StatusConflict},
			"POST /api/v1/images":                                        {"POST", "/api/v1/images?component=a&version=1", `{}`, http.StatusUnsupportedMediaType},
			"POST /api/v1/products/{product}/releases":                   {"POST", rel, `{"version":"2.0.0","images":["` + imageID + `"]}`, http.StatusNotFound},
			"GET /api/v1/products/{product}/releases":                    {"GET", rel, "", http.StatusNotFound},
			"GET /api/v1/products/{product}/releases/{version}":          {"GET", rel + "/1.0.0", "", http.StatusNotFound},
			"POST /api/v1/products/{product}/releases/{version}/prepare": {"POST", rel + "/1.0.0/prepare", "", http.StatusNotFound},
			"POST /api/v1/products/{product}/releases/{version}/sign":    {"POST", rel + "/1.0.0/sign", `{"targets":{}}`, http.StatusNotFound},
			"POST /api/v1/products/{product}/releases/{version}/revoke":  {"POST", rel + "/1.0.0/revoke", `{"reason":"x"}`, http.StatusNotFound},
			"POST /api/v1/products/{product}/releases/revoke-affected":   {"POST", rel + "/revoke-affected", "", http.StatusNotFound},
		}
		// Tenant A trusts a manufacturer CA; tenant B must not see it.
		if err := ac.SetManufacturerCAs(ctx, manufacturerPEM(t, h)); err != nil {
			t.Fatal(err)
		}
		vuln := h.seedVulnerability(t, h.admin, "default")
		for k, v := range vulnIsolationCases(t, vuln) {
			cases[k] = v
		}
		ro := h.seedRollout(t, tenantA.ID, prod.ID, devID)
		for k, v := range rolloutIsolationCases(ro) {
			cases[k] = v
		}
		// Secrets of tenant A that must never appear in an answer to tenant B.
		leaks := append([]string{prod.ID, grp.ID, devID, aTok.ID, tenantA.ID}, vuln.leaks()...)
		leaks = append(leaks, ro.leaks()...)
		if imageID != "" {
			leaks = append(leaks, imageID)
		}
		for _, rt := range h.api.routes {
			pattern := rt.method + " " + rt.path
			t.Run(pattern, func(t *testing.T) {
				c, ok := cases[pattern]
				if !ok {
					t.Fatalf("route %s has no tenant-isolation probe; add one to TestTenantIsolation", pattern)
				}
				before := h.snapshot()
				ctype := ""
				if c.body != "" {
					ctype = "application/json"
				}
				status, body := h.raw(c.method, c.path, bAdmin, ctype, c.body)
				for _, l := range leaks {
					// An ID the caller sent may be echoed back; anything else is a leak.
					if strings.Contains(body, l) && !strings.Contains(c.path, l) {
						t.Errorf("tenant B's answer holds tenant A's %s: %s", l, body)
					}
				}
				if c.wantStatus != 0 {
					if status != c.wantStatus {
						t.Errorf("status = %d, want %d; body %s", status, c.wantStatus, body)
					}
					if diff := cmp.Diff(h.snapshot(), before); diff != "" {
						t.Errorf("refused request changed the database (-after +before):\n%s", diff)
					}
				} else if status >= 300 {
					t.Errorf("status = %d; body %s", status, body)
				}
			})
		}
		// The same name in tenant B is B's own product; A's is untouched.
		bc := h.client(bAdmin)
		if _, err := bc.CreateProduct(ctx, client.CreateProductRequest{Name: "secret-thermostat"}); err != nil {
			t.Errorf("B creating a product named like A's: %v", err)
		}
		got, err := ac.GetProduct(ctx, "secret-thermostat")
		if err != nil || got.ID != p.ID {
			t.Errorf("tenant A's product changed: %+v, %v", got, err)
		}
		v, err := ac.VerifyAudit(ctx)
		if err != nil || !v.Intact {
			t.Errorf("tenant A's audit chain: %+v, %v", v, err)
		}
	})
}

func TestRoles(t *testing.T) {
	h := newHarness(t, "sqlite")
	ctx := context.Background()
	for _, tt := range []struct {
		role                     string
		read, write, tokens, aud bool
	}{
		{"reader", true, false, false, false},
		{"operator", true, true, false, false},
		{"admin", true, true, true, true},
	} {
		t.Run(tt.role, func(t *testing.T) {
			c := h.client(h.token(h.admin, tt.role).Secret)
			_, err := c.ListProducts(ctx, client.ListOptions{})
			check(t, "read", err, tt.read)
			_, err = c.CreateProduct(ctx, client.CreateProductRequest{Name: "p-" + tt.role})
			check(t, "write", err, tt.write)
			_, err = c.ListTokens(ctx, client.ListOptions{})
			check(t, "tokens", err, tt.tokens)
			_, err = c.VerifyAudit(ctx)
			check(t, "audit", err, tt.aud)
		})
	}
}

func check(t *testing.T, what string, err error, allowed bool) {
	t.Helper()
	switch {
	case allowed && err != nil:
		t.Errorf("%s: %v, want allowed", what, err)
	case !allowed && !client.IsStatus(err, http.StatusForbidden):
		t.Errorf("%s: %v, want 403", what, err)
	}
}

func TestListsPaginate(t *testing.T) {
	eachDB(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		c := h.client(h.admin)
		var want []string
		for i := range 5 {
			name := fmt.Sprintf("p%d", i)
			want = append(want, name)
			if _, err := c.CreateProduct(ctx, client.CreateProductRequest{Name: name}); err != nil {
				t.Fatal(err)
			}
		}
		var got []string
		pages := 0
		o := client.ListOptions{Limit: 2}
		for {
			l, err := c.ListProducts(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, p := range l.Items {
				got = append(got, p.Name)
			}
			if l.Next == "" {
				break
			}
			o.After = l.Next
		}
		if diff := cmp.Diff(got, want); diff != "" || pages != 3 {
			t.Errorf("pages = %d, products (-got +want):\n%s", pages, diff)
		}
		recs, err := client.All(ctx, func(ctx context.Context, o client.ListOptions) (client.List[client.AuditRecord], error) {
			o.Limit = 3
			return c.ListAudit(ctx, "product.create", o)
		})
		if err != nil || len(recs) != 5 {
			t.Fatalf("audit product.create records = %d, %v; want 5", len(recs), err)
		}
	})
}

// TestOpenAPIMatchesRoutes keeps the document in step with the route table and the mux.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	h := newHarness(t, "sqlite")
	status, body := h.raw("GET", "/api/v1/openapi.json", "", "", "")
	if status != http.StatusOK {
		t.Fatalf("openapi.json status %d", status)
	}
	var d struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		t.Fatal(err)
	}
	if d.OpenAPI != "3.1.0" {
		t.Errorf("openapi = %q", d.OpenAPI)
	}
	var documented, routed []string
	for path, ops := range d.Paths {
		for method, op := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
			var o struct {
				Summary    string `json:"summary"`
				Parameters []struct {
					Name, In string
				} `json:"parameters"`
				Responses map[string]json.RawMessage `json:"responses"`
			}
			json.Unmarshal(op, &o)
			if o.Summary == "" || len(o.Responses) < 2 {
				t.Errorf("%s %s: no summary or responses", method, path)
			}
			for _, m := range pathParam.FindAllStringSubmatch(path, -1) {
				if !slices.ContainsFunc(o.Parameters, func(p struct{ Name, In string }) bool { return p.Name == m[1] && p.In == "path" }) {
					t.Errorf("%s %s: path parameter %s undocumented", method, path, m[1])
				}
			}
		}
	}
	for _, rt := range h.api.routes {
		routed = append(routed, rt.method+" "+rt.path)
		// The mux must serve the documented pattern (not fall through to the catch-all).
		_, pattern := h.api.mux.Handler(mustRequest(t, rt.method, strings.NewReplacer("{", "x", "}", "").Replace(rt.path)))
		if pattern != rt.method+" "+rt.path {
			t.Errorf("mux serves %s %s with %q", rt.method, rt.path, pattern)
		}
	}
	slices.Sort(documented)
	slices.Sort(routed)
	if diff := cmp.Diff(documented, routed); diff != "" {
		t.Errorf("OpenAPI paths differ from routes (-documented +routed):\n%s", diff)
	}
}

func mustRequest(t *testing.T, method, path string) *http.Request {
	r, err := http.NewRequest(method, "http://x"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestDeviceListing(t *testing.T) {
	eachDB(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		c := h.client(h.admin)
		if _, err := c.CreateProduct(ctx, client.CreateProductRequest{Name: "lamp"}); err != nil {
			t.Fatal(err)
		}
		tn, _ := h.store.TenantByName(ctx, "default")
		prod, _ := h.store.ProductByName(ctx, tn.ID, "lamp")
		dev, _ := h.store.GroupByName(ctx, tn.ID, "lamp", "Development")
		prodGrp, _ := h.store.GroupByName(ctx, tn.ID, "lamp", "Production")
		id1, id2 := strings.Repeat("1", 64), strings.Repeat("2", 64)
		h.insertDevice(tn.ID, prod.ID, dev.ID, id1)
		h.insertDevice(tn.ID, prod.ID, prodGrp.ID, id2)
		l, err := c.ListDevices(ctx, client.DeviceFilter{Product: "lamp", Group: "Production"}, client.ListOptions{})
		if err != nil || len(l.Items) != 1 || l.Items[0].ID != id2 {
			t.Fatalf("Production devices = %+v, %v", l.Items, err)
		}
		d, err := c.GetDevice(ctx, id1)
		if err != nil || d.Group != "Development" || d.Product != "lamp" || d.CurrentRelease != "1.0.0" {
			t.Fatalf("GetDevice = %+v, %v", d, err)
		}
		g, err := c.GetGroup(ctx, "lamp", "Production")
		if err != nil || g.Devices != 1 {
			t.Fatalf("GetGroup = %+v, %v", g, err)
		}
		// The group list counts each group's devices, unless asked not to (devices -1).
		for q, want := range map[string][]int{"": {1, 0, 1}, "?count=true": {1, 0, 1}, "?count=false": {-1, -1, -1}} {
			var gl client.List[client.Group]
			if err := c.Do(ctx, "GET", "/api/v1/products/lamp/groups"+q, nil, &gl); err != nil {
				t.Fatalf("groups%s: %v", q, err)
			}
			var got []int
			for _, g := range gl.Items {
				got = append(got, g.Devices)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("groups%s count %v devices (Development, Field Test, Production), want %v", q, got, want)
			}
		}
		if err := c.Do(ctx, "GET", "/api/v1/products/lamp/groups?count=maybe", nil, nil); !client.IsStatus(err, 400) || !strings.Contains(err.Error(), "count must be true or false") {
			t.Errorf("groups?count=maybe: %v, want 400", err)
		}
		if _, err := c.ListDevices(ctx, client.DeviceFilter{Product: "nope"}, client.ListOptions{}); !client.IsStatus(err, 404) {
			t.Errorf("unknown product filter: %v, want 404", err)
		}
	})
}

// manufacturerPEM is a CA certificate usable as a manufacturer CA bundle in tests.
func manufacturerPEM(t *testing.T, h *harness) string {
	t.Helper()
	got, err := h.client(h.admin).GetCA(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return got.PEM
}

func manufacturerBody(t *testing.T, h *harness) string {
	t.Helper()
	b, err := json.Marshal(client.ManufacturerCAs{PEM: manufacturerPEM(t, h)})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
