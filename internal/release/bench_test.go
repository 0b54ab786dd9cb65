package release

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/rampartsec/rampart/internal/rollout"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
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

// BenchmarkDirectorCheckIn measures the database side of a device check-in: DirectorFile for
// timestamp.json of a claimed device whose group has an emergency deployment the director
// already follows (one query: the device's group with its director metadata; the group's
// deployment from the store's cache), from parallel callers. Its ceiling, in the same run on the
// same store and pool, is the bare round trip: SELECT 1 through the same prepared-statement path.
func BenchmarkDirectorCheckIn(b *testing.B) {
	for _, kind := range storetest.Kinds {
		b.Run(kind, func(b *testing.B) {
			f := newFixture(b, kind)
			ctx := context.Background()
			f.keysInit()
			g, err := f.st.GroupByName(ctx, f.tenant.ID, "gateway", "Production")
			if err != nil {
				b.Fatal(err)
			}
			if _, err := f.st.DB().Exec(`UPDATE devices SET product_id = $1, group_id = $2 WHERE id = $3`, g.ProductID, g.ID, f.device); err != nil {
				b.Fatal(err)
			}
			f.release("1.0.0", binary(8, 4<<10))
			if _, err := f.st.CreateDeployment(ctx, store.System, f.tenant.ID, store.DeploymentSpec{Product: "gateway", Group: "Production",
				Release: "1.0.0", Plan: rollout.DefaultPlan(), Criteria: rollout.DefaultCriteria(), Emergency: true}); err != nil {
				b.Fatal(err)
			}
			if _, err := f.svc.DirectorFile(ctx, f.tenant.ID, f.device, "timestamp.json"); err != nil {
				b.Fatal(err)
			}
			var real float64
			b.Run("checkin", func(b *testing.B) {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := f.svc.DirectorFile(ctx, f.tenant.ID, f.device, "timestamp.json"); err != nil {
							b.Error(err)
							return
						}
					}
				})
				real = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			})
			b.Run("ceiling-select-1", func(b *testing.B) {
				b.RunParallel(func(pb *testing.PB) {
					var one int
					for pb.Next() {
						if err := f.st.QueryRow(ctx, `SELECT 1`).Scan(&one); err != nil {
							b.Error(err)
							return
						}
					}
				})
				if real > 0 {
					b.ReportMetric(real/(float64(b.Elapsed().Nanoseconds())/float64(b.N)), "checkin/ceiling")
				}
			})
		})
	}
}
