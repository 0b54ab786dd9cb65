package store_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// BenchmarkInstallReport is one audited install report (store.AddInstallReport: a transaction
// of an insert, a device update and an audit record), the write every healed device makes;
// BenchmarkInstallReportCeiling is an empty transaction on the same pool, what any write
// pays for its transaction alone.
func BenchmarkInstallReport(b *testing.B) {
	for _, kind := range storetest.Kinds {
		b.Run(kind, func(b *testing.B) {
			s, tenantID, ids := benchDevices(b, kind, 256)
			ctx := context.Background()
			b.ResetTimer()
			for i := range b.N {
				rep := store.InstallReport{State: "committed", Release: "1.1", At: s.Now()}
				if err := s.AddInstallReport(ctx, tenantID, ids[i%len(ids)], rep, false, true); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkInstallReportParallel is BenchmarkInstallReport from 16 goroutines per CPU at once, as a
// heal's devices report: on SQLite their writes queue for the one writer, and the group commit
// commits those that arrived together in one transaction.
func BenchmarkInstallReportParallel(b *testing.B) {
	for _, kind := range storetest.Kinds {
		b.Run(kind, func(b *testing.B) {
			s, tenantID, ids := benchDevices(b, kind, 256)
			ctx := context.Background()
			var next atomic.Int64
			b.SetParallelism(16)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					rep := store.InstallReport{State: "committed", Release: "1.1", At: s.Now()}
					if err := s.AddInstallReport(ctx, tenantID, ids[next.Add(1)%int64(len(ids))], rep, false, true); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func BenchmarkInstallReportCeiling(b *testing.B) {
	for _, kind := range storetest.Kinds {
		b.Run(kind, func(b *testing.B) {
			s, _, _ := benchDevices(b, kind, 1)
			ctx := context.Background()
			b.ResetTimer()
			for range b.N {
				if err := storetest.InTx(ctx, s, func(*sql.Tx) error { return nil }); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchDevices makes a tenant with a product and n claimed devices in its third group.
func benchDevices(b testing.TB, kind string, n int) (*store.Store, string, []string) {
	b.Helper()
	s := storetest.Open(b, kind)
	ctx := context.Background()
	tn, err := s.CreateTenant(ctx, "token:test", "", "acme")
	if err != nil {
		b.Fatal(err)
	}
	p, groups, err := s.CreateProduct(ctx, "token:test", tn.ID, "thermostat", "")
	if err != nil {
		b.Fatal(err)
	}
	var ids []string
	err = storetest.InTx(ctx, s, func(tx *sql.Tx) error {
		for i := range n {
			sum := sha256.Sum256([]byte(fmt.Sprintf("%s/%d", tn.ID, i)))
			id := hex.EncodeToString(sum[:])
			now := s.Now().UnixMicro()
			if _, err := tx.ExecContext(ctx, `INSERT INTO devices (id, tenant_id, product_id, group_id, state, attestation,
				current_release, target_release, created_at, updated_at) VALUES ($1, $2, $3, $4, 'claimed', '', '1.0', '', $5, $5)`,
				id, tn.ID, p.ID, groups[2].ID, now); err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return s, tn.ID, ids
}
