package release

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/rampartsec/rampart/internal/store"
)

// AffectedLister names the releases of a product that vulnerability
// reports with a linked fix say are affected; *store.Store implements it.
type AffectedLister interface {
	AffectedReleases(ctx context.Context, tenantID, product string) ([]store.AffectedRelease, error)
}

// RevokeAffected revokes every signed release of product that fixed
// reports name as affected, giving the reports and the fixing releases as
// the reason; releases already revoked, or never created here, are
// skipped. It returns the releases it revoked.
func (s *Service) RevokeAffected(ctx context.Context, actor store.Actor, tenantID, product string, affected AffectedLister) ([]Release, error) {
	list, err := affected.AffectedReleases(ctx, tenantID, product)
	if err != nil {
		return nil, fmt.Errorf("release.RevokeAffected: %w", err)
	}
	var out []Release
	for _, a := range list {
		cur, err := s.GetRelease(ctx, tenantID, product, a.Version)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return out, fmt.Errorf("release.RevokeAffected: %w", err)
		}
		if cur.State != StateSigned {
			continue
		}
		reports := make([]string, len(a.Reports))
		for i, n := range a.Reports {
			reports[i] = fmt.Sprintf("#%d", n)
		}
		reason := fmt.Sprintf("affected by report %s; fixed in %s", strings.Join(reports, ", "), strings.Join(a.FixedIn, ", "))
		r, err := s.Revoke(ctx, actor, tenantID, product, a.Version, reason)
		if err != nil {
			return out, fmt.Errorf("release.RevokeAffected: %w", err)
		}
		out = append(out, r)
	}
	return out, nil
}
