package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Token is an API token's record; the secret itself is never stored, only its hash.
type Token struct {
	ID          string
	TenantID    string
	TenantName  string
	Description string
	Role        string // admin, operator or reader
	Service     bool   // may manage tenants and other tenants' tokens
	CreatedAt   time.Time
	CreatedBy   string
	RevokedAt   *time.Time
}

// CreateToken stores a new token for tenantID under the given secret hash.
func (s *Store) CreateToken(ctx context.Context, actor Actor, actorTenantID string, tok Token, hash string) (Token, error) {
	tok.ID = NewID("tok")
	tok.CreatedAt = s.Now()
	tok.CreatedBy = string(actor)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT name FROM tenants WHERE id = $1`, tok.TenantID).Scan(&tok.TenantName); err != nil {
			return err
		}
		if err := s.insertToken(ctx, tx, actor, tok, hash); err != nil {
			return err
		}
		if actorTenantID != tok.TenantID {
			return s.appendAudit(ctx, tx, actorTenantID, actor, "token.create", "token/"+tok.ID, Details{"tenant": tok.TenantName, "role": tok.Role})
		}
		return nil
	})
	if err != nil {
		return Token{}, fmt.Errorf("store.CreateToken: %w", s.mapErr(err))
	}
	return tok, nil
}

func (s *Store) insertToken(ctx context.Context, tx *sql.Tx, actor Actor, tok Token, hash string) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO api_tokens (id, tenant_id, description, role, service, hash, created_at, created_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		tok.ID, tok.TenantID, tok.Description, tok.Role, tok.Service, hash, micros(tok.CreatedAt), tok.CreatedBy); err != nil {
		return err
	}
	return s.appendAudit(ctx, tx, tok.TenantID, actor, "token.create", "token/"+tok.ID,
		Details{"role": tok.Role, "service": tok.Service, "description": tok.Description})
}

const tokenColumns = `t.id, t.tenant_id, n.name, t.description, t.role, t.service, t.created_at, t.created_by, t.revoked_at`

func scanToken(row interface{ Scan(...any) error }) (Token, error) {
	var tok Token
	var at int64
	var revoked sql.NullInt64
	if err := row.Scan(&tok.ID, &tok.TenantID, &tok.TenantName, &tok.Description, &tok.Role, &tok.Service, &at, &tok.CreatedBy, &revoked); err != nil {
		return Token{}, err
	}
	tok.CreatedAt = fromMicros(at)
	tok.RevokedAt = fromNullMicros(revoked)
	return tok, nil
}

// TokenByHash finds the token whose secret hashes to hash, revoked or not; the caller decides.
func (s *Store) TokenByHash(ctx context.Context, hash string) (Token, error) {
	tok, err := scanToken(s.db.QueryRowContext(ctx, `SELECT `+tokenColumns+`
		FROM api_tokens t JOIN tenants n ON n.id = t.tenant_id WHERE t.hash = $1`, hash))
	if err != nil {
		return Token{}, fmt.Errorf("store.TokenByHash: %w", s.mapErr(err))
	}
	return tok, nil
}

// ListTokens lists a tenant's tokens, revoked ones included, by ID.
func (s *Store) ListTokens(ctx context.Context, tenantID string, p Page) ([]Token, string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+tokenColumns+`
		FROM api_tokens t JOIN tenants n ON n.id = t.tenant_id
		WHERE t.tenant_id = $1 AND t.id > $2 ORDER BY t.id LIMIT $3`, tenantID, p.After, p.limit()+1)
	if err != nil {
		return nil, "", fmt.Errorf("store.ListTokens: %w", err)
	}
	defer rows.Close()
	out, err := scanAll(rows, scanToken)
	if err != nil {
		return nil, "", fmt.Errorf("store.ListTokens: %w", err)
	}
	out, next := trimPage(out, p, func(t Token) string { return t.ID })
	return out, next, nil
}

// RevokeToken revokes one of tenantID's tokens. Revoking twice is ErrConflict; a token of another
// tenant is ErrNotFound.
func (s *Store) RevokeToken(ctx context.Context, actor Actor, tenantID, id string) (Token, error) {
	var tok Token
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		tok, err = scanToken(tx.QueryRowContext(ctx, `SELECT `+tokenColumns+`
			FROM api_tokens t JOIN tenants n ON n.id = t.tenant_id WHERE t.id = $1 AND t.tenant_id = $2`, id, tenantID))
		if err != nil {
			return err
		}
		if tok.RevokedAt != nil {
			return fmt.Errorf("%w: token %s is already revoked", ErrConflict, id)
		}
		now := s.Now()
		tok.RevokedAt = &now
		if _, err := tx.ExecContext(ctx, `UPDATE api_tokens SET revoked_at = $1 WHERE id = $2`, micros(now), id); err != nil {
			return err
		}
		return s.appendAudit(ctx, tx, tenantID, actor, "token.revoke", "token/"+id, nil)
	})
	if err != nil {
		return Token{}, fmt.Errorf("store.RevokeToken: %w", s.mapErr(err))
	}
	return tok, nil
}
