package store

import (
	"context"
	"fmt"
)

// ResearcherByID finds a researcher of the tenant by ID; another tenant's is ErrNotFound. The
// researcher portal loads the researcher of a session with it.
func (s *Store) ResearcherByID(ctx context.Context, tenantID, id string) (Researcher, error) {
	r, err := scanResearcher(s.db.QueryRowContext(ctx, `SELECT `+researcherColumns+` FROM researchers WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	if err != nil {
		return Researcher{}, fmt.Errorf("store.ResearcherByID: %w", s.mapErr(err))
	}
	return r, nil
}
