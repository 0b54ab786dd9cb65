package release

import (
	"context"
	"database/sql"
	"fmt"
)

// ReleasedImage is one image of a product's signed or revoked release: the reference values
// attestation compares a device's measurements with.
type ReleasedImage struct {
	SHA256       string
	Component    string
	ImageVersion string
	Release      string // the release's version
	Revoked      bool
	// Newest is true for the images of the product's newest signed release.
	Newest bool
}

// ReleasedImages returns the images of every signed or revoked release of a tenant's
// product. Drafts are left out: no device should run them.
func (s *Service) ReleasedImages(ctx context.Context, tenantID, product string) ([]ReleasedImage, error) {
	rows, err := s.cfg.Store.DB().QueryContext(ctx, `SELECT ri.sha256, ri.component, i.version, r.version, r.state, r.signed_at
		FROM release_images ri
		JOIN releases r ON r.id = ri.release_id
		JOIN products p ON p.id = r.product_id
		JOIN images i ON i.tenant_id = r.tenant_id AND i.sha256 = ri.sha256
		WHERE r.tenant_id = $1 AND p.name = $2 AND r.state IN ($3, $4)
		ORDER BY r.signed_at, ri.component`, tenantID, product, StateSigned, StateRevoked)
	if err != nil {
		return nil, fmt.Errorf("release.ReleasedImages: %w", err)
	}
	defer rows.Close()
	var (
		out        []ReleasedImage
		newest     string
		newestTime int64 = -1
	)
	for rows.Next() {
		var im ReleasedImage
		var state string
		var signed sql.NullInt64
		if err := rows.Scan(&im.SHA256, &im.Component, &im.ImageVersion, &im.Release, &state, &signed); err != nil {
			return nil, fmt.Errorf("release.ReleasedImages: %w", err)
		}
		im.Revoked = state == StateRevoked
		if !im.Revoked && signed.Valid && signed.Int64 > newestTime {
			newest, newestTime = im.Release, signed.Int64
		}
		out = append(out, im)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("release.ReleasedImages: %w", err)
	}
	for i := range out {
		out[i].Newest = !out[i].Revoked && out[i].Release == newest
	}
	return out, nil
}
