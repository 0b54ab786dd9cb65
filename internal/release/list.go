package release

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/rampartsec/rampart/internal/store"
)

// ListReleases returns up to limit releases of a product in the order they were created, with
// their images (not their deltas), after the release whose ID is after ("" for the first page),
// and the cursor of the next page ("" when this is the last). An unknown product is ErrNotFound.
func (s *Service) ListReleases(ctx context.Context, tenantID, product, after string, limit int) ([]Release, string, error) {
	switch {
	case limit <= 0:
		limit = store.DefaultPageSize
	case limit > store.MaxPageSize:
		limit = store.MaxPageSize
	}
	db := s.cfg.Store.DB()
	var productID string
	err := db.QueryRowContext(ctx, `SELECT id FROM products WHERE tenant_id = $1 AND name = $2`, tenantID, product).Scan(&productID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, "", fmt.Errorf("release.ListReleases: %w: product %s", ErrNotFound, product)
	}
	if err != nil {
		return nil, "", fmt.Errorf("release.ListReleases: %w", err)
	}
	// Keyset paging on (created_at, id); the cursor is the last release's ID.
	rows, err := db.QueryContext(ctx, `SELECT `+releaseColumns+`
		FROM releases r JOIN products p ON p.id = r.product_id
		WHERE r.tenant_id = $1 AND r.product_id = $2
		  AND ($3 = '' OR (r.created_at, r.id) > (SELECT c.created_at, c.id FROM releases c WHERE c.id = $3 AND c.tenant_id = $1))
		ORDER BY r.created_at, r.id LIMIT $4`, tenantID, productID, after, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("release.ListReleases: %w", err)
	}
	var out []Release
	byID := map[string]int{}
	for rows.Next() {
		r, err := scanRelease(rows)
		if err != nil {
			rows.Close()
			return nil, "", fmt.Errorf("release.ListReleases: %w", err)
		}
		byID[r.ID] = len(out)
		out = append(out, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("release.ListReleases: %w", err)
	}
	next := ""
	if len(out) > limit {
		delete(byID, out[limit].ID)
		out = out[:limit]
		next = out[limit-1].ID
	}
	if len(out) == 0 {
		return out, "", nil
	}
	// The page's images in one query: every image of the product's releases in the page's range.
	irows, err := db.QueryContext(ctx, `SELECT ri.release_id, i.sha256, i.component, i.version, i.security_version, i.length, i.created_at
		FROM release_images ri JOIN releases r ON r.id = ri.release_id
		JOIN images i ON i.sha256 = ri.sha256 AND i.tenant_id = r.tenant_id
		WHERE r.tenant_id = $1 AND r.product_id = $2 AND (r.created_at, r.id) >= ($3, $4) AND (r.created_at, r.id) <= ($5, $6)
		ORDER BY ri.component`, tenantID, productID, micros(out[0].CreatedAt), out[0].ID, micros(out[len(out)-1].CreatedAt), out[len(out)-1].ID)
	if err != nil {
		return nil, "", fmt.Errorf("release.ListReleases: %w", err)
	}
	defer irows.Close()
	for irows.Next() {
		var relID string
		var im Image
		var sv, at int64
		if err := irows.Scan(&relID, &im.SHA256, &im.Component, &im.Version, &sv, &im.Length, &at); err != nil {
			return nil, "", fmt.Errorf("release.ListReleases: %w", err)
		}
		im.SecurityVersion, im.CreatedAt = uint64(sv), fromMicros(at)
		if i, ok := byID[relID]; ok {
			out[i].Images = append(out[i].Images, im)
		}
	}
	if err := irows.Err(); err != nil {
		return nil, "", fmt.Errorf("release.ListReleases: %w", err)
	}
	return out, next, nil
}
