package console_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/rampartsec/rampart/client"
)

// consoleProbe is one request of tenant B's signed-in administrator at tenant A's data.
type consoleProbe struct {
	method, path string
	form         url.Values
	// want is the refusal's status; 0 means the page answers (2xx or 3xx) but must not show
	// A's data or change it.
	want int
}

// TestConsoleTenantIsolation probes every console route as another tenant. It fails when a
// route has no probe, so a new page cannot skip the check (the API's TestTenantIsolation does
// the same for its routes).
func TestConsoleTenantIsolation(t *testing.T) {
	eachDB(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		a := seedTenant(t, h)
		bAdmin := h.tenantAdmin("globex")
		b := h.signedIn(bAdmin)
		probes := map[string]consoleProbe{
			"GET /static/{file}":       {"GET", "/static/console.css", nil, 0},
			"GET /login":               {"GET", "/login", nil, 0},
			"POST /login":              {"POST", "/login", url.Values{"token": {"rpt_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}}, http.StatusUnauthorized},
			"POST /logout":             {"POST", "/logout", nil, 0},
			"GET /{$}":                 {"GET", "/", nil, 0},
			"GET /tokens":              {"GET", "/tokens", nil, 0},
			"POST /tokens":             {"POST", "/tokens", url.Values{"role": {"admin"}, "tenant": {"default"}}, 0},
			"POST /tokens/{id}/revoke": {"POST", "/tokens/" + a.tokenID + "/revoke", nil, http.StatusNotFound},
		}
		for k, v := range a.probes() {
			probes[k] = v
		}
		for k, v := range portalProbes() { // the researcher portal's routes (research_test.go)
			probes[k] = v
		}
		for _, rt := range h.srv.Console().Routes() {
			pattern := rt.Pattern()
			t.Run(pattern, func(t *testing.T) {
				p, ok := probes[pattern]
				if !ok {
					t.Fatalf("console route %s has no tenant-isolation probe; add one to TestConsoleTenantIsolation", pattern)
				}
				if pattern == "POST /logout" {
					b = h.signedIn(bAdmin) // signing out ends b's session; the next probes need one
					defer func() { b = h.signedIn(bAdmin) }()
				}
				before := h.snapshot()
				var res response
				if p.method == "GET" {
					res = b.get(p.path)
				} else {
					res = b.post(p.path, p.form)
				}
				for _, l := range a.leaks {
					if strings.Contains(res.body, l) && !strings.Contains(p.path, l) {
						t.Errorf("tenant B's page holds tenant A's %s", l)
					}
				}
				if p.want != 0 {
					if res.status != p.want {
						t.Errorf("status = %d, want %d; body %s", res.status, p.want, res.body)
					}
					if !strings.Contains(res.body, `role="alert"`) {
						t.Errorf("the refusal has no message on the page: %s", res.body)
					}
					if diff := cmp.Diff(h.snapshot(), before); diff != "" {
						t.Errorf("a refused request changed the database (-after +before):\n%s", diff)
					}
				} else if res.status >= 400 {
					t.Errorf("status = %d; body %s", res.status, res.body)
				}
			})
		}
		// Tenant A's chain is intact and A's token still stands.
		v, err := h.api(h.admin).VerifyAudit(ctx)
		if err != nil || !v.Intact {
			t.Errorf("tenant A's audit chain: %+v, %v", v, err)
		}
		toks, err := h.api(h.admin).ListTokens(ctx, client.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, tok := range toks.Items {
			if tok.ID == a.tokenID && tok.RevokedAt != nil {
				t.Error("tenant B revoked tenant A's token")
			}
		}
	})
}

// TestReaderChangesNothing signs in with a reader's token and tries every state-changing
// console route: each is refused with 403 and the API's sentence, and nothing is written.
func TestReaderChangesNothing(t *testing.T) {
	eachDB(t, func(t *testing.T, h *harness) {
		a := seedTenant(t, h)
		reader := h.signedIn(h.token(h.admin, "reader").Secret)
		probes := a.writes()
		probes["POST /tokens"] = consoleProbe{"POST", "/tokens", url.Values{"role": {"reader"}}, http.StatusForbidden}
		probes["POST /tokens/{id}/revoke"] = consoleProbe{"POST", "/tokens/" + a.tokenID + "/revoke", nil, http.StatusForbidden}
		for _, rt := range h.srv.Console().Routes() {
			if rt.Method == "GET" || !rt.Session {
				continue
			}
			pattern := rt.Pattern()
			t.Run(pattern, func(t *testing.T) {
				p, ok := probes[pattern]
				if !ok {
					t.Fatalf("state-changing console route %s has no reader probe; add one to seeded.writes", pattern)
				}
				before := h.snapshot()
				res := reader.post(p.path, p.form)
				if res.status != http.StatusForbidden || !strings.Contains(res.body, "needs the") || !strings.Contains(res.body, `role="alert"`) {
					t.Errorf("status = %d, want 403 with the API's sentence; body %s", res.status, res.body)
				}
				if diff := cmp.Diff(h.snapshot(), before); diff != "" {
					t.Errorf("a reader's request changed the database (-after +before):\n%s", diff)
				}
			})
		}
	})
}
