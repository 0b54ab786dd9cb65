package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Repo is a tenant's stored TUF repository: the image repository's state and the director's
// roots, each as the JSON internal/release encodes. The store compares State byte for byte to
// detect a concurrent change.
type Repo struct {
	State         string
	DirectorRoots string
	// UpdatedAt strictly increases with every change; caches of the repository's files key on it.
	UpdatedAt int64
}

// CreateRepo stores a tenant's first repository state and director roots and audits it.
func (s *Store) CreateRepo(ctx context.Context, actor Actor, tenantID string, r Repo, now time.Time) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO tuf_repos (tenant_id, state, director_roots, updated_at) VALUES ($1, $2, $3, $4)`,
			tenantID, r.State, r.DirectorRoots, micros(now)); err != nil {
			return err
		}
		return s.appendAudit(ctx, tx, tenantID, actor, "tuf.init", "tuf/root", Details{"root_version": 1})
	})
	if err != nil {
		return fmt.Errorf("store.CreateRepo: %w", s.mapErr(err))
	}
	return nil
}

func getRepo(ctx context.Context, q querier, tenantID string) (Repo, error) {
	var r Repo
	err := q.QueryRowContext(ctx, `SELECT state, director_roots, updated_at FROM tuf_repos WHERE tenant_id = $1`, tenantID).Scan(&r.State, &r.DirectorRoots, &r.UpdatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return Repo{}, ErrNotFound
	}
	return r, err
}

// Repo returns a tenant's repository; ErrNotFound when the tenant has none yet.
func (s *Store) Repo(ctx context.Context, tenantID string) (Repo, error) {
	return getRepo(ctx, s.db, tenantID)
}

// RepoUpdatedAt returns when a tenant's repository last changed (see Repo.UpdatedAt);
// ErrNotFound when the tenant has none yet.
func (s *Store) RepoUpdatedAt(ctx context.Context, tenantID string) (int64, error) {
	var updated int64
	err := s.db.QueryRowContext(s.quick(ctx), `SELECT updated_at FROM tuf_repos WHERE tenant_id = $1`, tenantID).Scan(&updated)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, ErrNotFound
	}
	return updated, err
}

// DirectorRoots returns a tenant's director root chain as stored (a JSON array of the signed
// roots), without the rest of its repository; ErrNotFound when the tenant has none yet.
func (s *Store) DirectorRoots(ctx context.Context, tenantID string) (string, error) {
	return directorRoots(s.quick(ctx), s.db, tenantID)
}

func directorRoots(ctx context.Context, q querier, tenantID string) (string, error) {
	var roots string
	err := q.QueryRowContext(ctx, `SELECT director_roots FROM tuf_repos WHERE tenant_id = $1`, tenantID).Scan(&roots)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	return roots, err
}

// RepoTenants lists the tenants that have a repository.
func (s *Store) RepoTenants(ctx context.Context) ([]string, error) {
	return queryIDs(ctx, s.db, `SELECT tenant_id FROM tuf_repos`)
}

// Repo reads a tenant's repository in the transaction; ErrNotFound when it has none yet.
func (t *UpdatesTx) Repo(ctx context.Context, tenantID string) (Repo, error) {
	return getRepo(ctx, t.tx, tenantID)
}

// DirectorRoots reads only a tenant's director roots in the transaction (the director signing
// a device's metadata needs nothing else of the repository); ErrNotFound when it has none yet.
func (t *UpdatesTx) DirectorRoots(ctx context.Context, tenantID string) (string, error) {
	return directorRoots(t.ctx(ctx), t.tx, tenantID)
}

// SaveRepo replaces a tenant's repository state and director roots only if nobody changed the
// state since old was read; it reports whether it did. updated_at strictly increases.
func (t *UpdatesTx) SaveRepo(ctx context.Context, tenantID string, old Repo, state, directorRoots string, now time.Time) (bool, error) {
	res, err := t.tx.ExecContext(ctx, `UPDATE tuf_repos SET state = $1, director_roots = $2,
		updated_at = CASE WHEN updated_at < $3 THEN $3 ELSE updated_at + 1 END WHERE tenant_id = $4 AND state = $5`,
		state, directorRoots, micros(now), tenantID, old.State)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return err == nil && n == 1, nil
}
