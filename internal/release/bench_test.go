package release

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkServeTimestamp measures what every polling device costs the
// server: GET /tuf/{tenant}/metadata/timestamp.json through the real
// handler (tenant lookup, state read, file selection), beside its ceiling,
// a bare handler writing the same bytes, measured in the same run.
func BenchmarkServeTimestamp(b *testing.B) {
	f := newFixture(b, "sqlite")
	f.keysInit()
	f.release("1.0.0", binary(1, 1000))
	h := f.svc.Handler()
	req := httptest.NewRequest("GET", "/tuf/acme/metadata/timestamp.json", nil)
	body := httptest.NewRecorder()
	h.ServeHTTP(body, req)
	if body.Code != http.StatusOK {
		b.Fatalf("status %d", body.Code)
	}
	ts := body.Body.Bytes()
	var real, bare float64
	b.Run("handler", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
		}
		real = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	b.Run("ceiling-bare-handler", func(b *testing.B) {
		bareH := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(ts) })
		for b.Loop() {
			w := httptest.NewRecorder()
			bareH.ServeHTTP(w, req)
		}
		bare = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		if real > 0 {
			b.ReportMetric(real/bare, "handler/ceiling")
		}
	})
}
