package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

const actor = store.Actor("token:test")

func newTenant(t *testing.T, s *store.Store, name string) store.Tenant {
	t.Helper()
	tn, err := s.CreateTenant(context.Background(), actor, "", name)
	if err != nil {
		t.Fatalf("CreateTenant(%q): %v", name, err)
	}
	return tn
}

func TestMigrationsAreIdempotent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		v, err := s.SchemaVersion(context.Background())
		if err != nil || v < 1 {
			t.Fatalf("SchemaVersion = %d, %v; want >= 1", v, err)
		}
	})
}

func TestBootstrapOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		tn, tok, created, err := s.Bootstrap(ctx, "default", "hash1")
		if err != nil || !created {
			t.Fatalf("first Bootstrap = %v, created %v", err, created)
		}
		if !tok.Service || tok.Role != "admin" || tok.TenantID != tn.ID {
			t.Fatalf("bootstrap token = %+v", tok)
		}
		_, _, created, err = s.Bootstrap(ctx, "default", "hash2")
		if err != nil || created {
			t.Fatalf("second Bootstrap = %v, created %v; want nothing created", err, created)
		}
		got, err := s.TokenByHash(ctx, "hash1")
		if err != nil || got.ID != tok.ID {
			t.Fatalf("TokenByHash = %+v, %v", got, err)
		}
		if _, err := s.TokenByHash(ctx, "hash2"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("second bootstrap stored a token: %v", err)
		}
	})
}

// TestTenantByName: a tenant is found by its name, the same every time (it is then kept in
// memory), and a name not found is looked up again, so that a tenant created later is found.
func TestTenantByName(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if _, err := s.TenantByName(ctx, "acme"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("TenantByName before the tenant exists = %v, want ErrNotFound", err)
		}
		want := newTenant(t, s, "acme")
		for range 2 {
			got, err := s.TenantByName(ctx, "acme")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, want); diff != "" {
				t.Errorf("TenantByName (-got +want):\n%s", diff)
			}
		}
		if _, err := s.TenantByName(ctx, "other"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("TenantByName of another name = %v, want ErrNotFound", err)
		}
	})
}

func TestProductsAndGroups(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a := newTenant(t, s, "acme")
		b := newTenant(t, s, "globex")
		p, groups, err := s.CreateProduct(ctx, actor, a.ID, "thermostat", "")
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, g := range groups {
			names = append(names, g.Name)
		}
		if diff := cmp.Diff(names, store.DefaultGroups); diff != "" {
			t.Errorf("default groups (-got +want):\n%s", diff)
		}
		if _, _, err := s.CreateProduct(ctx, actor, a.ID, "thermostat", ""); !errors.Is(err, store.ErrConflict) {
			t.Errorf("duplicate product: %v, want ErrConflict", err)
		}
		// The same name in another tenant is a different product.
		if _, _, err := s.CreateProduct(ctx, actor, b.ID, "thermostat", ""); err != nil {
			t.Errorf("same name in another tenant: %v", err)
		}
		if _, err := s.CreateGroup(ctx, actor, a.ID, "thermostat", "Canary", ""); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateGroup(ctx, actor, a.ID, "thermostat", "Canary", ""); !errors.Is(err, store.ErrConflict) {
			t.Errorf("duplicate group: %v, want ErrConflict", err)
		}
		if _, err := s.CreateGroup(ctx, actor, b.ID, "nothing", "Canary", ""); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("group in unknown product: %v, want ErrNotFound", err)
		}
		gs, _, err := s.ListGroups(ctx, a.ID, "thermostat", store.Page{})
		if err != nil || len(gs) != 4 {
			t.Fatalf("ListGroups = %d groups, %v; want 4", len(gs), err)
		}
		gs, _, err = s.ListGroups(ctx, b.ID, "thermostat", store.Page{})
		if err != nil || len(gs) != 3 {
			t.Fatalf("other tenant's ListGroups = %d groups, %v; want its own 3", len(gs), err)
		}
		got, err := s.ProductByName(ctx, a.ID, "thermostat")
		if err != nil || got.ID != p.ID {
			t.Fatalf("ProductByName = %+v, %v", got, err)
		}
	})
}

func TestPagination(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		tn := newTenant(t, s, "acme")
		var want []string
		for i := range 7 {
			name := fmt.Sprintf("p%02d", i)
			want = append(want, name)
			if _, _, err := s.CreateProduct(ctx, actor, tn.ID, name, ""); err != nil {
				t.Fatal(err)
			}
		}
		var got []string
		page := store.Page{Limit: 3}
		for pages := 0; ; pages++ {
			if pages > 5 {
				t.Fatal("pagination does not end")
			}
			ps, next, err := s.ListProducts(ctx, tn.ID, page)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range ps {
				got = append(got, p.Name)
			}
			if next == "" {
				break
			}
			page.After = next
		}
		if diff := cmp.Diff(got, want); diff != "" {
			t.Errorf("paged products (-got +want):\n%s", diff)
		}
	})
}

func TestTokens(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a := newTenant(t, s, "acme")
		b := newTenant(t, s, "globex")
		tok, err := s.CreateToken(ctx, actor, a.ID, store.Token{TenantID: b.ID, Role: "reader", Description: "ci"}, "h-b")
		if err != nil {
			t.Fatal(err)
		}
		if tok.TenantName != "globex" {
			t.Errorf("TenantName = %q", tok.TenantName)
		}
		if _, err := s.CreateToken(ctx, actor, a.ID, store.Token{TenantID: a.ID, Role: "reader"}, "h-b"); !errors.Is(err, store.ErrConflict) {
			t.Errorf("duplicate hash: %v, want ErrConflict", err)
		}
		if _, err := s.RevokeToken(ctx, actor, a.ID, tok.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("revoking another tenant's token: %v, want ErrNotFound", err)
		}
		if _, err := s.RevokeToken(ctx, actor, b.ID, tok.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RevokeToken(ctx, actor, b.ID, tok.ID); !errors.Is(err, store.ErrConflict) {
			t.Errorf("second revoke: %v, want ErrConflict", err)
		}
		got, err := s.TokenByHash(ctx, "h-b")
		if err != nil || got.RevokedAt == nil {
			t.Fatalf("revoked token = %+v, %v", got, err)
		}
	})
}

func TestAuditChain(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a := newTenant(t, s, "acme")
		if _, _, err := s.CreateProduct(ctx, actor, a.ID, "thermostat", ""); err != nil {
			t.Fatal(err)
		}
		// A failed mutation writes no audit record.
		if _, _, err := s.CreateProduct(ctx, actor, a.ID, "thermostat", ""); err == nil {
			t.Fatal("duplicate accepted")
		}
		recs, _, err := s.ListAudit(ctx, a.ID, store.AuditFilter{}, store.Page{})
		if err != nil {
			t.Fatal(err)
		}
		var actions []string
		for _, r := range recs {
			actions = append(actions, r.Action)
		}
		want := []string{"tenant.create", "product.create", "group.create", "group.create", "group.create"}
		if diff := cmp.Diff(actions, want); diff != "" {
			t.Errorf("audit actions (-got +want):\n%s", diff)
		}
		v, err := s.VerifyAudit(ctx, a.ID)
		if err != nil || v.Records != int64(len(want)) {
			t.Fatalf("VerifyAudit = %+v, %v", v, err)
		}
		if _, err := storetest.DB(s).ExecContext(ctx, `UPDATE audit_records SET details = '{"name":"evil"}' WHERE tenant_id = $1 AND seq = 2`, a.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.VerifyAudit(ctx, a.ID); !errors.Is(err, audit.ErrBroken) {
			t.Fatalf("VerifyAudit after tampering = %v, want ErrBroken", err)
		}
	})
}

func TestAuditConcurrentAppends(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a := newTenant(t, s, "acme")
		var wg sync.WaitGroup
		errs := make(chan error, 20)
		for i := range 20 {
			wg.Go(func() {
				if _, _, err := s.CreateProduct(ctx, actor, a.ID, fmt.Sprintf("p%d", i), ""); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("concurrent create: %v", err)
		}
		v, err := s.VerifyAudit(ctx, a.ID)
		if err != nil || v.Records != 1+20*4 {
			t.Fatalf("VerifyAudit = %+v, %v; want %d intact records", v, err, 1+20*4)
		}
	})
}
