package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// DefaultGroups are the device groups every new product starts with, in rollout order.
var DefaultGroups = []string{"Development", "Field Test", "Production"}

// Product is a device model of a tenant.
type Product struct {
	ID          string
	TenantID    string
	Name        string
	Description string
	CreatedAt   time.Time
}

// Group is a set of devices of one product sharing an update policy.
type Group struct {
	ID          string
	TenantID    string
	ProductID   string
	ProductName string
	Name        string
	Description string
	CreatedAt   time.Time
	Devices     int
}

// CreateProduct creates a product together with its default device groups.
func (s *Store) CreateProduct(ctx context.Context, actor Actor, tenantID, name, description string) (Product, []Group, error) {
	p := Product{ID: NewID("prd"), TenantID: tenantID, Name: name, Description: description, CreatedAt: s.Now()}
	var groups []Group
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO products (id, tenant_id, name, description, created_at) VALUES ($1, $2, $3, $4, $5)`,
			p.ID, p.TenantID, p.Name, p.Description, micros(p.CreatedAt)); err != nil {
			return err
		}
		if err := s.appendAudit(ctx, tx, tenantID, actor, "product.create", "product/"+p.ID, Details{"name": name}); err != nil {
			return err
		}
		for _, g := range DefaultGroups {
			grp, err := s.insertGroup(ctx, tx, actor, p, g, "default group")
			if err != nil {
				return err
			}
			groups = append(groups, grp)
		}
		return nil
	})
	if err != nil {
		return Product{}, nil, fmt.Errorf("store.CreateProduct: %w", s.mapErr(err))
	}
	return p, groups, nil
}

func (s *Store) insertGroup(ctx context.Context, tx *sql.Tx, actor Actor, p Product, name, description string) (Group, error) {
	g := Group{ID: NewID("grp"), TenantID: p.TenantID, ProductID: p.ID, ProductName: p.Name, Name: name, Description: description, CreatedAt: s.Now()}
	if _, err := tx.ExecContext(ctx, `INSERT INTO device_groups (id, tenant_id, product_id, name, description, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		g.ID, g.TenantID, g.ProductID, g.Name, g.Description, micros(g.CreatedAt)); err != nil {
		return Group{}, err
	}
	return g, s.appendAudit(ctx, tx, p.TenantID, actor, "group.create", "group/"+g.ID, Details{"product": p.Name, "name": name})
}

func scanProduct(row interface{ Scan(...any) error }) (Product, error) {
	var p Product
	var at int64
	if err := row.Scan(&p.ID, &p.TenantID, &p.Name, &p.Description, &at); err != nil {
		return Product{}, err
	}
	p.CreatedAt = fromMicros(at)
	return p, nil
}

// ProductByName returns a tenant's product; a product of another tenant is ErrNotFound.
func (s *Store) ProductByName(ctx context.Context, tenantID, name string) (Product, error) {
	p, err := scanProduct(s.db.QueryRowContext(ctx, `SELECT id, tenant_id, name, description, created_at
		FROM products WHERE tenant_id = $1 AND name = $2`, tenantID, name))
	if err != nil {
		return Product{}, fmt.Errorf("store.ProductByName: %w", s.mapErr(err))
	}
	return p, nil
}

// ListProducts lists a tenant's products by name.
func (s *Store) ListProducts(ctx context.Context, tenantID string, p Page) ([]Product, string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, tenant_id, name, description, created_at
		FROM products WHERE tenant_id = $1 AND name > $2 ORDER BY name LIMIT $3`, tenantID, p.After, p.limit()+1)
	if err != nil {
		return nil, "", fmt.Errorf("store.ListProducts: %w", err)
	}
	defer rows.Close()
	out, err := scanAll(rows, scanProduct)
	if err != nil {
		return nil, "", fmt.Errorf("store.ListProducts: %w", err)
	}
	out, next := trimPage(out, p, func(p Product) string { return p.Name })
	return out, next, nil
}

// CreateGroup adds a device group to a tenant's product.
func (s *Store) CreateGroup(ctx context.Context, actor Actor, tenantID, product, name, description string) (Group, error) {
	var g Group
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		p, err := scanProduct(tx.QueryRowContext(ctx, `SELECT id, tenant_id, name, description, created_at
			FROM products WHERE tenant_id = $1 AND name = $2`, tenantID, product))
		if err != nil {
			return err
		}
		g, err = s.insertGroup(ctx, tx, actor, p, name, description)
		return err
	})
	if err != nil {
		return Group{}, fmt.Errorf("store.CreateGroup: %w", s.mapErr(err))
	}
	return g, nil
}

const groupColumns = `g.id, g.tenant_id, g.product_id, p.name, g.name, g.description, g.created_at,
	(SELECT COUNT(*) FROM devices d WHERE d.group_id = g.id)`

// groupColumnsUncounted are groupColumns with -1 for the device count: counting reads an
// index entry per device of the group, which a caller that needs only names should not pay
// (a third of 100,000 devices a group is tens of milliseconds).
const groupColumnsUncounted = `g.id, g.tenant_id, g.product_id, p.name, g.name, g.description, g.created_at, -1`

func scanGroup(row interface{ Scan(...any) error }) (Group, error) {
	var g Group
	var at int64
	if err := row.Scan(&g.ID, &g.TenantID, &g.ProductID, &g.ProductName, &g.Name, &g.Description, &at, &g.Devices); err != nil {
		return Group{}, err
	}
	g.CreatedAt = fromMicros(at)
	return g, nil
}

// ListGroups lists the device groups of a tenant's product by name. An unknown product is
// ErrNotFound rather than an empty list.
func (s *Store) ListGroups(ctx context.Context, tenantID, product string, p Page) ([]Group, string, error) {
	return s.listGroups(ctx, tenantID, product, p, groupColumns)
}

// ListGroupsUncounted is ListGroups without counting each group's devices: Devices is -1.
func (s *Store) ListGroupsUncounted(ctx context.Context, tenantID, product string, p Page) ([]Group, string, error) {
	return s.listGroups(ctx, tenantID, product, p, groupColumnsUncounted)
}

func (s *Store) listGroups(ctx context.Context, tenantID, product string, p Page, columns string) ([]Group, string, error) {
	if _, err := s.ProductByName(ctx, tenantID, product); err != nil {
		return nil, "", fmt.Errorf("store.ListGroups: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+columns+`
		FROM device_groups g JOIN products p ON p.id = g.product_id
		WHERE g.tenant_id = $1 AND p.name = $2 AND g.name > $3 ORDER BY g.name LIMIT $4`, tenantID, product, p.After, p.limit()+1)
	if err != nil {
		return nil, "", fmt.Errorf("store.ListGroups: %w", err)
	}
	defer rows.Close()
	out, err := scanAll(rows, scanGroup)
	if err != nil {
		return nil, "", fmt.Errorf("store.ListGroups: %w", err)
	}
	out, next := trimPage(out, p, func(g Group) string { return g.Name })
	return out, next, nil
}

// GroupByName returns one device group of a tenant's product.
func (s *Store) GroupByName(ctx context.Context, tenantID, product, name string) (Group, error) {
	return s.groupByName(ctx, tenantID, product, name, groupColumns)
}

// groupByName is GroupByName with the columns given: groupColumnsUncounted when only the
// group's identity is needed.
func (s *Store) groupByName(ctx context.Context, tenantID, product, name, columns string) (Group, error) {
	g, err := scanGroup(s.db.QueryRowContext(ctx, `SELECT `+columns+`
		FROM device_groups g JOIN products p ON p.id = g.product_id
		WHERE g.tenant_id = $1 AND p.name = $2 AND g.name = $3`, tenantID, product, name))
	if err != nil {
		return Group{}, fmt.Errorf("store.GroupByName: %w", s.mapErr(err))
	}
	return g, nil
}
