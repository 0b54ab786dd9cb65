package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Session kinds: how a console session was opened.
const (
	SessionToken      = "token"      // an API token at /login
	SessionOIDC       = "oidc"       // an identity provider's sign-in
	SessionResearcher = "researcher" // a researcher token at /research/login
)

// Session is a signed-in browser of the web console. Only the hash of its cookie's secret is
// stored.
type Session struct {
	ID           string
	TenantID     string
	TenantName   string
	Kind         string // SessionToken, SessionOIDC or SessionResearcher
	TokenID      string // the API token it was opened with (kind token)
	ResearcherID string // the researcher (kind researcher)
	Subject      string // who signed in, as the sign-in method names them (OIDC subject)
	Role         string // admin, operator or reader; empty for researchers
	Service      bool
	CreatedAt    time.Time
	ExpiresAt    time.Time
	RevokedAt    *time.Time
	// CredentialRevokedAt is when the API token or researcher token behind the session was
	// revoked; a session whose credential is revoked is over.
	CredentialRevokedAt *time.Time
}

// Actor is who the audit chain names for what the session does.
func (s Session) Actor() Actor {
	switch s.Kind {
	case SessionToken:
		return Actor("token:" + s.TokenID)
	case SessionResearcher:
		return Actor("researcher:" + s.ResearcherID)
	}
	return Actor("oidc:" + s.Subject)
}

// Live reports whether the session may still be used at now: not signed out, not expired, and
// its credential not revoked.
func (s Session) Live(now time.Time) bool {
	return s.RevokedAt == nil && s.CredentialRevokedAt == nil && now.Before(s.ExpiresAt)
}

// CreateSession stores a new session under the hash of its secret and audits the sign-in.
// Sessions that expired a day ago or more are deleted on the way.
func (s *Store) CreateSession(ctx context.Context, sess Session, hash string) (Session, error) {
	switch sess.Kind {
	case SessionToken, SessionOIDC, SessionResearcher:
	default:
		return Session{}, fmt.Errorf("store.CreateSession: unknown kind %q", sess.Kind)
	}
	sess.ID = NewID("ses")
	sess.CreatedAt = s.Now()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT name FROM tenants WHERE id = $1`, sess.TenantID).Scan(&sess.TenantName); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM console_sessions WHERE expires_at < $1`, micros(sess.CreatedAt.Add(-24*time.Hour))); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO console_sessions (id, hash, tenant_id, kind, token_id, researcher_id, subject, role, service, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			sess.ID, hash, sess.TenantID, sess.Kind, nullString(sess.TokenID), nullString(sess.ResearcherID), sess.Subject, sess.Role, sess.Service,
			micros(sess.CreatedAt), micros(sess.ExpiresAt)); err != nil {
			return err
		}
		return s.appendAudit(ctx, tx, sess.TenantID, sess.Actor(), "session.create", "session/"+sess.ID,
			Details{"kind": sess.Kind, "role": sess.Role, "expires_at": sess.ExpiresAt})
	})
	if err != nil {
		return Session{}, fmt.Errorf("store.CreateSession: %w", s.mapErr(err))
	}
	return sess, nil
}

const sessionColumns = `c.id, c.tenant_id, n.name, c.kind, COALESCE(c.token_id, ''), COALESCE(c.researcher_id, ''), c.subject, c.role, c.service,
	c.created_at, c.expires_at, c.revoked_at, COALESCE(t.revoked_at, r.token_revoked_at)`

const sessionJoins = ` FROM console_sessions c JOIN tenants n ON n.id = c.tenant_id
	LEFT JOIN api_tokens t ON t.id = c.token_id LEFT JOIN researchers r ON r.id = c.researcher_id `

func scanSession(row rowScanner) (Session, error) {
	var sess Session
	var created, expires int64
	var revoked, credRevoked sql.NullInt64
	if err := row.Scan(&sess.ID, &sess.TenantID, &sess.TenantName, &sess.Kind, &sess.TokenID, &sess.ResearcherID, &sess.Subject, &sess.Role, &sess.Service,
		&created, &expires, &revoked, &credRevoked); err != nil {
		return Session{}, err
	}
	sess.CreatedAt, sess.ExpiresAt = fromMicros(created), fromMicros(expires)
	sess.RevokedAt, sess.CredentialRevokedAt = fromNullMicros(revoked), fromNullMicros(credRevoked)
	return sess, nil
}

// SessionByHash finds the session whose secret hashes to hash, live or not; the caller checks
// Live.
func (s *Store) SessionByHash(ctx context.Context, hash string) (Session, error) {
	sess, err := scanSession(s.queryRow(ctx, `SELECT `+sessionColumns+sessionJoins+`WHERE c.hash = $1`, hash))
	if err != nil {
		return Session{}, fmt.Errorf("store.SessionByHash: %w", s.mapErr(err))
	}
	return sess, nil
}

// RevokeSession ends a session (sign out) and audits it; ending one already ended is a no-op.
func (s *Store) RevokeSession(ctx context.Context, sess Session) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE console_sessions SET revoked_at = $1 WHERE id = $2 AND tenant_id = $3 AND revoked_at IS NULL`,
			micros(s.Now()), sess.ID, sess.TenantID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		return s.appendAudit(ctx, tx, sess.TenantID, sess.Actor(), "session.revoke", "session/"+sess.ID, nil)
	})
	if err != nil {
		return fmt.Errorf("store.RevokeSession: %w", s.mapErr(err))
	}
	return nil
}

// nullString stores an optional reference: NULL for "".
func nullString(v string) any {
	if v == "" {
		return nil
	}
	return v
}
