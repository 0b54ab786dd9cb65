package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Replicas sharing a PostgreSQL database hear of each other's deployment writes: every
// transaction that writes a deployment also sends a notification on the database's deployment
// channel, which PostgreSQL delivers to the listeners when, and only if, it commits. A replica
// that hears one drops its cached deployments at once (rather than after OfferTTL) and can wake
// the devices waiting on it (the server does). SQLite has a single replica and sends nothing.

// DeploymentChange is a deployment that another replica wrote.
type DeploymentChange struct {
	TenantID, DeploymentID string
}

// notifyDeployment sends, on PostgreSQL, the deployment's change to the other replicas when tx
// commits. Identical notifications of one transaction arrive once.
func (s *Store) notifyDeployment(ctx context.Context, tx *sql.Tx, tenantID, deploymentID string) error {
	if s.channel == "" {
		return nil
	}
	_, err := tx.ExecContext(ctx, `SELECT pg_notify($1, $2)`, s.channel, s.replica+" "+tenantID+" "+deploymentID)
	return err
}

// demoteKind is the third word of a demotion's notification, where a deployment's carries its ID.
const demoteKind = "demote"

// notifyDemoted sends, on PostgreSQL, that a revocation demoted devices of the tenant, so that
// the other replicas wake those of them waiting there (DeploymentListener.Demoted).
func (s *Store) notifyDemoted(ctx context.Context, tx *sql.Tx, tenantID string) error {
	if s.channel == "" {
		return nil
	}
	_, err := tx.ExecContext(ctx, `SELECT pg_notify($1, $2)`, s.channel, s.replica+" "+tenantID+" "+demoteKind)
	return err
}

// listenRetry is how long ListenDeployments waits before it reconnects after losing its
// connection.
const listenRetry = 2 * time.Second

// DeploymentListener receives what ListenDeployments hears.
type DeploymentListener struct {
	// Changed is called for every deployment another replica writes.
	Changed func(DeploymentChange)
	// Demoted, when set, is called when another replica's revocation demoted devices of the
	// tenant (store.DemotedUntold lists those not yet told to attest again).
	Demoted func(tenantID string)
	// Listening, when set, is called each time the listener (re)connects and listens.
	Listening func()
	// Lost, when set, is called with the error that ended a connection; the listener
	// reconnects after listenRetry.
	Lost func(error)
}

// ListenDeployments reports the deployments that other replicas write until ctx ends. It holds a
// connection of its own, outside the pool, and reconnects after losing it; what was written
// while it was away is not replayed, but the cached deployments are dropped on reconnecting. On
// SQLite it returns at once: there is no other replica.
func (s *Store) ListenDeployments(ctx context.Context, l DeploymentListener) {
	if s.channel == "" {
		return
	}
	for {
		err := s.listen(ctx, l)
		if ctx.Err() != nil {
			return
		}
		s.deploymentsChanged()
		if l.Lost != nil {
			l.Lost(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(listenRetry):
		}
	}
}

func (s *Store) listen(ctx context.Context, l DeploymentListener) error {
	conn, err := pgx.Connect(ctx, s.url)
	if err != nil {
		return fmt.Errorf("store.ListenDeployments: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		return fmt.Errorf("store.ListenDeployments: %w", err)
	}
	if l.Listening != nil {
		l.Listening()
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("store.ListenDeployments: %w", err)
		}
		replica, rest, ok := strings.Cut(n.Payload, " ")
		tenantID, deploymentID, ok2 := strings.Cut(rest, " ")
		if !ok || !ok2 || replica == s.replica {
			continue
		}
		if deploymentID == demoteKind {
			if l.Demoted != nil {
				l.Demoted(tenantID)
			}
			continue
		}
		s.deploymentsChanged()
		l.Changed(DeploymentChange{TenantID: tenantID, DeploymentID: deploymentID})
	}
}
