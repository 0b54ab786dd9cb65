package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// SeedDevices registers claimed devices with an affirming attestation and the given current
// release into a product's group, in one statement, with no audit record: it fills a database
// for a benchmark (bench/seed) and is not part of the product, which claims each device through
// ClaimDevice. Callers pass at most a few thousand IDs at a time.
func (s *Store) SeedDevices(ctx context.Context, tenantID, productID, groupID, release string, ids []string, now time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	var sb strings.Builder
	args := []any{tenantID, productID, groupID, micros(now), release}
	sb.WriteString(`INSERT INTO devices (id, tenant_id, product_id, group_id, state, attestation, current_release, target_release, created_at, updated_at) VALUES `)
	for i, id := range ids {
		if i > 0 {
			sb.WriteString(",")
		}
		args = append(args, id)
		fmt.Fprintf(&sb, "($%d, $1, $2, $3, 'claimed', 'affirming', $5, '', $4, $4)", len(args))
	}
	if _, err := s.db.ExecContext(ctx, sb.String(), args...); err != nil {
		return fmt.Errorf("store.SeedDevices: %w", s.mapErr(err))
	}
	return nil
}
