package api

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// Run with:
//
//	go test -run '^$' -bench . -benchtime 3s ./internal/api/
//
// BenchmarkCeiling is the bare net/http ceiling on the same loopback, client and body size;
// read each figure as a ratio to it.

func benchGet(b *testing.B, srv *httptest.Server, path, tok string) {
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("GET", srv.URL+path, nil)
			if tok != "" {
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

func BenchmarkCeiling(b *testing.B) {
	h := newHarness(b, "sqlite")
	c := h.client(h.admin)
	c.CreateProduct(context.Background(), client.CreateProductRequest{Name: "thermostat"})
	_, body := h.raw("GET", "/api/v1/products/thermostat", h.admin, "", "")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, body)
	}))
	defer srv.Close()
	srv.Client().Transport.(*http.Transport).MaxIdleConnsPerHost = 64
	b.ResetTimer()
	benchGet(b, srv, "/", "")
}

func BenchmarkAdminRead(b *testing.B) {
	for _, kind := range storetest.Kinds {
		b.Run(kind, func(b *testing.B) {
			h := newHarness(b, kind)
			if _, err := h.client(h.admin).CreateProduct(context.Background(), client.CreateProductRequest{Name: "thermostat"}); err != nil {
				b.Fatal(err)
			}
			h.srv.Client().Transport.(*http.Transport).MaxIdleConnsPerHost = 64
			b.ResetTimer()
			benchGet(b, h.srv, "/api/v1/products/thermostat", h.admin)
		})
	}
}

func BenchmarkProductCreate(b *testing.B) {
	for _, kind := range storetest.Kinds {
		b.Run(kind, func(b *testing.B) {
			h := newHarness(b, kind)
			h.srv.Client().Transport.(*http.Transport).MaxIdleConnsPerHost = 64
			c := h.client(h.admin)
			var n atomic.Int64
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					name := fmt.Sprintf("p%d", n.Add(1))
					if _, err := c.CreateProduct(context.Background(), client.CreateProductRequest{Name: name}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// discardWriter is a ResponseWriter that keeps nothing but the status, reused across requests.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkDeviceCheckIn measures what the device API adds to a check-in
// (GET /device/v1/director/timestamp.json): the handler called directly with the request's
// verified TLS state, as net/http hands it over, without TLS or HTTP parsing; its ceiling is a
// bare handler writing the same answer with the same headers. cpu-µs/op is the process's CPU
// time per check-in (getrusage), which on PostgreSQL leaves out the database's own; on a shared
// machine it moves less than ns/op.
func BenchmarkDeviceCheckIn(b *testing.B) {
	for _, kind := range storetest.Kinds {
		b.Run(kind, func(b *testing.B) {
			h := newHarness(b, kind)
			ctx := context.Background()
			dev := h.newDevice("default")
			h.updatesFor(h.admin, "lamp")
			tenant, _ := h.store.TenantByName(ctx, "default")
			if err := h.api.releases.Assign(ctx, store.System, tenant.ID, dev.id, "lamp", "1.0.0"); err != nil {
				b.Fatal(err)
			}
			cert := h.issue("default", dev, ca.ProfileNormal, time.Now())
			req := httptest.NewRequest("GET", "/device/v1/director/timestamp.json", nil)
			req.TLS = &tls.ConnectionState{HandshakeComplete: true, PeerCertificates: []*x509.Certificate{cert.Leaf}}
			rec := httptest.NewRecorder()
			h.api.ServeHTTP(rec, req)
			var ts struct {
				Signed struct {
					Type string `json:"_type"`
				} `json:"signed"`
			}
			if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &ts) != nil || ts.Signed.Type != "timestamp" {
				b.Fatalf("check-in: %d %s", rec.Code, rec.Body)
			}
			body, header := rec.Body.Bytes(), rec.Header()
			// 32 callers per core, each with a request of its own, as many connections check in
			// at once (on PostgreSQL the check-in reads are then batched).
			run := func(b *testing.B, hd http.Handler) float64 {
				b.SetParallelism(32)
				c0 := cpuTime()
				b.RunParallel(func(pb *testing.PB) {
					// A context that can end, as net/http gives every request, below the
					// connection's (ConnContext, as the server sets it).
					rctx, cancel := context.WithCancel(ConnContext(ctx, nil))
					defer cancel()
					w, r := &discardWriter{h: http.Header{}}, req.Clone(rctx)
					for pb.Next() {
						clear(w.h)
						w.code = 0
						hd.ServeHTTP(w, r)
						if w.code != 0 && w.code != http.StatusOK {
							b.Errorf("status %d", w.code)
							return
						}
					}
				})
				cpu := float64((cpuTime() - c0).Nanoseconds()) / 1e3 / float64(b.N)
				b.ReportMetric(cpu, "cpu-µs/op")
				return cpu
			}
			var real float64
			b.Run("checkin", func(b *testing.B) { real = run(b, h.api) })
			b.Run("ceiling-bare-handler", func(b *testing.B) {
				bare := run(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					for k, v := range header {
						w.Header()[k] = v
					}
					w.Write(body)
				}))
				if real > 0 {
					b.ReportMetric(real/bare, "cpu/ceiling")
				}
			})
		})
	}
}
