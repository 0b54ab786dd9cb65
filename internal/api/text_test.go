package api

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/ca"
)

// notText are path and query values that are not text both databases store: invalid UTF-8 (a
// lone continuation byte, an overlong encoding, a surrogate) and NUL.
var notText = []string{"%FF", "a%C0%AF", "%ED%A0%80", "x%00y"}

var probeParam = regexp.MustCompile(`\{[a-z]+(\.\.\.)?\}`)

// TestInvalidTextRefused sends invalid UTF-8 and NUL in every path parameter and every query
// parameter of every admin, researcher and device route, with credentials that pass the route's
// authentication, on both databases: each answer is 400 in the error envelope and nothing is
// written. On PostgreSQL these were 500s (product, group and program names, filters, the audit
// and coverage queries, the pagination cursor).
func TestInvalidTextRefused(t *testing.T) {
	eachDB(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		s := h.seedVulnerability(t, h.admin, "default")
		dev := h.newDevice("default")
		cert := h.issue("default", dev, ca.ProfileNormal, time.Now())
		check := func(t *testing.T, what string, status int, body string) {
			t.Helper()
			if status != 400 {
				t.Fatalf("%s: status = %d, want 400; body %.200s", what, status, body)
			}
			var eb client.ErrorBody
			if err := json.Unmarshal([]byte(body), &eb); err != nil || eb.Error.Code != "bad_request" || !strings.Contains(eb.Error.Message, "UTF-8") {
				t.Errorf("answer %s is not a bad_request envelope naming UTF-8", body)
			}
		}
		var probes int
		all := append(append([]route{}, h.api.routes...), h.api.deviceRoutes...)
		for _, rt := range all {
			tok := h.admin
			if strings.HasPrefix(rt.path, "/research/") {
				tok = s.bob
			}
			params := probeParam.FindAllString(rt.path, -1)
			query := append([]string{"limit", "after"}, rt.doc.query...)
			for _, bad := range notText {
				var paths []string
				for i := range params {
					// One parameter bad at a time, the others plausible, so each reaches its lookup.
					p := rt.path
					for j, name := range params {
						v := "1"
						if j == i {
							v = bad
						}
						p = strings.Replace(p, name, v, 1)
					}
					paths = append(paths, p)
				}
				base := probeParam.ReplaceAllString(rt.path, "1")
				for _, q := range query {
					paths = append(paths, base+"?"+q+"="+bad)
				}
				paths = append(paths, base+"?"+bad+"=1")
				for _, p := range paths {
					probes++
					t.Run(rt.method+" "+p, func(t *testing.T) {
						before := h.snapshot()
						var status int
						var body string
						if strings.HasPrefix(rt.path, "/device/") && rt.method == "GET" {
							status, body = h.deviceGet(p, &cert)
						} else {
							status, body = h.raw(rt.method, p, tok, "application/json", `{}`)
						}
						check(t, rt.method+" "+p, status, body)
						if after := h.snapshot(); len(after) != len(before) {
							t.Errorf("the database changed: %v -> %v", before, after)
						}
					})
				}
			}
		}
		if probes < 300 {
			t.Errorf("only %d probes: the route table was not read", probes)
		}
		// Unrouted paths and the pagination cursor in particular.
		for _, p := range []string{"/api/v1/%FF", "/research/%FF", "/device/v1/%FF", "/api/v1/audit?after=%FF", "/api/v1/products?after=%C3"} {
			status, body := h.raw("GET", p, h.admin, "", "")
			check(t, "GET "+p, status, body)
		}
		// A JSON body may not smuggle a NUL in a string; the text "\u0000" (escaped backslash) is fine.
		status, body := h.raw("POST", "/api/v1/products", h.admin, "application/json", `{"name":"lamp-2","description":"a\u0000b"}`)
		if status != 400 || !strings.Contains(body, "NUL") {
			t.Errorf("NUL in a JSON string: %d %s", status, body)
		}
		if _, err := h.client(h.admin).CreateProduct(ctx, client.CreateProductRequest{Name: "lamp-3", Description: `printf("\u0000")`}); err != nil {
			t.Errorf("a description with the text \\u0000: %v", err)
		}
		// Valid non-ASCII text still goes through to the route.
		if status, body := h.raw("GET", "/api/v1/products/caf%C3%A9", h.admin, "", ""); status != 404 {
			t.Errorf("valid UTF-8 name: %d %s", status, body)
		}
	})
}

func TestHasEscapedNUL(t *testing.T) {
	for doc, want := range map[string]bool{
		`{"a":"\u0000"}`:    true,
		`{"a":"x\\\u0000"}`: true,
		`{"a":"\\u0000"}`:   false,
		`{"a":"\\\\u0000"}`: false,
		`{"a":"\u00001"}`:   true,
		`{"a":"\u0001"}`:    false,
		`{"a":"\u000"}`:     false,
		`\`:                 false,
	} {
		if got := hasEscapedNUL([]byte(doc)); got != want {
			t.Errorf("hasEscapedNUL(%s) = %v, want %v", doc, got, want)
		}
	}
}
