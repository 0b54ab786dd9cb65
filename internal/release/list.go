package release

import (
	"context"
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
	out, next, err := s.cfg.Store.ListReleases(ctx, tenantID, product, after, limit)
	if errors.Is(err, store.ErrNotFound) {
		return nil, "", fmt.Errorf("release.ListReleases: %w: product %s", ErrNotFound, product)
	}
	if err != nil {
		return nil, "", fmt.Errorf("release.ListReleases: %w", err)
	}
	return out, next, nil
}
