package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/deviceapi"
	"github.com/rampartsec/rampart/internal/rollout"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// BenchmarkStepDeployment is one periodic pass of the stepper over a deployment whose group has
// n members, a tenth of them already on the new release (store.StepDeployment): the pass that
// finds nothing to change, which is almost every pass of a long rollout, at the stepper's
// interval after the last. "joiner" adds one device to the group before each pass, which the pass must pick up;
// "full" passes ten minutes apart, when the stepper reads the whole group again.
func BenchmarkStepDeployment(b *testing.B) {
	for _, kind := range storetest.Kinds {
		for _, n := range []int{10_000, 100_000} {
			for _, variant := range []string{"", "joiner", "full"} {
				name := fmt.Sprintf("%s/%d", kind, n)
				if variant != "" {
					name += "/" + variant
				}
				b.Run(name, func(b *testing.B) {
					clk := &testClock{now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
					s := storetest.OpenWithClock(b, kind, clk.Now)
					f, dep := benchRollout(b, s, clk, n)
					ctx := context.Background()
					every := 30 * time.Second // tasks.DefaultStepEvery
					if variant == "full" {
						every = 10 * time.Minute
					}
					// The changes of the setup are older than the margin a step reaches back.
					clk.Advance(2 * time.Minute)
					if _, err := s.StepDeployment(ctx, f.tenant.ID, dep.ID); err != nil {
						b.Fatal(err)
					}
					cpu0 := cpuTime(b)
					b.ResetTimer()
					for i := range b.N {
						if variant == "joiner" {
							b.StopTimer()
							benchInsertDevices(b, s, f, n+i, 1, "1.0")
							b.StartTimer()
						}
						clk.Advance(every)
						st, err := s.StepDeployment(ctx, f.tenant.ID, dep.ID)
						if err != nil {
							b.Fatal(err)
						}
						if len(st.Events) > 0 || st.Tally.Devices < n {
							b.Fatalf("pass changed the deployment or missed members: %+v %+v", st.Events, st.Tally)
						}
					}
					b.StopTimer()
					// The process's CPU time a pass (the joiner's insert included), which the
					// load of other processes on the machine does not inflate as it does wall time.
					b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
				})
			}
		}
	}
}

// benchRollout makes a group of n devices on 1.0 with a deployment of 1.1 that soaks for a day
// in its first phase (10 %), a tenth of the group already on 1.1 and a few crashes on each release.
func benchRollout(b *testing.B, s *store.Store, clk *testClock, n int) (*fleetFixture, store.Deployment) {
	b.Helper()
	ctx := context.Background()
	tn, err := s.CreateTenant(ctx, actor, "", "acme")
	if err != nil {
		b.Fatal(err)
	}
	p, groups, err := s.CreateProduct(ctx, actor, tn.ID, "thermostat", "")
	if err != nil {
		b.Fatal(err)
	}
	f := &fleetFixture{tenant: tn, product: p, group: groups[1]}
	for _, v := range []string{"1.0", "1.1"} {
		if _, err := storetest.DB(s).ExecContext(ctx, `INSERT INTO releases (id, tenant_id, product_id, version, state,
			targets_version, revoked_reason, created_at) VALUES ($1, $2, $3, $4, 'signed', 1, '', $5)`,
			store.NewID("rel"), tn.ID, p.ID, v, s.Now().UnixMicro()); err != nil {
			b.Fatal(err)
		}
	}
	benchInsertDevices(b, s, f, 0, n, "1.0")
	clk.Advance(time.Hour)
	pl, err := rollout.ParsePlan("10,50,100", "24h")
	if err != nil {
		b.Fatal(err)
	}
	dep, err := s.CreateDeployment(ctx, actor, tn.ID, store.DeploymentSpec{Product: "thermostat", Group: "Field Test", Release: "1.1",
		Plan: pl, Criteria: rollout.DefaultCriteria()})
	if err != nil {
		b.Fatal(err)
	}
	clk.Advance(time.Minute)
	// A tenth of the group installed 1.1: release, coverage event, outcome, as RecordDeviceRelease
	// writes them, in bulk.
	now := s.Now().UnixMicro()
	db := storetest.DB(s)
	healed := f.devices[:n/10]
	for i := 0; i < len(healed); i += 500 {
		chunk := healed[i:min(i+500, len(healed))]
		in := "'" + strings.Join(chunk, "','") + "'"
		for _, q := range []string{
			`UPDATE devices SET current_release = '1.1', updated_at = $1 WHERE id IN (` + in + `)`,
			`UPDATE deployment_devices SET install = 'installed', reported_at = $1 WHERE device_id IN (` + in + `)`,
			`INSERT INTO coverage_events (tenant_id, product_id, group_id, device_id, release_version, at)
				SELECT tenant_id, product_id, group_id, id, '1.1', $1 FROM devices WHERE id IN (` + in + `)`,
		} {
			if _, err := db.ExecContext(ctx, q, now); err != nil {
				b.Fatal(err)
			}
		}
	}
	// Crashes: four devices on 1.1, thirty-six on 1.0.
	crashed := append(append([]string(nil), healed[:4]...), f.devices[n/10:n/10+36]...)
	for i, id := range crashed {
		rep := crashReport(fmt.Sprintf("r%d", i), fmt.Sprintf("sig%d", i%7), clk.Now())
		if _, err := s.AddFailureReports(ctx, tn.ID, id, []deviceapi.CrashReport{rep}); err != nil {
			b.Fatal(err)
		}
	}
	clk.Advance(time.Minute)
	return f, dep
}

// benchInsertDevices claims n devices numbered from first into the fixture's group on release,
// each with its coverage event, in multi-row statements.
func benchInsertDevices(b *testing.B, s *store.Store, f *fleetFixture, first, n int, release string) {
	b.Helper()
	ctx := context.Background()
	err := storetest.InTx(ctx, s, func(tx *sql.Tx) error {
		for i := 0; i < n; i += 500 {
			var dev, cov strings.Builder
			dev.WriteString(`INSERT INTO devices (id, tenant_id, product_id, group_id, state, attestation, current_release, target_release, created_at, updated_at) VALUES `)
			cov.WriteString(`INSERT INTO coverage_events (tenant_id, product_id, group_id, device_id, release_version, at) VALUES `)
			now := s.Now().UnixMicro()
			for j := i; j < min(i+500, n); j++ {
				id := deviceID(f.tenant.ID, first+j)
				if j > i {
					dev.WriteString(",")
					cov.WriteString(",")
				}
				fmt.Fprintf(&dev, "('%s', '%s', '%s', '%s', 'claimed', '', '%s', '', %d, %d)", id, f.tenant.ID, f.product.ID, f.group.ID, release, now, now)
				fmt.Fprintf(&cov, "('%s', '%s', '%s', '%s', '%s', %d)", f.tenant.ID, f.product.ID, f.group.ID, id, release, now)
				f.devices = append(f.devices, id)
			}
			if _, err := tx.ExecContext(ctx, dev.String()); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, cov.String()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
