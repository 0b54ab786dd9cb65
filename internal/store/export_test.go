package store

import (
	"context"
	"database/sql"
	"fmt"
)

// ReferenceStatus evaluates a deployment as the stepper did before it read aggregates: every
// member of the group loaded into a rollout.Snapshot and judged by rollout.Deployment.Evaluate.
// Tests check that DeploymentStatus and the steps, which read aggregates, agree with it.
func (s *Store) ReferenceStatus(ctx context.Context, tenantID, id string) (DeploymentStep, error) {
	var st DeploymentStep
	err := s.readTx(ctx, func(tx *sql.Tx) error {
		d, err := loadDeployment(ctx, tx, tenantID, id)
		if err != nil {
			return err
		}
		snap, err := s.snapshot(ctx, tx, d, s.Now(), nil)
		if err != nil {
			return err
		}
		st.Deployment = d
		st.Decision, st.Tally = d.Evaluate(snap)
		return nil
	})
	if err != nil {
		return DeploymentStep{}, fmt.Errorf("store.ReferenceStatus: %w", s.mapErr(err))
	}
	return st, nil
}
