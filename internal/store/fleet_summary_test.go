package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rampartsec/rampart/internal/public"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// TestFleetSummaryAndDeviceFilters counts a fleet by attestation, last seen and release, and
// walks the device list's filters, sort orders and pages; another tenant's fleet never counts.
func TestFleetSummaryAndDeviceFilters(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a := newTenant(t, s, "acme")
		b := newTenant(t, s, "globex")
		newProductIn(t, s, a.ID, "thermostat")
		newProductIn(t, s, a.ID, "lamp")
		newProductIn(t, s, b.ID, "thermostat")
		now := s.Now()
		db := storetest.DB(s)
		ins := func(tenant store.Tenant, product, group, id, att, release string, seen *time.Time) {
			t.Helper()
			p, _ := s.ProductByName(ctx, tenant.ID, product)
			g, _ := s.GroupByName(ctx, tenant.ID, product, group)
			var at any
			if seen != nil {
				at = seen.UnixMicro()
			}
			if _, err := db.Exec(`INSERT INTO devices (id, tenant_id, product_id, group_id, state, attestation, current_release, target_release, last_seen_at, created_at, updated_at)
				VALUES ($1, $2, $3, $4, 'claimed', $5, $6, '', $7, 1, 1)`, id, tenant.ID, p.ID, g.ID, att, release, at); err != nil {
				t.Fatal(err)
			}
		}
		ago := func(d time.Duration) *time.Time { t := now.Add(-d); return &t }
		id := func(i int) string { return fmt.Sprintf("%064x", i) }
		ins(a, "thermostat", "Production", id(1), "affirming", "1.0", ago(time.Hour))           // online
		ins(a, "thermostat", "Production", id(2), "affirming", "1.1", ago(30*time.Hour))        // overdue, demoted below
		ins(a, "thermostat", "Field Test", id(3), "warning", "1.1", ago(10*time.Hour))          // online
		ins(a, "thermostat", "Production", id(4), "contraindicated", "1.0", ago(100*time.Hour)) // offline
		ins(a, "lamp", "Production", id(5), "", "", nil)                                        // never seen
		ins(b, "thermostat", "Production", id(6), "affirming", "1.0", ago(time.Minute))         // another tenant's
		if _, err := db.Exec(`INSERT INTO demoted_certificates (serial, tenant_id, device_id, not_after, demoted_at) VALUES ('s1', $1, $2, $3, $4)`,
			a.ID, id(2), now.Add(time.Hour).UnixMicro(), now.UnixMicro()); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`INSERT INTO demoted_certificates (serial, tenant_id, device_id, not_after, demoted_at) VALUES ('s0', $1, $2, $3, $4)`,
			a.ID, id(1), now.Add(-time.Hour).UnixMicro(), now.UnixMicro()); err != nil { // expired: no longer counts
			t.Fatal(err)
		}

		f, err := s.FleetSummary(ctx, a.ID, "")
		if err != nil {
			t.Fatal(err)
		}
		want := store.TenantFleet{Devices: 5,
			ByAttestation: map[string]int{"affirming": 1, "warning": 1, "update-only": 2, "none": 1},
			BySeen:        map[string]int{"online": 2, "overdue": 1, "offline": 2},
			ByRelease:     []store.ReleaseCount{{"1.0", 2}, {"1.1", 2}, {"", 1}}}
		if diff := cmp.Diff(f, want); diff != "" {
			t.Errorf("fleet (-got +want):\n%s", diff)
		}
		f, err = s.FleetSummary(ctx, a.ID, "lamp")
		if err != nil || f.Devices != 1 || f.ByAttestation["none"] != 1 {
			t.Errorf("lamp's fleet = %+v, %v", f, err)
		}
		if _, err := s.FleetSummary(ctx, b.ID, "lamp"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("another tenant's product: %v", err)
		}

		list := func(f store.DeviceFilter, p store.Page) ([]string, string) {
			t.Helper()
			ds, next, err := s.ListDevices(ctx, a.ID, f, p)
			if err != nil {
				t.Fatalf("%+v: %v", f, err)
			}
			var ids []string
			for _, d := range ds {
				ids = append(ids, d.ID[62:])
			}
			return ids, next
		}
		for _, tc := range []struct {
			f    store.DeviceFilter
			want []string
		}{
			{store.DeviceFilter{}, []string{"01", "02", "03", "04", "05"}},
			{store.DeviceFilter{Product: "thermostat", Group: "Production"}, []string{"01", "02", "04"}},
			{store.DeviceFilter{Release: "1.1"}, []string{"02", "03"}},
			{store.DeviceFilter{Attestation: "none"}, []string{"05"}},
			{store.DeviceFilter{UpdateOnly: true}, []string{"02", "04"}},
			{store.DeviceFilter{Seen: "online"}, []string{"01", "03"}},
			{store.DeviceFilter{Seen: "overdue"}, []string{"02"}},
			{store.DeviceFilter{Seen: "offline"}, []string{"04", "05"}},
			{store.DeviceFilter{IDPrefix: id(3)[:62] + "f"}, nil},
			{store.DeviceFilter{IDPrefix: id(3)[:62]}, []string{"01", "02", "03", "04", "05"}},
			{store.DeviceFilter{IDPrefix: id(3)}, []string{"03"}},
			{store.DeviceFilter{Sort: "seen"}, []string{"01", "03", "02", "04", "05"}},
			{store.DeviceFilter{Sort: "stale"}, []string{"05", "04", "02", "03", "01"}},
			{store.DeviceFilter{Sort: "release"}, []string{"05", "01", "04", "02", "03"}},
		} {
			if got, _ := list(tc.f, store.Page{}); !cmp.Equal(got, tc.want) {
				t.Errorf("%+v = %v, want %v", tc.f, got, tc.want)
			}
			// The same order page by page, one device a page.
			var paged []string
			var p store.Page
			p.Limit = 1
			for range 10 {
				got, next := list(tc.f, p)
				paged = append(paged, got...)
				if next == "" {
					break
				}
				p.After = next
			}
			if !cmp.Equal(paged, tc.want) {
				t.Errorf("%+v one a page = %v, want %v", tc.f, paged, tc.want)
			}
		}
		for _, tc := range []struct {
			f    store.DeviceFilter
			p    store.Page
			want string
		}{
			{store.DeviceFilter{Attestation: "great"}, store.Page{}, `attestation "great" is not one of affirming, warning, contraindicated, none`},
			{store.DeviceFilter{Seen: "yesterday"}, store.Page{}, `seen "yesterday" is not one of online, overdue, offline`},
			{store.DeviceFilter{Sort: "colour"}, store.Page{}, `sort "colour" is not one of id, seen, stale, release`},
			{store.DeviceFilter{IDPrefix: "XY"}, store.Page{}, "a device ID search must be up to 64 lowercase hex digits"},
			{store.DeviceFilter{Sort: "seen"}, store.Page{After: "abc"}, "the after cursor is not one this server issued; start from the first page"},
			{store.DeviceFilter{}, store.Page{After: "a:b"}, "the after cursor is not one this server issued; start from the first page"},
		} {
			_, _, err := s.ListDevices(ctx, a.ID, tc.f, tc.p)
			if msg, _ := public.Message(err); msg != tc.want || !errors.Is(err, store.ErrInvalid) {
				t.Errorf("%+v %+v: %v, want %q", tc.f, tc.p, err, tc.want)
			}
		}
	})
}
