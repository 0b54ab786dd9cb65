package release

import (
	"context"
	"fmt"

	"github.com/rampartsec/rampart/internal/store"
)

// ReleasedImage is one image of a product's signed or revoked release: the reference values
// attestation compares a device's measurements with.
type ReleasedImage = store.ReleasedImage

// ReleasedImages returns the images of every signed or revoked release of a tenant's
// product. Drafts are left out: no device should run them.
func (s *Service) ReleasedImages(ctx context.Context, tenantID, product string) ([]ReleasedImage, error) {
	out, err := s.cfg.Store.ReleasedImages(ctx, tenantID, product)
	if err != nil {
		return nil, fmt.Errorf("release.ReleasedImages: %w", err)
	}
	return out, nil
}
