package console_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/console"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// benchDevices is the fleet BenchmarkConsole seeds; RAMPART_BENCH_DEVICES changes it.
func benchDevices() int {
	if n, err := strconv.Atoi(os.Getenv("RAMPART_BENCH_DEVICES")); err == nil && n > 0 {
		return n
	}
	return 100_000
}

// BenchmarkConsole measures the server time of the console's device list and fleet overview
// pages at 100,000 devices, each beside the API call that reads the same data in the same run,
// and a bare net/http handler writing a page of the same size (the ceiling). Requests go
// through the server's whole handler in process (no network): routing, session or token
// lookup, the API route, the store's queries, the template.
//
//	go test -run '^$' -bench BenchmarkConsole -benchtime 200x ./internal/console
func BenchmarkConsole(b *testing.B) {
	for _, kind := range storetest.Kinds {
		b.Run(kind, func(b *testing.B) {
			h := newHarness(b, kind)
			n := benchDevices()
			seedFleet(b, h, n)
			cookie := benchSignIn(b, h)
			page := func(r *http.Request) { r.AddCookie(cookie) }
			api := func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+h.admin) }
			var devicesPage int
			for _, c := range []struct {
				name, path string
				auth       func(*http.Request)
			}{
				{"devices-page", "/devices", page},
				{"devices-api", "/api/v1/devices", api},
				{"devices-filtered-page", "/devices?attestation=warning&sort=seen&product=bench", page},
				{"devices-filtered-api", "/api/v1/devices?attestation=warning&sort=seen&product=bench", api},
				{"devices-page-deep", "/devices?sort=release&after=" + url.QueryEscape(fmt.Sprintf("%064x:1.1", n/2)), page},
				{"devices-api-deep", "/api/v1/devices?sort=release&after=" + url.QueryEscape(fmt.Sprintf("%064x:1.1", n/2)), api},
				{"overview-page", "/", page},
				{"overview-api", "/api/v1/fleet", api},
			} {
				b.Run(fmt.Sprintf("%s/%d", c.name, n), func(b *testing.B) {
					req := httptest.NewRequest("GET", c.path, nil)
					c.auth(req)
					rec := httptest.NewRecorder()
					h.srv.Handler().ServeHTTP(rec, req)
					if rec.Code != 200 {
						b.Fatalf("%s: %d %.500s", c.path, rec.Code, rec.Body.String())
					}
					if c.name == "devices-page" {
						devicesPage = rec.Body.Len()
					}
					b.ResetTimer()
					for b.Loop() {
						rec := httptest.NewRecorder()
						h.srv.Handler().ServeHTTP(rec, req.Clone(req.Context()))
						if rec.Code != 200 {
							b.Fatalf("%s: %d", c.path, rec.Code)
						}
					}
				})
			}
			// What the overview's count costs when the API counts again (at most every
			// api.FleetCountsTTL per tenant; the two rows above answer from the count).
			b.Run(fmt.Sprintf("fleet-recount/%d", n), func(b *testing.B) {
				tn, err := h.srv.Store().TenantByName(context.Background(), "default")
				if err != nil {
					b.Fatal(err)
				}
				for b.Loop() {
					if _, err := h.srv.Store().FleetSummary(context.Background(), tn.ID, ""); err != nil {
						b.Fatal(err)
					}
				}
			})
			// The ceiling: bare net/http writing a page of the device list's size.
			body := []byte(strings.Repeat("x", devicesPage))
			bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				w.Write(body)
			})
			b.Run(fmt.Sprintf("bare-net-http/%d", n), func(b *testing.B) {
				req := httptest.NewRequest("GET", "/devices", nil)
				for b.Loop() {
					bare.ServeHTTP(httptest.NewRecorder(), req)
				}
			})
		})
	}
}

// seedFleet inserts n claimed devices of product "bench" over its three groups, with three
// releases, attestation results (90 % affirming, 5 % warning, 5 % contraindicated) and last
// check-ins spread over four days, in one transaction.
func seedFleet(b *testing.B, h *harness, n int) {
	b.Helper()
	ctx := context.Background()
	ac := h.api(h.admin)
	if _, err := ac.CreateProduct(ctx, client.CreateProductRequest{Name: "bench"}); err != nil {
		b.Fatal(err)
	}
	st := h.srv.Store()
	tn, _ := st.TenantByName(ctx, "default")
	prod, _ := st.ProductByName(ctx, tn.ID, "bench")
	var groups []string
	for _, g := range []string{"Development", "Field Test", "Production"} {
		grp, _ := st.GroupByName(ctx, tn.ID, "bench", g)
		groups = append(groups, grp.ID)
	}
	now := time.Now()
	start := time.Now()
	err := storetest.InTx(ctx, st, func(tx *sql.Tx) error {
		const batch = 100
		for i := 0; i < n; i += batch {
			var q strings.Builder
			q.WriteString(`INSERT INTO devices (id, tenant_id, product_id, group_id, state, attestation, current_release, target_release, last_seen_at, created_at, updated_at) VALUES `)
			var args []any
			for j := i; j < min(i+batch, n); j++ {
				att := "affirming"
				switch j % 20 {
				case 0:
					att = "warning"
				case 1:
					att = "contraindicated"
				}
				rel := []string{"1.0", "1.1", "1.2"}[j%3]
				seen := now.Add(-time.Duration(j%96) * time.Hour).UnixMicro()
				if len(args) > 0 {
					q.WriteString(",")
				}
				k := len(args)
				fmt.Fprintf(&q, "($%d, $%d, $%d, $%d, 'claimed', $%d, $%d, '', $%d, $%d, $%d)", k+1, k+2, k+3, k+4, k+5, k+6, k+7, k+8, k+9)
				args = append(args, fmt.Sprintf("%064x", j), tn.ID, prod.ID, groups[j%3], att, rel, seen, seen, seen)
			}
			if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := storetest.DB(st).ExecContext(ctx, "ANALYZE"); err != nil {
		b.Fatal(err)
	}
	b.Logf("seeded %d devices in %v", n, time.Since(start).Round(time.Millisecond))
}

// benchSignIn opens a console session with the admin token and returns its cookie.
func benchSignIn(b *testing.B, h *harness) *http.Cookie {
	b.Helper()
	req := httptest.NewRequest("POST", "/login", strings.NewReader(url.Values{"token": {h.admin}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	h.srv.Handler().ServeHTTP(rec, req)
	for _, c := range rec.Result().Cookies() {
		if c.Name == console.CookieName {
			return c
		}
	}
	b.Fatalf("sign-in: %d %s", rec.Code, rec.Body.String())
	return nil
}
