package release

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/rollout"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/tuf"
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

// checkInCallers × GOMAXPROCS goroutines call at once in BenchmarkDirectorCheckIn.
const checkInCallers = 32

// BenchmarkDirectorCheckIn measures the database side of a device check-in: DirectorFile for
// timestamp.json of claimed devices whose group has an emergency deployment the director
// already follows (one query: the device's group with its director metadata; the group's
// deployment from the store's cache). Its ceiling, in the same run on the same store and pool,
// is the bare round trip: SELECT 1 through the same prepared-statement path.
//
// The callers are as many as the check-in load generator's connections (bench/run checkin's
// default --conns 64), each with a device of its own, so PostgreSQL's batched reads see the
// queue they see there.
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
			// One device per caller, as the load generator has one per connection.
			devices := []string{f.device}
			for i := 1; i < checkInCallers*runtime.GOMAXPROCS(0); i++ {
				id := fmt.Sprintf("%064x", i)
				if _, err := storetest.DB(f.st).Exec(`INSERT INTO devices (id, tenant_id, state, attestation, current_release, target_release, created_at, updated_at)
					VALUES ($1, $2, 'claimed', '', '', '', 1, 1)`, id, f.tenant.ID); err != nil {
					b.Fatal(err)
				}
				devices = append(devices, id)
			}
			if _, err := storetest.DB(f.st).Exec(`UPDATE devices SET product_id = $1, group_id = $2`, g.ProductID, g.ID); err != nil {
				b.Fatal(err)
			}
			f.release("1.0.0", binary(8, 4<<10))
			if _, err := f.st.CreateDeployment(ctx, store.System, f.tenant.ID, store.DeploymentSpec{Product: "gateway", Group: "Production",
				Release: "1.0.0", Plan: rollout.DefaultPlan(), Criteria: rollout.DefaultCriteria(), Emergency: true}); err != nil {
				b.Fatal(err)
			}
			for _, d := range devices {
				if _, err := f.svc.DirectorFile(ctx, f.tenant.ID, d, "timestamp.json"); err != nil {
					b.Fatal(err)
				}
			}
			var real float64
			b.Run("checkin", func(b *testing.B) {
				b.SetParallelism(checkInCallers)
				var next atomic.Int64
				b.RunParallel(func(pb *testing.PB) {
					device := devices[int(next.Add(1)-1)%len(devices)]
					for pb.Next() {
						if _, err := f.svc.DirectorFile(ctx, f.tenant.ID, device, "timestamp.json"); err != nil {
							b.Error(err)
							return
						}
					}
				})
				real = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			})
			b.Run("ceiling-select-1", func(b *testing.B) {
				b.SetParallelism(checkInCallers)
				b.RunParallel(func(pb *testing.PB) {
					var one int
					for pb.Next() {
						if err := storetest.QueryRow(ctx, f.st, `SELECT 1`).Scan(&one); err != nil {
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

// BenchmarkAssign is the director naming a release for a device (Service.Assign: the release
// and the device read, the director's metadata signed and stored, the audit record), what
// each device costs the server when a deployment reaches it. Its ceiling is signing the same
// metadata alone (tuf's Issue, three signatures), measured in the same run.
func BenchmarkAssign(b *testing.B) {
	f := newFixture(b, "sqlite")
	ctx := context.Background()
	f.keysInit()
	f.release("1.0.0", binary(8, 4<<10))
	var real float64
	b.Run("assign", func(b *testing.B) {
		for b.Loop() {
			if err := f.svc.Assign(ctx, store.System, f.tenant.ID, f.device, "gateway", "1.0.0"); err != nil {
				b.Fatal(err)
			}
		}
		real = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	b.Run("ceiling-sign", func(b *testing.B) {
		dir := f.signingDirector(b)
		r, err := f.st.ReleaseByVersion(ctx, f.tenant.ID, "gateway", "1.0.0")
		if err != nil {
			b.Fatal(err)
		}
		a := tuf.Assignment{DeviceID: f.device, Version: 1, Release: "1.0.0"}
		for _, im := range r.Images {
			a.Images = append(a.Images, tufImage(im))
		}
		for b.Loop() {
			if _, err := dir.Issue(a, time.Now()); err != nil {
				b.Fatal(err)
			}
		}
		if real > 0 {
			b.ReportMetric(real/(float64(b.Elapsed().Nanoseconds())/float64(b.N)), "assign/ceiling")
		}
	})
}

// signingDirector is the tenant's director as Assign signs with it: the ceilings' signer.
func (f *fixture) signingDirector(b *testing.B) *tuf.Director {
	b.Helper()
	repo, err := f.st.Repo(context.Background(), f.tenant.ID)
	if err != nil {
		b.Fatal(err)
	}
	dir, err := f.svc.director(f.tenant.ID, repo, nil)
	if err != nil {
		b.Fatal(err)
	}
	return dir
}

// BenchmarkRaiseVersions is what a restored server does before it serves (Service.RaiseVersions):
// the repository's snapshot and timestamp signed again and every device's director metadata
// raised and signed again, here for 200 devices; it reports the cost per device beside its
// ceiling, signing one device's director metadata alone (tuf's Issue), measured in the same run.
func BenchmarkRaiseVersions(b *testing.B) {
	const devices = 200
	f := newFixture(b, "sqlite")
	ctx := context.Background()
	f.keysInit()
	f.release("1.0.0", binary(8, 4<<10))
	for i := range devices {
		id := fmt.Sprintf("%064x", i+1)
		if _, err := storetest.DB(f.st).Exec(`INSERT INTO devices (id, tenant_id, state, attestation, current_release, target_release, created_at, updated_at)
			VALUES ($1, $2, 'claimed', '', '', '', 1, 1)`, id, f.tenant.ID); err != nil {
			b.Fatal(err)
		}
		if err := f.svc.Assign(ctx, store.System, f.tenant.ID, id, "gateway", "1.0.0"); err != nil {
			b.Fatal(err)
		}
	}
	var perDevice float64
	b.Run("raise", func(b *testing.B) {
		for b.Loop() {
			if err := f.svc.RaiseVersions(ctx, tuf.RestoreMargin); err != nil {
				b.Fatal(err)
			}
		}
		perDevice = float64(b.Elapsed().Nanoseconds()) / float64(b.N) / devices
		b.ReportMetric(perDevice/1e6, "ms/device")
	})
	b.Run("ceiling-sign", func(b *testing.B) {
		dir := f.signingDirector(b)
		a := tuf.Assignment{DeviceID: f.device, Version: 1, Release: "1.0.0"}
		for b.Loop() {
			if _, err := dir.Issue(a, time.Now()); err != nil {
				b.Fatal(err)
			}
		}
		sign := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		b.ReportMetric(sign/1e6, "ms/device")
		if perDevice > 0 {
			b.ReportMetric(perDevice/sign, "raise/ceiling")
		}
	})
}
