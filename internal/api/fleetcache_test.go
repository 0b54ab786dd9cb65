package api

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// TestFleetCounts: GET /api/v1/fleet answers from one count of the devices for
// FleetCountsTTL, says when it counted, counts again once the server's clock has moved on by
// the TTL, and keeps a count per tenant and product filter.
func TestFleetCounts(t *testing.T) {
	for _, kind := range storetest.Kinds {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			h := newClockHarness(t, kind, time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC))
			c := h.client(h.admin)
			for _, p := range []string{"lamp", "fan"} {
				if _, err := c.CreateProduct(ctx, client.CreateProductRequest{Name: p}); err != nil {
					t.Fatal(err)
				}
			}
			tn, _ := h.store.TenantByName(ctx, "default")
			lamp, _ := h.store.ProductByName(ctx, tn.ID, "lamp")
			fan, _ := h.store.ProductByName(ctx, tn.ID, "fan")
			lampGrp, _ := h.store.GroupByName(ctx, tn.ID, "lamp", "Production")
			fanGrp, _ := h.store.GroupByName(ctx, tn.ID, "fan", "Production")
			h.insertDevice(tn.ID, lamp.ID, lampGrp.ID, strings.Repeat("1", 64))
			first, err := c.GetFleet(ctx, "")
			if err != nil || first.Devices != 1 || !first.CountedAt.Equal(*h.now) || first.RecountEvery != "15s" {
				t.Fatalf("first count: %+v, %v", first, err)
			}
			h.insertDevice(tn.ID, fan.ID, fanGrp.ID, strings.Repeat("2", 64))
			h.advance(FleetCountsTTL - time.Second)
			again, err := c.GetFleet(ctx, "")
			if err != nil || again.Devices != 1 || !again.CountedAt.Equal(first.CountedAt) {
				t.Errorf("within the TTL: %d devices counted at %v (%v), want the first count's 1 at %v", again.Devices, again.CountedAt, err, first.CountedAt)
			}
			// Another filter is another count.
			if f, err := c.GetFleet(ctx, "fan"); err != nil || f.Devices != 1 || !f.CountedAt.Equal(*h.now) {
				t.Errorf("fan: %+v, %v", f, err)
			}
			h.advance(time.Second)
			later, err := c.GetFleet(ctx, "")
			if err != nil || later.Devices != 2 || !later.CountedAt.Equal(*h.now) {
				t.Errorf("after the TTL: %d devices counted at %v (%v), want 2 at %v", later.Devices, later.CountedAt, err, *h.now)
			}
			// Another tenant's count is its own.
			other := h.client(h.tenantAdmin("globex"))
			if f, err := other.GetFleet(ctx, ""); err != nil || f.Devices != 0 {
				t.Errorf("globex: %+v, %v", f, err)
			}
		})
	}
}
