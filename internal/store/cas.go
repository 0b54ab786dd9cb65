package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// TenantCA is a tenant's certificate authority as stored: the certificate and the private key
// sealed by the server's key-encryption key (see internal/ca).
type TenantCA struct {
	CertPEM      []byte
	EncryptedKey []byte
}

// TenantCA returns a tenant's CA; ErrNotFound until one was created.
func (s *Store) TenantCA(ctx context.Context, tenantID string) (TenantCA, error) {
	var c TenantCA
	var certPEM string
	err := s.db.QueryRowContext(ctx, `SELECT cert_pem, encrypted_key FROM tenant_cas WHERE tenant_id = $1`, tenantID).Scan(&certPEM, &c.EncryptedKey)
	if err != nil {
		return TenantCA{}, fmt.Errorf("store.TenantCA: %w", s.mapErr(err))
	}
	c.CertPEM = []byte(certPEM)
	return c, nil
}

// EnsureTenantCA returns the tenant's CA, creating it with create when it has none. When two
// servers race, the first insert wins and both return the winner's CA.
func (s *Store) EnsureTenantCA(ctx context.Context, tenantID string, create func() (TenantCA, error)) (TenantCA, error) {
	c, err := s.TenantCA(ctx, tenantID)
	if !errors.Is(err, ErrNotFound) {
		return c, err
	}
	fresh, err := create()
	if err != nil {
		return TenantCA{}, fmt.Errorf("store.EnsureTenantCA: %w", err)
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO tenant_cas (tenant_id, cert_pem, encrypted_key, created_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (tenant_id) DO NOTHING`, tenantID, string(fresh.CertPEM), fresh.EncryptedKey, micros(s.Now()))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		return s.appendAudit(ctx, tx, tenantID, System, "ca.create", "tenant/"+tenantID, nil)
	})
	if err != nil {
		return TenantCA{}, fmt.Errorf("store.EnsureTenantCA: %w", s.mapErr(err))
	}
	return s.TenantCA(ctx, tenantID)
}

// ReplaceTenantCACert swaps a tenant CA's certificate for one reissued over the same key (a new
// SPIFFE trust domain), only if the stored certificate is still old, and returns the CA as
// stored afterwards: when two servers reissue together, the first write wins and both get it.
// The swap writes a ca.reissue audit record.
func (s *Store) ReplaceTenantCACert(ctx context.Context, tenantID string, old, fresh []byte, trustDomain string) (TenantCA, error) {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE tenant_cas SET cert_pem = $1 WHERE tenant_id = $2 AND cert_pem = $3`,
			string(fresh), tenantID, string(old))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		return s.appendAudit(ctx, tx, tenantID, System, "ca.reissue", "tenant/"+tenantID, map[string]any{"trust_domain": trustDomain})
	})
	if err != nil {
		return TenantCA{}, fmt.Errorf("store.ReplaceTenantCACert: %w", s.mapErr(err))
	}
	return s.TenantCA(ctx, tenantID)
}
