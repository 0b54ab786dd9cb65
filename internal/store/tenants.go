package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Tenant is an organisation: it owns products, devices, users and tokens.
type Tenant struct {
	ID        string
	Name      string
	CreatedAt time.Time
}

// CreateTenant creates a tenant. The record goes to the new tenant's chain and, when the actor
// belongs to another tenant, to the actor's chain too.
func (s *Store) CreateTenant(ctx context.Context, actor Actor, actorTenantID, name string) (Tenant, error) {
	t := Tenant{ID: NewID("ten"), Name: name, CreatedAt: s.Now()}
	err := s.inTx(ctx, func(tx *sql.Tx) error { return s.createTenant(ctx, tx, actor, actorTenantID, t) })
	if err != nil {
		return Tenant{}, fmt.Errorf("store.CreateTenant: %w", s.mapErr(err))
	}
	return t, nil
}

func (s *Store) createTenant(ctx context.Context, tx *sql.Tx, actor Actor, actorTenantID string, t Tenant) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)`, t.ID, t.Name, micros(t.CreatedAt)); err != nil {
		return err
	}
	details := Details{"name": t.Name}
	if err := s.appendAudit(ctx, tx, t.ID, actor, "tenant.create", "tenant/"+t.ID, details); err != nil {
		return err
	}
	if actorTenantID != "" && actorTenantID != t.ID {
		return s.appendAudit(ctx, tx, actorTenantID, actor, "tenant.create", "tenant/"+t.ID, details)
	}
	return nil
}

// ListTenants lists all tenants by name; only service administrators may call it.
func (s *Store) ListTenants(ctx context.Context, p Page) ([]Tenant, string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, name, created_at FROM tenants WHERE name > $1 ORDER BY name LIMIT $2`, p.After, p.limit()+1)
	if err != nil {
		return nil, "", fmt.Errorf("store.ListTenants: %w", err)
	}
	defer rows.Close()
	var out []Tenant
	for rows.Next() {
		var t Tenant
		var at int64
		if err := rows.Scan(&t.ID, &t.Name, &at); err != nil {
			return nil, "", fmt.Errorf("store.ListTenants: %w", err)
		}
		t.CreatedAt = fromMicros(at)
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("store.ListTenants: %w", err)
	}
	out, next := trimPage(out, p, func(t Tenant) string { return t.Name })
	return out, next, nil
}

// TenantByName looks a tenant up by its unique name.
//
// A tenant is never renamed or deleted and its row never changes, so a tenant found once is kept
// in memory (Store.tenants) and served from there: the image repository's routes and the device
// API look the tenant up by name on every request. A name not found is asked again each time, so a
// tenant created later (by this replica or another) is found.
func (s *Store) TenantByName(ctx context.Context, name string) (Tenant, error) {
	if t, ok := s.tenants.Load(name); ok {
		return t.(Tenant), nil
	}
	var t Tenant
	var at int64
	err := s.db.QueryRowContext(ctx, `SELECT id, name, created_at FROM tenants WHERE name = $1`, name).Scan(&t.ID, &t.Name, &at)
	if err != nil {
		return Tenant{}, fmt.Errorf("store.TenantByName: %w", s.mapErr(err))
	}
	t.CreatedAt = fromMicros(at)
	s.tenants.Store(name, t)
	return t, nil
}

// Bootstrap creates the first tenant and its service-administrator token when the database has
// no tenant yet. It reports whether it created them; replicas starting together create them once.
func (s *Store) Bootstrap(ctx context.Context, tenantName, tokenHash string) (Tenant, Token, bool, error) {
	var t Tenant
	var tok Token
	created := false
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if lock := s.dialect.migrationLock(); lock != "" {
			if _, err := tx.ExecContext(ctx, lock); err != nil {
				return err
			}
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM tenants`).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		t = Tenant{ID: NewID("ten"), Name: tenantName, CreatedAt: s.Now()}
		if err := s.createTenant(ctx, tx, System, "", t); err != nil {
			return err
		}
		tok = Token{ID: NewID("tok"), TenantID: t.ID, TenantName: t.Name, Description: "first administrator (created on first start)",
			Role: "admin", Service: true, CreatedAt: t.CreatedAt, CreatedBy: string(System)}
		created = true
		return s.insertToken(ctx, tx, System, tok, tokenHash)
	})
	if err != nil {
		return Tenant{}, Token{}, false, fmt.Errorf("store.Bootstrap: %w", s.mapErr(err))
	}
	return t, tok, created, nil
}
